"""The run pipeline called from Python: train-if-learning -> evaluate -> leaderboard row."""

from __future__ import annotations

import json
from typing import Any

import pytest

from empo_gym.agents.registry import _AGENTS
from empo_gym.agents.scripted.random_agent import RandomAgent
from empo_gym.pipeline import DEFAULT_EPISODES, RunConfig, run
from tests.toy_envs import GuessEnv  # noqa: F401  (registers the "guess" env)


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
