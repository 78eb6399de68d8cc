"""The evaluation harness on a toy env: seeding, parallel slots, records, aggregation."""

from __future__ import annotations

import json

import pytest

from empo_gym.agents.registry import make_agent
from empo_gym.agents.scripted.oracle import ScienceWorldOracleAgent
from empo_gym.agents.scripted.random_agent import RandomAgent
from empo_gym.harness import EpisodeRecord, aggregate, evaluate


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


class _CrashingAgent(RandomAgent):
    """Acts for a few steps, then fails (a model error mid-evaluation)."""

    def __init__(self, after: int) -> None:
        super().__init__(seed=0)
        self.left = after

    def act(self, slot, observation, info):
        self.left -= 1
        if self.left < 0:
            raise RuntimeError("the model died")
        return super().act(slot, observation, info)


def test_a_failed_evaluation_leaves_an_existing_trajectories_file_untouched(tmp_path) -> None:
    """The transitions go to a temp file moved into place at the end: a failing run neither
    empties the previous file nor leaves a temp file."""
    path = tmp_path / "t.jsonl"
    evaluate(GuessOracle(), "guess", episodes=2, seed=0, trajectories_path=path)
    before = path.read_bytes()
    assert before.count(b"\n") == 2
    with pytest.raises(RuntimeError, match="the model died"):
        evaluate(_CrashingAgent(after=5), "guess", episodes=4, trajectories_path=path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.jsonl"]
    evaluate(RandomAgent(seed=0), "guess", episodes=3, seed=0, trajectories_path=path)
    assert path.read_bytes().count(b"\n") == 3  # a finished run replaces it


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seed": -1}, "seed must be an int >= 0"),
        ({"episodes": 0}, "episodes must be a positive int"),
        ({"num_envs": 0}, "num_envs must be a positive int"),
    ],
)
def test_bad_counts_and_seeds_fail_before_any_env_is_built(kwargs, message) -> None:
    built = []
    with pytest.raises(ValueError, match=message):
        evaluate(RandomAgent(seed=0), "guess", make_env=built.append, **kwargs)
    assert not built


def test_trajectories_path_that_is_a_directory_fails_before_any_env(tmp_path) -> None:
    built = []
    with pytest.raises(ValueError, match="is a directory"):
        evaluate(RandomAgent(seed=0), "guess", trajectories_path=tmp_path, make_env=built.append)
    assert not built
