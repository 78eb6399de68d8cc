"""MemoryVectorWrapper on every env of the suite, and where TimeLimit must go.

WebShop's infos hold dicts (``selected_options``, ``oracle``, ``reward_breakdown``), which a
vector env batches as nested dicts; the wrapper used to fail ``reset`` on them with
``KeyError: 0``. ScienceWorld and its OOD env start JVMs (slow).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.wrappers import TimeLimit

import empo_gym  # noqa: F401  (registers the ids)
from empo_gym.doors import DoorsEnv
from empo_gym.memory import MemoryVectorWrapper, MemoryWrapper

pytestmark = pytest.mark.filterwarnings("ignore:.*is different from the unwrapped")


def _run_until_every_episode_ended(envs: MemoryVectorWrapper, action: str, limit: int) -> dict:
    obs, infos = envs.reset(seed=0, options={"use_memory": True})
    assert len(obs["observation"]) == envs.num_envs
    ended = np.zeros(envs.num_envs, dtype=bool)
    for _ in range(limit):
        obs, _, terms, truncs, infos = envs.step([action] * envs.num_envs)
        ended |= terms | truncs
        if ended.all():
            return infos
    raise AssertionError(f"episodes did not end within {limit} steps")


CASES: list[Any] = [
    pytest.param("empo_gym/Doors-v0", {"depth": 2}, "open the nothing door", id="doors"),
    pytest.param(
        "empo_gym/WebShop-v0",
        {"num_products": 100, "max_steps": 2, "oracle_info": True},
        "click[back to search]",
        id="webshop",
    ),
    pytest.param(
        "empo_gym/ScienceWorld-v0",
        {"task": "boil", "max_steps": 2},
        "look around",
        id="scienceworld",
        marks=pytest.mark.slow,
    ),
    pytest.param(
        "empo_gym/ScienceWorldOOD-v0",
        {"transfer": "bio1-bio2", "max_steps": 2},
        "look around",
        id="ood",
        marks=pytest.mark.slow,
    ),
]


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize(("env_id", "kwargs", "action"), CASES)
def test_vector_memory_wrapper_resets_steps_and_stores_on_every_env(
    env_id: str, kwargs: dict[str, Any], action: str, mode: str, tmp_path: Path
) -> None:
    if env_id.endswith("WebShop-v0"):
        kwargs = dict(kwargs, cache_dir=str(tmp_path))
    if env_id.startswith("empo_gym/ScienceWorld") and mode == "async":
        pytest.skip("the async ScienceWorld case is tests/memory/test_real_envs.py")
    envs = MemoryVectorWrapper(gym.make_vec(env_id, num_envs=2, vectorization_mode=mode, **kwargs))
    try:
        _run_until_every_episode_ended(envs, action, limit=10)
        assert len(envs.store) > 0  # one tip per ended episode, one entry per step
    finally:
        envs.close()


def test_webshop_dict_infos_reach_the_partition_function(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []

    def partition(info: dict[str, Any]) -> str:
        seen.append(info)
        return f"webshop/{info['goal_index']}"

    envs = MemoryVectorWrapper(
        gym.make_vec(
            "empo_gym/WebShop-v0",
            num_envs=2,
            vectorization_mode="sync",
            num_products=100,
            oracle_info=True,
            cache_dir=str(tmp_path),
        ),
        partition_fn=partition,
    )
    try:
        envs.reset(seed=0)
    finally:
        envs.close()
    assert [s["goal_index"] for s in seen] == [0, 1]  # sub-env i starts with seed 0 + i
    assert all(isinstance(s["oracle"], dict) and s["oracle"]["asin"] for s in seen)
    assert all(s["selected_options"] == {} for s in seen)


def test_time_limit_outside_the_memory_wrapper_is_refused_with_the_fix() -> None:
    env = TimeLimit(MemoryWrapper(DoorsEnv()), max_episode_steps=2)
    with pytest.raises(ValueError, match=r"Put the TimeLimit inside: MemoryWrapper\(TimeLimit"):
        env.reset(seed=0)


def test_time_limit_inside_the_memory_wrapper_stores_the_truncated_episode() -> None:
    env = MemoryWrapper(TimeLimit(DoorsEnv(depth=5), max_episode_steps=2))
    env.reset(seed=0)
    _, _, terminated, truncated, info = env.step("nothing")
    assert not (terminated or truncated)
    _, _, terminated, truncated, info = env.step("nothing")
    assert truncated and not terminated
    assert info["memory_tip"] and len(env.store) == 2  # one entry per step


def test_gym_make_time_limit_goes_inside() -> None:
    env = MemoryWrapper(gym.make("empo_gym/Doors-v0", max_episode_steps=1))
    env.reset(seed=0)
    _, _, _, truncated, _ = env.step("nothing")
    assert truncated and len(env.store) == 1
