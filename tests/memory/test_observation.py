"""The memory observation contract (empo_gym.memory.observation): keys, builder, reader."""

from __future__ import annotations

import pytest

from empo_gym.memory import (
    MemoryWrapper,
    compose_observation,
    compose_prompt,
    split_observation,
)
from empo_gym.memory.tips import TIP_BLOCK_GAP
from empo_gym.toy import ToyTextEnv


def test_split_observation_rejects_other_types():
    with pytest.raises(TypeError, match="expected str or a dict"):
        split_observation(3)
    with pytest.raises(TypeError, match="'observation'"):
        split_observation({"obs": "x"})
    assert split_observation({"observation": "x", "tips": "a\nb"}) == ("x", ["a", "b"])


def test_compose_then_split_round_trips():
    obs = compose_observation("hall", ["go north", "open   the\nchest"])
    text, block = split_observation(obs)
    assert text == "hall" and block == obs["tip_block"]
    assert compose_prompt(obs) == "hall" + TIP_BLOCK_GAP + obs["tip_block"]
    assert split_observation(compose_observation("hall", [])) == ("hall", [])


def test_wrapper_writes_the_contract():
    env = MemoryWrapper(ToyTextEnv())
    obs, _ = env.reset(seed=0)
    assert obs == compose_observation("You are in a hall. Exits: north.", [])
    assert env.observation_space.contains(obs)


def test_the_old_partition_reset_option_still_works_with_a_warning():
    env = MemoryWrapper(ToyTextEnv())
    with pytest.warns(DeprecationWarning, match="'memory_slot' is deprecated"):
        _, info = env.reset(seed=0, options={"memory_slot": "custom"})
    assert info["memory_partition"] == "custom"
