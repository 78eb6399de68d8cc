"""The OOD transfer env: pairs, stages, info keys, errors."""

from __future__ import annotations

import gymnasium as gym
import pytest

import empo_gym  # noqa: F401
from empo_gym.ood import TRANSFERS, ScienceWorldOODEnv, get_transfer


def test_the_papers_three_pairs() -> None:
    assert {(t.source, t.target) for t in TRANSFERS.values()} == {
        ("identify-life-stages-2", "lifespan-shortest-lived"),
        ("lifespan-longest-lived", "test-conductivity"),
        ("power-component", "chemistry-mix-paint-secondary-color"),
    }


def test_errors_name_the_bad_value() -> None:
    with pytest.raises(ValueError, match="unknown transfer 'bio3'; expected one of: bio1-bio2"):
        get_transfer("bio3")
    with pytest.raises(ValueError, match="unknown stage 'middle'"):
        ScienceWorldOODEnv(stage="middle")
    with pytest.raises(ValueError, match="picks its task"):
        ScienceWorldOODEnv(task="boil")


def test_stage_picks_the_task_and_step_limit() -> None:
    env = ScienceWorldOODEnv("electricity-chemistry", stage="source")
    assert env.task == "power-component" and env.max_steps == 30
    env = ScienceWorldOODEnv("electricity-chemistry", stage="target")
    assert env.task == "chemistry-mix-paint-secondary-color" and env.max_steps == 60


@pytest.mark.slow
def test_target_stage_runs_with_transfer_info() -> None:
    env = gym.make("empo_gym/ScienceWorldOOD-v0", transfer="bio1-bio2")
    try:
        obs, info = env.reset(seed=0)
        assert info["task"] == "lifespan-shortest-lived"
        assert info["source_task"] == "identify-life-stages-2"
        assert (info["transfer"], info["stage"]) == ("bio1-bio2", "target")
        obs, r, term, trunc, info = env.step("look around")
        assert info["target_task"] == "lifespan-shortest-lived"
        with pytest.raises(ValueError, match="fixed to 'lifespan-shortest-lived'"):
            env.reset(options={"task": "boil"})
    finally:
        env.close()
