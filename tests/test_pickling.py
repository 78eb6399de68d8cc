"""Every env survives a pickle round trip (spawned workers, Ray-style frameworks).

Doors and WebShop copies continue the episode; ScienceWorld and TextWorldExpress copies carry the
configuration and RNG but no JVM or episode (call ``reset()``): a copy's reset gives the same
episode as the original's (the JVM cases are slow).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from empo_gym.doors import DoorsEnv
from empo_gym.ood import ScienceWorldOODEnv
from empo_gym.scienceworld.env import ScienceWorldEnv
from empo_gym.twx.env import TextWorldExpressEnv
from empo_gym.webshop.env import WebShopEnv


def _round_trip(env):
    return pickle.loads(pickle.dumps(env))


def test_doors_copy_continues_the_episode() -> None:
    env = DoorsEnv(depth=3)
    env.reset(seed=4)
    env.step(env.safe_action())
    copy = _round_trip(env)
    action = env.safe_action()
    assert copy.step(action)[:4] == env.step(action)[:4]


def test_webshop_copy_continues_the_episode(tmp_path: Path) -> None:
    env = WebShopEnv(num_products=100, cache_dir=str(tmp_path))
    env.reset(seed=3)
    env.step("search[shirt]")
    copy = _round_trip(env)
    assert copy.shop is env.shop  # the process-wide shop, not a second catalogue
    for action in ("click[next >]", "click[< prev]", "click[back to search]"):
        assert copy.step(action) == env.step(action)
    assert copy.reset(seed=5) == env.reset(seed=5)


@pytest.mark.parametrize(
    "make",
    [
        lambda: ScienceWorldEnv(task="boil", split="dev", max_steps=7, oracle_info=True),
        lambda: ScienceWorldOODEnv(transfer="bio2-electricity", stage="source"),
    ],
    ids=["scienceworld", "ood"],
)
def test_scienceworld_envs_pickle_their_configuration(make) -> None:
    env = make()
    copy = _round_trip(env)
    for name in ("task", "split", "max_steps", "oracle_info", "jvm_max_heap_mb", "reuse_jvm"):
        assert getattr(copy, name) == getattr(env, name), name
    assert copy._sim is None  # nothing started


@pytest.mark.slow
@pytest.mark.parametrize(
    "make",
    [
        lambda: ScienceWorldEnv(task="boil", split="test"),
        lambda: ScienceWorldOODEnv(transfer="bio1-bio2", stage="target"),
    ],
    ids=["scienceworld", "ood"],
)
def test_scienceworld_copy_of_a_running_env_replays_the_same_episode(make) -> None:
    env = make()
    try:
        first = env.reset(seed=2)
        env.step("look around")
        copy = _round_trip(env)
        try:
            with pytest.raises(RuntimeError, match="call reset"):
                copy.step("look around")
            assert copy.reset(seed=2) == first
            assert copy.step("look around")[:4] == env.step("look around")[:4]
        finally:
            copy.close()
    finally:
        env.close()


def test_textworld_express_env_pickles_its_configuration() -> None:
    env = TextWorldExpressEnv("coin", split="dev", max_steps=9, oracle_info=True, numLocations=4)
    copy = _round_trip(env)
    for name in ("game", "split", "params", "max_steps", "oracle_info", "jvm_max_heap_mb"):
        assert getattr(copy, name) == getattr(env, name), name
    assert copy._sim is None  # nothing started


@pytest.mark.slow
def test_textworld_express_copy_of_a_running_env_replays_the_same_episode() -> None:
    env = TextWorldExpressEnv("cookingworld", split="test")
    try:
        first = env.reset(seed=2)
        env.step("look around")
        copy = _round_trip(env)
        try:
            with pytest.raises(RuntimeError, match="call reset"):
                copy.step("look around")
            assert copy.reset(seed=2) == first
            assert copy.step("look around")[:4] == env.step("look around")[:4]
        finally:
            copy.close()
    finally:
        env.close()
