"""The TextWorldExpress games through the wrappers the other envs use: the TRL adapter and the
EMPO² memory wrapper (real JVM, slow)."""

from __future__ import annotations

import pytest

from empo_gym.adapters.trl import INVALID_PREFIX, environment_factory
from empo_gym.memory import memory_partition

pytestmark = pytest.mark.slow

PROMPT = [{"role": "user", "content": "Solve it."}]


def test_trl_tool_plays_the_gold_path_to_reward_one() -> None:
    with environment_factory("coin", split="test", oracle_info=True, numLocations=4)() as env:
        first = env.reset(prompt=PROMPT, seed=3)
        assert "find the coin" in first
        gold = env._info["oracle"]["gold_actions"]
        assert env.act(action="fly to the moon").startswith(INVALID_PREFIX)
        for action in gold:
            env.act(action=action)
            if env.done:
                break
        assert env.done and env.get_reward() == 1.0


def test_memory_partition_is_game_and_game_seed() -> None:
    from empo_gym.twx.env import TextWorldExpressEnv

    env = TextWorldExpressEnv("twc", split="dev")
    try:
        _, info = env.reset(seed=5)
        assert memory_partition(info) == f"twc/{info['game_seed']}"
        assert memory_partition(info, "task") == "twc"
    finally:
        env.close()


def test_memory_wrapper_runs_an_episode_and_stores_its_tip(tmp_path) -> None:
    from empo_gym.memory import MemoryWrapper
    from empo_gym.twx.env import TextWorldExpressEnv

    env = MemoryWrapper(
        TextWorldExpressEnv("coin", split="test", max_steps=5, numLocations=3),
        store=str(tmp_path / "memory"),
    )
    try:
        obs, info = env.reset(seed=1)
        assert info["memory_partition"] == f"coin/{info['game_seed']}"
        assert env.observation_space.contains(obs)
        for _ in range(5):
            obs, reward, term, trunc, info = env.step(info["admissible_actions"][0])
            assert "intrinsic_reward" in info
            if term or trunc:
                break
        assert term or trunc
    finally:
        env.close()
