"""UnicodeText membership and its AsyncVectorEnv shared-memory codec (no JVM needed)."""

from __future__ import annotations

import copy

import gymnasium as gym
import pytest
from hypothesis import given
from hypothesis import strategies as st

import empo_gym  # noqa: F401
from empo_gym.spaces import UnicodeText


class EchoEnv(gym.Env):
    """Echoes the action back; the first observation is non-ASCII."""

    def __init__(self) -> None:
        self.observation_space = UnicodeText(200)
        self.action_space = UnicodeText(200)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return "héllo wörld — 你好 🙂", {}

    def step(self, action):
        return f"echo: {action}", 0.0, False, False, {}


gym.register("empo_gym_test/Echo-v0", entry_point=EchoEnv)


@given(st.text(max_size=64))
def test_any_string_up_to_max_length_is_a_member(text: str) -> None:
    assert UnicodeText(64).contains(text)


def test_non_strings_and_long_strings_are_not_members() -> None:
    space = UnicodeText(4)
    assert not space.contains(b"abc")
    assert not space.contains(None)
    assert not space.contains("abcde")
    assert space.contains(space.sample())


@pytest.mark.parametrize("shared_memory", [True, False])
def test_async_vector_env_round_trips_unicode(shared_memory: bool) -> None:
    vec = gym.make_vec(
        "empo_gym_test/Echo-v0",
        num_envs=2,
        vectorization_mode="async",
        vector_kwargs={"shared_memory": shared_memory},
    )
    try:
        obs, _ = vec.reset(seed=0)
        assert tuple(obs) == ("héllo wörld — 你好 🙂",) * 2
        first = copy.deepcopy(obs)
        obs, *_ = vec.step(["ça va?", "日本語 text"])
        assert tuple(obs) == ("echo: ça va?", "echo: 日本語 text")
        assert tuple(first) == ("héllo wörld — 你好 🙂",) * 2  # returned copies do not change
        obs, *_ = vec.step(["a", ""])
        assert tuple(obs) == ("echo: a", "echo: ")  # shorter text fully replaces longer text
    finally:
        vec.close()
