"""The evaluation harness on a toy env: seeding, parallel slots, records, aggregation."""

from __future__ import annotations

import json

import pytest

from empo_gym.agents.registry import make_agent
from empo_gym.agents.scripted.oracle import ScienceWorldOracleAgent
from empo_gym.agents.scripted.random_agent import RandomAgent
from empo_gym.harness import EpisodeRecord, aggregate, evaluate
from tests.toy_envs import GuessEnv  # noqa: F401  (registers the "guess" env)


class GuessOracle(ScienceWorldOracleAgent):
    supported_envs = ()

    def env_kwargs(self, env_name):
        return {"oracle_info": True}


def test_oracle_scores_perfectly_and_random_lower() -> None:
    best = evaluate(GuessOracle(), "guess", episodes=8, seed=0)
    assert best.metrics["success_rate"] == 1.0 and best.metrics["mean_score"] == 100.0
    rnd = evaluate(RandomAgent(seed=0), "guess", episodes=40, seed=0)
    assert 0.0 < rnd.metrics["success_rate"] < 1.0
    assert rnd.metrics["mean_score"] < best.metrics["mean_score"]
    assert rnd.settings["success_rule"] == "guess:said_the_secret"


def test_results_do_not_depend_on_num_envs() -> None:
    one = evaluate(RandomAgent(seed=1), "guess", episodes=6, seed=5, num_envs=1)
    assert [r.seed for r in one.records] == [5, 6, 7, 8, 9, 10]
    three = evaluate(GuessOracle(), "guess", episodes=6, seed=5, num_envs=3)
    assert [r.episode for r in three.records] == list(range(6))
    assert three.settings["num_envs"] == 3
    assert all(r.success for r in three.records)


def test_trajectories_jsonl(tmp_path) -> None:
    path = tmp_path / "traj.jsonl"
    evaluate(GuessOracle(), "guess", episodes=3, seed=0, trajectories_path=path)
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert len(lines) == 3
    assert lines[0]["transitions"][0]["observation"] == "right!"


def test_bad_arguments_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="unknown env 'nowhere'"):
        evaluate(RandomAgent(), "nowhere", episodes=1)
    with pytest.raises(ValueError, match="unknown split 'dev' for env 'guess'"):
        evaluate(RandomAgent(), "guess", split="dev", episodes=1)
    with pytest.raises(ValueError, match="episodes must be a positive int"):
        evaluate(RandomAgent(), "guess", episodes=0)
    with pytest.raises(ValueError, match="does not support env 'guess'"):
        evaluate(ScienceWorldOracleAgent(), "guess", episodes=1)
    with pytest.raises(ValueError, match="unknown agent 'wizard'"):
        make_agent("wizard", "guess")


def test_aggregate_rejects_empty() -> None:
    with pytest.raises(ValueError, match="zero episodes"):
        aggregate([])
    rec = EpisodeRecord(0, 0, None, 10.0, False, 1, 0.1, True, False, 0, 0.0)
    assert aggregate([rec])["ci95"] == 0.0


def test_random_agent_results_do_not_depend_on_num_envs() -> None:
    one = evaluate(RandomAgent(seed=4), "guess", episodes=12, seed=3, num_envs=1)
    four = evaluate(RandomAgent(seed=4), "guess", episodes=12, seed=3, num_envs=4)
    assert [r.score for r in one.records] == [r.score for r in four.records]
    assert [r.steps for r in one.records] == [r.steps for r in four.records]


def test_an_object_that_is_not_an_agent_is_named_with_what_it_lacks() -> None:
    class HalfAgent:
        name = "half"
        supported_envs = ()

        def act_batch(self, slots, observations, infos):
            return ["say 1" for _ in slots]

    with pytest.raises(TypeError, match="lacks env_kwargs, reset, observe; subclass"):
        evaluate(HalfAgent(), "guess", episodes=1)  # type: ignore[arg-type]
