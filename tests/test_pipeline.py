"""The run pipeline called from Python: train-if-learning -> evaluate -> leaderboard row."""

from __future__ import annotations

import json
from typing import Any

import pytest

from empo_gym.agents.registry import _AGENTS
from empo_gym.agents.scripted.random_agent import RandomAgent
from empo_gym.pipeline import DEFAULT_EPISODES, RunConfig, run


class FiveEpisodeAgent(RandomAgent):
    """An agent that asks for its own number of evaluation episodes (as trainers do)."""

    name = "five"

    @property
    def eval_episodes(self) -> int | None:
        return 5


@pytest.fixture
def five_agent(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setitem(_AGENTS, "five", {"*": f"{__name__}:FiveEpisodeAgent"})
    return "five"


def test_run_writes_a_valid_row_and_returns_the_outcome(tmp_path) -> None:
    lines: list[str] = []
    outcome = run("random", "guess", episodes=4, out_dir=tmp_path, log=lines.append)
    assert outcome is not None and outcome.metrics["episodes"] == 4
    row = json.loads(outcome.path.read_text())
    assert row["agent"] == "random" and row["env"] == "guess"
    assert row["metrics"]["success_rate"] == outcome.metrics["success_rate"]
    assert any("evaluating random on guess" in line for line in lines)


def test_episode_count_precedence(tmp_path, five_agent: str) -> None:
    def episodes(**kwargs: Any) -> int:
        outcome = run(five_agent, "guess", out_dir=tmp_path, log=lambda _: None, **kwargs)
        assert outcome is not None
        return outcome.metrics["episodes"]

    assert episodes() == 5  # the agent's own view
    assert episodes(config=RunConfig(episodes=3)) == 3  # the config wins over the agent
    assert episodes(config=RunConfig(episodes=3), episodes=2) == 2  # the argument wins
    outcome = run("random", "guess", out_dir=tmp_path, log=lambda _: None)
    assert outcome is not None and outcome.metrics["episodes"] == DEFAULT_EPISODES


def test_bad_input_raises_before_anything_runs(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        run("random", "guess", split="dev", out_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown agent 'wizard'"):
        run("wizard", "guess", out_dir=tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("episodez: 3\n")
    with pytest.raises(ValueError, match="unknown config key 'episodez'"):
        run("random", "guess", config=bad, out_dir=tmp_path)
    assert not list(tmp_path.glob("*.json"))


class GuessLearner(RandomAgent):
    """A fake learning agent on the guess env: says "alpha" until trained, then the secret.

    Records the calls the pipeline makes, so the test sees the before/after flow.
    """

    name = "learner"
    learns = True

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        self.calls: list[str] = []
        self.trained = False

    def env_kwargs(self, env_name: str) -> dict[str, Any]:
        return {"oracle_info": True}  # the "trained" policy reads the answer

    def prepare(self, env_name: str, task: str | None) -> None:
        self.calls.append("prepare")
        self.prepared = True

    @property
    def eval_episodes(self) -> int | None:
        # like a trainer's env-specific preset: known once the agent is prepared for the env
        return 6 if getattr(self, "prepared", False) else 1

    def train(self, env_name: str, task: str | None) -> None:
        self.calls.append("train")
        self.trained = True

    def reset(self, slot: int, observation: Any, info: dict[str, Any]) -> None:
        self.calls.append("trained episode" if self.trained else "untrained episode")

    def act(self, slot: int, observation: Any, info: dict[str, Any]) -> str:
        return info["oracle"]["gold_actions"][0] if self.trained else "say alpha"

    def config(self) -> dict[str, Any]:
        return {"trained": self.trained}


@pytest.fixture
def learner(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setitem(_AGENTS, "learner", {"*": f"{__name__}:GuessLearner"})
    return "learner"


def test_a_learner_is_evaluated_before_and_after_training_on_the_same_seeds(
    tmp_path, learner: str
) -> None:
    lines: list[str] = []
    evaluations: list[int] = []
    outcome = run(
        learner,
        "guess",
        episodes=12,
        seed=5,
        num_envs=3,
        out_dir=tmp_path,
        trajectories_path=tmp_path / "traj.jsonl",
        on_evaluation=lambda split, n: evaluations.append(n),
        log=lines.append,
    )
    assert outcome is not None and outcome.initial is not None
    calls = outcome.agent.calls
    assert calls[0] == "prepare" and calls.count("train") == 1
    train_at = calls.index("train")
    assert set(calls[1:train_at]) == {"untrained episode"} and len(calls[1:train_at]) == 12
    assert set(calls[train_at + 1 :]) == {"trained episode"}
    assert evaluations == [12, 12]
    assert [line.split(" on ")[0].split(":")[0] for line in lines] == [
        "evaluating untrained learner",
        "untrained learner",
        "training learner",
        "evaluating trained learner",
    ]
    before, after = outcome.initial.result, outcome.result
    assert [r.seed for r in before.records] == [r.seed for r in after.records] == list(range(5, 17))
    assert after.metrics["success_rate"] == 1.0 > before.metrics["success_rate"]

    # the paired difference: per-episode scores, same seeds
    diffs = [b.score - a.score for a, b in zip(before.records, after.records, strict=True)]
    d = outcome.comparison
    assert d is not None and d.episodes == 12
    assert d.mean == pytest.approx(sum(diffs) / 12) and d.ci95_low > 0

    # two rows: the untrained one labelled, the trained one with the comparison
    initial_row = json.loads(outcome.initial.path.read_text())
    trained_row = json.loads(outcome.path.read_text())
    assert sorted(tmp_path.glob("*.json")) == sorted([outcome.initial.path, outcome.path])
    assert initial_row["checkpoint"] == "initial" and "comparison" not in initial_row
    assert initial_row["config"]["agent"] == {"trained": False}  # its config before training
    assert initial_row["metrics"]["mean_score"] == before.metrics["mean_score"]
    assert trained_row["checkpoint"] == "trained"
    assert trained_row["comparison"]["baseline"] == "initial"
    assert trained_row["comparison"]["mean"] == pytest.approx(d.mean)
    assert trained_row["comparison"]["ci95_low"] == pytest.approx(d.ci95_low)
    assert "-initial-" in outcome.initial.path.name
    assert (tmp_path / "traj.initial.jsonl").exists() and (tmp_path / "traj.jsonl").exists()


def test_a_scripted_agent_is_evaluated_once_with_no_comparison(tmp_path) -> None:
    outcome = run("random", "guess", episodes=3, out_dir=tmp_path, log=lambda _: None)
    assert outcome is not None and outcome.initial is None and outcome.comparison is None
    row = json.loads(outcome.path.read_text())
    assert "checkpoint" not in row and "comparison" not in row
    assert len(list(tmp_path.glob("*.json"))) == 1


def test_a_learners_own_episode_count_is_read_after_it_is_prepared(tmp_path, learner: str) -> None:
    outcome = run(learner, "guess", out_dir=tmp_path, log=lambda _: None)
    assert outcome is not None and outcome.initial is not None
    assert outcome.initial.result.metrics["episodes"] == outcome.metrics["episodes"] == 6
