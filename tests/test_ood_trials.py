"""The OOD trials: empty memory at trial 0, memory growing over trials, JSON + PNG + entry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from empo_gym.agents.base import Agent
from empo_gym.agents.llm.memory_only import MemoryOnlyAgent
from empo_gym.agents.ood_trials import plot_trials, run_ood, trial_score_summary
from empo_gym.leaderboard import load_entry
from empo_gym.ood import TRANSFERS
from empo_gym.toy import ToyTextEnv
from tests.llm.test_memory_only import MemoryStubPolicy


def _toy(kwargs: dict[str, Any]) -> ToyTextEnv:
    # the OOD kwargs reach the factory; the toy env stands in for the ScienceWorld target task
    assert kwargs["transfer"] == "bio2-electricity" and kwargs["stage"] == "target"
    return ToyTextEnv("guess", split=kwargs["split"], max_steps=1)


def _agent() -> MemoryOnlyAgent:
    return MemoryOnlyAgent(policy=MemoryStubPolicy(), embedder="hashing")


def test_memory_starts_empty_grows_and_the_best_trial_goes_to_the_leaderboard(tmp_path) -> None:
    seen: list[int] = []
    summary = run_ood(
        _agent(),
        "bio2-electricity",
        trials=5,
        out_dir=tmp_path / "ood",
        episodes_per_trial=1,
        seed=3,
        leaderboard_dir=tmp_path / "lb",
        make_env=_toy,
        on_trial=lambda rec: seen.append(rec["trial"]),
    )
    trials = summary["trials"]
    assert seen == [0, 1, 2, 3, 4]
    assert trials[0]["memory_entries_before"] == 0  # trial 0: empty memory
    sizes = [t["memory_entries_after"] for t in trials]
    assert sizes == sorted(sizes) and sizes[0] > 0
    assert all(t["tips_written"] == 1 for t in trials)
    assert all(t["seeds"] == [3] for t in trials)  # the same episodes every trial
    scores = [t["metrics"]["mean_score"] for t in trials]
    assert scores[0] < 100.0 and scores[-1] == 100.0  # memory alone improves the frozen policy
    assert summary["best_trial"] == scores.index(100.0)
    assert summary["paper"] == {"grpo": 22.5, "empo2": 88.1, "trials": 10}
    assert (summary["source_task"], summary["target_task"]) == (
        "lifespan-longest-lived",
        "test-conductivity",
    )

    files = summary["files"]
    saved = json.loads(Path(files["trials_json"]).read_text(encoding="utf-8"))
    assert [t["metrics"]["mean_score"] for t in saved["trials"]] == scores
    png = Path(files["curve_png"]).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert Path(files["memory"]).exists()
    entry = load_entry(files["leaderboard"])
    assert (entry["agent"], entry["env"], entry["task"]) == (
        "memory-only",
        "ood",
        "bio2-electricity",
    )
    assert entry["metrics"]["mean_score"] == 100.0
    assert entry["metrics"]["best_trial"] == summary["best_trial"]
    assert entry["metrics"]["trials"] == 5
    assert [t["metrics"]["mean_score"] for t in entry["config"]["per_trial"]] == scores
    assert entry["config"]["protocol"]["target_task"] == "test-conductivity"
    assert all(e["trial"] == summary["best_trial"] for e in entry["episodes"])


def test_trial_files_are_named_by_transfer_and_agent(tmp_path) -> None:
    summary = run_ood(
        _agent(),
        "bio2-electricity",
        trials=1,
        out_dir=tmp_path,
        episodes_per_trial=2,
        leaderboard_dir=None,
        plot=False,
        make_env=_toy,
    )
    assert Path(summary["files"]["trials_json"]).name == (
        "ood-bio2-electricity-memory-only-trials.json"
    )
    assert "leaderboard" not in summary["files"] and "curve_png" not in summary["files"]
    assert summary["trials"][0]["metrics"]["episodes"] == 2


class _Learner(Agent):
    name = "learner"
    learns = True

    def act(self, slot: int, observation: Any, info: dict[str, Any]) -> str:
        return "say alpha"


def test_bad_arguments_are_rejected_with_the_valid_choices(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown transfer 'bio-chem'; expected one of: bio1-bio2"):
        run_ood(_agent(), "bio-chem", out_dir=tmp_path)
    with pytest.raises(ValueError, match="trials must be a positive int, got 0"):
        run_ood(_agent(), "bio1-bio2", trials=0, out_dir=tmp_path)
    with pytest.raises(ValueError, match="learns; the OOD protocol runs a frozen policy"):
        run_ood(_Learner(), "bio1-bio2", out_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown agent 'nope'"):
        run_ood("nope", "bio1-bio2", out_dir=tmp_path)
    full = _agent()
    run_ood(
        full,
        "bio2-electricity",
        trials=1,
        out_dir=tmp_path,
        episodes_per_trial=1,
        leaderboard_dir=None,
        plot=False,
        make_env=_toy,
    )
    with pytest.raises(ValueError, match="trial 0 must start from an empty memory"):
        run_ood(full, "bio2-electricity", out_dir=tmp_path, make_env=_toy)


def test_summary_and_plot_helpers(tmp_path) -> None:
    recs = [
        {"trial": i, "metrics": {"mean_score": s, "ci95": 1.0}}
        for i, s in enumerate([5.0, 7.0, 7.0])
    ]
    assert trial_score_summary(recs)["best_trial"] == 1  # earliest of the tied best
    path = plot_trials(recs, TRANSFERS["bio1-bio2"], tmp_path / "c.png", "t")
    assert path.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="no trials"):
        trial_score_summary([])


@pytest.mark.slow
def test_ood_trials_with_smollm2_on_scienceworld(tmp_path) -> None:
    """2 trials x 1 episode x 3 steps of the real target task with the default model."""
    import time

    from empo_gym.agents.registry import agent_names, register_agent

    if "memory-only" not in agent_names():
        register_agent("memory-only", "*", "empo_gym.agents.llm.memory_only:MemoryOnlyAgent")
    t0 = time.perf_counter()
    summary = run_ood(
        "memory-only",
        "bio2-electricity",
        trials=2,
        out_dir=tmp_path / "ood",
        episodes_per_trial=1,
        max_steps=3,
        leaderboard_dir=tmp_path / "lb",
        agent_kwargs={"max_new_tokens": 8, "tip_max_new_tokens": 24},
    )
    wall = time.perf_counter() - t0
    trials = summary["trials"]
    assert len(trials) == 2 and trials[0]["memory_entries_before"] == 0
    assert trials[0]["memory_entries_after"] > 0 and trials[1]["tips_written"] == 1
    entry = load_entry(summary["files"]["leaderboard"])
    assert entry["env"] == "ood" and entry["model"] == "smollm2-135m-instruct"
    assert entry["config"]["agent"]["memory"]["steps_with_tips"] > 0  # trial 1 saw tips
    scores = [t["metrics"]["mean_score"] for t in trials]
    print(f"OOD bio2-electricity, 2 trials x 1 episode x 3 steps: {wall:.1f} s, scores {scores}")
