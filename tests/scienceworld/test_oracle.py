"""The oracle reaches success on variation 0 of all 30 tasks through the Gymnasium env.

This proves the env passes actions to the simulator intact and reports success correctly.
"""

from __future__ import annotations

import pytest

from empo_gym.agents.scripted.oracle import ScienceWorldOracleAgent
from empo_gym.scienceworld.env import ScienceWorldEnv
from empo_gym.scienceworld.tasks import TASK_NAMES

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def oracle_env() -> ScienceWorldEnv:
    agent = ScienceWorldOracleAgent()
    env = ScienceWorldEnv(**agent.env_kwargs("scienceworld"))
    yield env
    env.close()


@pytest.mark.parametrize("task", TASK_NAMES)
def test_oracle_succeeds_on_variation_0(oracle_env: ScienceWorldEnv, task: str) -> None:
    agent = ScienceWorldOracleAgent()
    obs, info = oracle_env.reset(options={"task": task, "variation": 0})
    agent.reset(0, obs, info)
    plan = info["oracle"]["gold_actions"]
    assert plan, f"no gold path for {task}"
    for _ in range(len(plan) + 5):
        obs, reward, term, trunc, info = oracle_env.step(agent.act(0, obs, info))
        if term or trunc:
            break
    assert term and info["success"], (task, info["score"], info["goal_progress"][-400:])
    assert info["score"] > 70
