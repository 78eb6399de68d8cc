"""The memory-only agent: tips written by the policy, stored per step, injected into prompts."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from empo_gym.agents.llm.memory_only import MemoryOnlyAgent
from empo_gym.agents.llm.policy import Generation, SamplingConfig
from empo_gym.harness import evaluate
from empo_gym.memory import MemoryStore, memory_partition
from empo_gym.toy import GUESS_WORDS, ToyTextEnv

_FAILED = re.compile(r"the specific action you took was (say \w+); Eventually you got the score 0/")
_WON = re.compile(r"the specific action you took was (say \w+); Eventually you got the score 100/")


class MemoryStubPolicy:
    """TEST DOUBLE, not a model: a deterministic policy whose choices depend only on the tips.

    Action prompts: replay an action a memory says scored 100; else the first word of
    ``GUESS_WORDS`` that no memory says scored 0. Tip prompts (they contain "Write ONE
    sentence"): a fixed sentence. It records every batch it was asked to answer.
    """

    name = "stub-policy"

    def __init__(self) -> None:
        self.sampling = SamplingConfig(temperature=0.0, max_new_tokens=8)
        self.calls: list[list[str]] = []  # last user message of each conversation, per call
        self.closed = False

    def _answer(self, content: str) -> str:
        if "Write ONE sentence" in content:
            return "  Guessing words one by one finds the secret;\n try another word next time. "
        won = _WON.findall(content)
        if won:
            return won[0]
        failed = set(_FAILED.findall(content))
        for word in GUESS_WORDS:
            if f"say {word}" not in failed:
                return f"say {word}"
        return "say alpha"

    def generate(
        self, conversations: Sequence[Sequence[dict[str, str]]], sampling: Any = None
    ) -> list[Generation]:
        """One answer per conversation (the same interface as TransformersPolicy.generate)."""
        contents = [[m for m in c if m["role"] == "user"][-1]["content"] for c in conversations]
        self.calls.append(contents)
        return [Generation([], [], [], self._answer(c)) for c in contents]

    def close(self) -> None:
        self.closed = True


def _guess_env(kwargs: dict[str, Any]) -> ToyTextEnv:
    return ToyTextEnv("guess", max_steps=1)


def _agent(**kwargs: Any) -> MemoryOnlyAgent:
    return MemoryOnlyAgent(policy=MemoryStubPolicy(), embedder="hashing", **kwargs)


def test_memory_grows_across_episodes_and_tips_reach_the_prompt() -> None:
    agent = _agent()
    scores, sizes = [], []
    for _ in range(5):  # the same seed each time: the same secret, the same memory partition
        res = evaluate(agent, "guess", episodes=1, seed=3, make_env=_guess_env)
        agent.flush_tips()
        scores.append(res.records[0].score)
        sizes.append(agent.memory_size)
    policy = agent.policy
    action_prompts = [c for call in policy.calls for c in call if "Write ONE sentence" not in c]
    tip_prompts = [c for call in policy.calls for c in call if "Write ONE sentence" in c]
    assert "<tip>" not in action_prompts[0]  # the first episode has an empty memory
    assert all("<tip> Here are some memories" in p for p in action_prompts[1:])
    assert len(tip_prompts) == 5 and "Task: say the secret word" in tip_prompts[0]
    # the memory steers the frozen stub to the secret, then keeps it there
    assert scores[-1] == 100.0 and scores[0] < 100.0
    assert sizes == sorted(sizes) and sizes[0] == 1
    entry = agent.store.query(memory_partition({"task": "guess"}), "guess the word (test)")[0]
    assert entry.text.startswith("Guessing words one by one finds the secret; try another word")
    assert "; At that timestep, the specific action you took was say " in entry.text
    assert agent.tip_log[0]["partition"] == "guess" and len(agent.tip_log) == 5
    cfg = agent.config()["memory"]
    assert cfg["tips_written"] == 5 and cfg["entries"] == agent.memory_size
    assert cfg["steps_with_tips"] == 4


def test_batched_generation_and_tips_written_in_one_call() -> None:
    agent = _agent()
    res = evaluate(
        agent,
        "guess",
        episodes=4,
        seed=0,
        num_envs=2,
        make_env=lambda kw: ToyTextEnv("guess", max_steps=2),
    )
    agent.flush_tips()
    assert len(res.records) == 4
    sizes = [len(call) for call in agent.policy.calls]
    assert max(sizes) == 2  # two slots answered by one generation, tips of two episodes too
    assert len(agent.tip_log) == 4
    assert len(agent.policy.calls) < sum(r.steps for r in res.records) + 4


def test_each_state_is_embedded_once_and_stored_under_that_key() -> None:
    from tests.counting import CountingEmbedder

    emb = CountingEmbedder()
    agent = MemoryOnlyAgent(policy=MemoryStubPolicy(), store=MemoryStore(emb))
    evaluate(
        agent,
        "guess",
        episodes=4,
        seed=0,
        num_envs=2,
        make_env=lambda kw: ToyTextEnv("guess", max_steps=2),
    )
    assert agent.flush_tips() > 0 and len(agent.tip_log) == 4
    # retrieval embedded every acted state once; writing tips reused those vectors
    assert len(emb.texts) == agent.steps_seen and agent.memory_size > 0


def test_no_memory_ablation_never_injects_tips() -> None:
    agent = _agent(use_memory=False)
    for _ in range(3):
        evaluate(agent, "guess", episodes=1, seed=3, make_env=_guess_env)
    stub = agent.policy
    agent.close()
    # still written (the same step thrice is stored once: entries are de-duplicated by content)
    assert len(agent.tip_log) == 3 and agent.memory_size == 1
    assert not any("<tip>" in c for call in stub.calls for c in call)
    assert agent.config()["memory"]["steps_with_tips"] == 0


def test_close_writes_pending_tips_and_memory_file_round_trips(tmp_path) -> None:
    path = tmp_path / "mem.safetensors"
    agent = _agent(memory_path=path)
    evaluate(agent, "guess", episodes=2, seed=3, make_env=_guess_env)
    stub = agent.policy
    agent.close()
    assert stub.closed and path.exists()
    again = _agent(memory_path=path)
    assert again.memory_size == len(MemoryStore.load(path, "hashing")) > 0


def test_bad_settings_name_the_valid_choices() -> None:
    with pytest.raises(
        ValueError, match="unknown partition_by 'variation'; expected one of: instance"
    ):
        _agent(partition_by="variation")
    with pytest.raises(ValueError, match="tip_max_new_tokens"):
        _agent(tip_max_new_tokens=0)


def test_runs_with_a_tiny_transformers_policy(tiny_policy) -> None:
    agent = MemoryOnlyAgent(
        policy=tiny_policy, embedder="hashing", max_new_tokens=4, tip_max_new_tokens=6
    )
    res = evaluate(agent, "guess", episodes=2, seed=5, num_envs=2, make_env=_guess_env)
    agent.flush_tips()
    assert len(res.records) == 2
    assert len(agent.tip_log) == 2 and agent.memory_size > 0
    assert all(isinstance(t["tip"], str) and "\n" not in t["tip"] for t in agent.tip_log)


@pytest.mark.slow
def test_cli_run_memory_only_on_scienceworld_find_plant(tmp_path) -> None:
    """The issue's must-show command, with 3-step episodes and short answers (test budget)."""
    import json

    from typer.testing import CliRunner

    from empo_gym import cli
    from empo_gym.agents.registry import agent_names, register_agent

    if "memory-only" not in agent_names():
        register_agent("memory-only", "*", "empo_gym.agents.llm.memory_only:MemoryOnlyAgent")
    config = tmp_path / "run.yaml"
    config.write_text(
        "agent:\n  max_new_tokens: 8\n  tip_max_new_tokens: 24\nenv_kwargs:\n  max_steps: 3\n",
        encoding="utf-8",
    )
    t0 = time.perf_counter()
    result = CliRunner().invoke(
        cli.app,
        [
            "run",
            "--agent",
            "memory-only",
            "--env",
            "scienceworld",
            "--task",
            "find-plant",
            "--episodes",
            "2",
            "--out",
            str(tmp_path / "lb"),
            "--config",
            str(config),
        ],
    )
    wall = time.perf_counter() - t0
    assert result.exit_code == 0, result.output
    path = result.output.strip().splitlines()[-1]
    entry = json.loads(Path(path).read_text(encoding="utf-8"))
    assert entry["agent"] == "memory-only" and entry["metrics"]["episodes"] == 2
    memory = entry["config"]["agent"]["memory"]
    assert memory["tips_written"] == 2 and memory["entries"] > 0
    print(f"memory-only find-plant, 2 episodes x <=3 steps: {wall:.1f} s; memory {memory}")


def test_missing_minilm_falls_back_to_hashing_and_says_so(monkeypatch) -> None:
    import empo_gym.agents.llm.memory_only as mo

    real = mo.make_embedder

    def fake(name):
        if name == "minilm":
            raise RuntimeError("could not load all-MiniLM-L6-v2 from nowhere")
        return real(name)

    monkeypatch.setattr(mo, "make_embedder", fake)
    agent = MemoryOnlyAgent(policy=MemoryStubPolicy())
    with pytest.warns(UserWarning, match="using the 'hashing' embedder"):
        evaluate(agent, "guess", episodes=1, seed=3, make_env=_guess_env)
    assert agent.config()["memory"]["embedder"].startswith("hashing")


def test_the_stub_is_a_policy():
    from empo_gym.agents.llm.policy import Policy

    assert isinstance(MemoryStubPolicy(), Policy)
