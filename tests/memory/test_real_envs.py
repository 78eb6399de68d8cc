"""The memory wrappers around the real envs (slow: ScienceWorld starts a JVM per env)."""

from __future__ import annotations

import importlib.util
import tempfile

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import empo_gym  # noqa: F401  (registers the ids)
from empo_gym.memory import MemoryVectorWrapper, MemoryWrapper, split_tips

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:.*is different from the unwrapped"),
]

SW = "empo_gym/ScienceWorld-v0"


def _play(env, n_steps, rng, **options):
    obs, info = env.reset(seed=0, options=options)
    seen = [(obs, info)]
    for _ in range(n_steps):
        acts = [a for a in info["admissible_actions"] if not a.startswith("focus")]
        obs, _, term, trunc, info = env.step(acts[int(rng.integers(len(acts)))])
        seen.append((obs, info))
        if term or trunc:
            break
    return seen


def _assert_clean(obs):
    assert "<tip>" not in obs["observation"]
    for tip in split_tips(obs["tips"]):
        assert tip not in obs["observation"]


def test_scienceworld_check_env_and_tips_outside_observation():
    env = MemoryWrapper(gym.make(SW, task="boil", max_steps=6))
    try:
        check_env(env, skip_render_check=True)
        rng = np.random.default_rng(0)
        first = _play(env, 10, rng)
        assert first[-1][0]["tips"] == "" and "memory_tip" in first[-1][1]
        assert len(env.store) == len(first) - 1  # one entry per step
        seen = _play(env, 10, rng, use_memory=True)
        obs0, info0 = seen[0]
        assert info0["memory_partition"].startswith("boil/")
        assert obs0["observation"] == first[0][0]["observation"]  # same seed, same raw state
        assert obs0["tips"] and obs0["tip_block"].startswith("<tip>")
        for obs, _ in seen:
            _assert_clean(obs)
            assert env.observation_space.contains(obs)
        assert any(i["intrinsic_reward"] > 0 for _, i in seen[1:])
    finally:
        env.close()


def test_scienceworld_async_vector_memory_on_off_per_episode():
    envs = gym.make_vec(
        SW,
        num_envs=2,
        vectorization_mode="async",
        wrappers=[MemoryWrapper],
        task="boil",
        max_steps=3,
    )
    try:
        for use_memory in (False, True, False):
            obs, info = envs.reset(seed=[0, 1], options={"use_memory": use_memory})
            # each worker keeps its own store: after the first episode both have memories
            assert [bool(t) for t in obs["tips"]] == [use_memory] * 2
            assert all(o.startswith("This room is called") for o in obs["observation"])
            for _ in range(3):
                obs, _, term, trunc, info = envs.step(["look around", "look around"])
            assert (term | trunc).all()
            assert list(info["_memory_tip"]) == [True, True]
    finally:
        envs.close()


def test_scienceworld_vector_wrapper_shared_store_per_env_modes():
    envs = MemoryVectorWrapper(
        gym.make_vec(SW, num_envs=2, vectorization_mode="async", task="boil", max_steps=3)
    )
    try:
        envs.reset(seed=[0, 0])
        for _ in range(3):
            envs.step(["look around", "open door to hallway"])
        assert len(envs.store) > 0
        obs, info = envs.reset(seed=[0, 0], options={"use_memory": [True, False]})
        assert bool(obs["tips"][0]) and obs["tips"][1] == ""
        for o in obs["observation"]:
            assert "<tip>" not in o
    finally:
        envs.close()


@pytest.mark.skipif(
    importlib.util.find_spec("empo_gym.webshop.env") is None, reason="WebShop env not present"
)
def test_webshop_check_env_and_memory():
    env = MemoryWrapper(
        gym.make("empo_gym/WebShop-v0", num_products=100, cache_dir=tempfile.mkdtemp())
    )
    try:
        check_env(env, skip_render_check=True)
        for use_memory in (False, True):
            obs, info = env.reset(seed=0, options={"use_memory": use_memory})
            assert info["memory_partition"].startswith("webshop/")
            assert bool(obs["tips"]) == use_memory
            for a in ["search[shirt]", "click[back to search]", "search[red shoes]"]:
                obs, _, term, trunc, info = env.step(a)
                _assert_clean(obs)
            while not (term or trunc):
                obs, _, term, trunc, info = env.step("click[back to search]")
        assert len(env.store) > 0
    finally:
        env.close()
