"""Text that cannot be encoded, and over-long observations, at the env boundary (no JVM).

The rule: an action holding lone surrogates (``"\\udcff"``) is a no-op flagged
``info["invalid_action"]`` in every env; stored text (memory tips) has them replaced by U+FFFD;
the async codec carries any ``str`` exactly. Envs clip observations to their space and flag
``info["observation_truncated"]``, so sync and async vector envs return the same thing.
(ScienceWorld's side is in tests/scienceworld/test_reliability.py: it needs the JVM.)
"""

from __future__ import annotations

import copy
from pathlib import Path

import gymnasium as gym
import pytest

import empo_gym  # noqa: F401
from empo_gym.doors import DoorsEnv
from empo_gym.memory import MemoryVectorWrapper
from empo_gym.memory.store import MemoryEntry, MemoryStore
from empo_gym.spaces import (
    REPLACEMENT_CHAR,
    UnicodeText,
    clip_observation,
    has_unencodable,
    replace_unencodable,
)
from empo_gym.webshop.env import WebShopEnv

BAD = "\udcff"


class LongEchoEnv(gym.Env):
    """Echoes the action 20 times, clipped to a 50-character space as empo_gym envs do."""

    def __init__(self, clip: bool = True) -> None:
        self.observation_space = UnicodeText(50)
        self.action_space = UnicodeText(50)
        self.clip = clip

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return "start", {"observation_truncated": False}

    def step(self, action):
        text = f"{action} " * 20
        cut = False
        if self.clip:
            text, cut = clip_observation(text, self.observation_space)
        return text, 0.0, False, False, {"observation_truncated": cut}


gym.register("empo_gym_test/LongEcho-v0", entry_point=LongEchoEnv)


def test_rule_helpers() -> None:
    assert has_unencodable(f"look {BAD}") and not has_unencodable("look — 你好 🙂")
    assert replace_unencodable(f"a{BAD}b\ud800") == f"a{REPLACEMENT_CHAR}b{REPLACEMENT_CHAR}"
    assert clip_observation("abc", UnicodeText(3)) == ("abc", False)


def test_doors_surrogate_action_is_an_invalid_noop() -> None:
    env = DoorsEnv()
    obs0, _ = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(env.safe_action() + BAD)
    assert info["invalid_action"] and reward == 0.0 and not terminated
    assert info["observation_truncated"] is False
    assert obs.endswith(obs0)  # still in the first room


def test_webshop_surrogate_actions_are_invalid_noops(tmp_path: Path) -> None:
    env = WebShopEnv(num_products=100, cache_dir=str(tmp_path))
    obs0, info = env.reset(seed=0)
    assert info["observation_truncated"] is False
    for action in (f"search[shoes {BAD}]", f"click[{BAD}]", BAD):
        obs, reward, terminated, _, info = env.step(action)
        assert info["invalid_action"], action
        assert (obs, reward, terminated, info["page"]) == (obs0, 0.0, False, "search")


def test_memory_store_saves_and_loads_a_tip_with_a_surrogate(tmp_path: Path) -> None:
    store = MemoryStore("hashing")
    entry = MemoryEntry(
        f"tip {BAD}", key=f"state {BAD}", score=1.0, partition="t/0", action=f"go{BAD}",
        metadata={"note": [f"x{BAD}"]},
    )  # fmt: skip
    assert entry.text == f"tip {REPLACEMENT_CHAR}" and entry.action == f"go{REPLACEMENT_CHAR}"
    store.add([entry])
    path = store.save(tmp_path / "m.memory.safetensors")
    (loaded,) = MemoryStore.load(path, "hashing").entries()
    assert loaded.text == f"tip {REPLACEMENT_CHAR}"
    assert loaded.metadata == {"note": [f"x{REPLACEMENT_CHAR}"]}
    assert store.query("t/0", "state")[0].text == loaded.text


@pytest.mark.parametrize("shared_memory", [True, False])
def test_async_worker_survives_surrogates_and_matches_sync(shared_memory: bool) -> None:
    """An echoed surrogate comes back exactly as a sync vector env returns it."""
    outs = {}
    for mode in ("sync", "async"):
        kwargs = {"shared_memory": shared_memory} if mode == "async" else {}
        vec = gym.make_vec(
            "empo_gym_test/LongEcho-v0", num_envs=2, vectorization_mode=mode, vector_kwargs=kwargs
        )
        try:
            vec.reset(seed=0)
            obs, *_, infos = vec.step([f"a{BAD}", "b"])
            outs[mode] = (copy.deepcopy(tuple(obs)), tuple(infos["observation_truncated"]))
            obs, *_ = vec.step(["c", "d"])  # the worker is still alive
            assert tuple(obs)[0].startswith("c ")
        finally:
            vec.close()
    assert outs["async"] == outs["sync"]
    assert outs["sync"][0][0].startswith(f"a{BAD} ") and len(outs["sync"][0][0]) == 50
    assert outs["sync"][1] == (True, False)  # 20 x "a? " do not fit 50 characters, "b " do


def test_async_codec_refuses_an_unclipped_observation_instead_of_cutting_it() -> None:
    vec = gym.make_vec(
        "empo_gym_test/LongEcho-v0",
        num_envs=1,
        vectorization_mode="async",
        clip=False,
    )
    try:
        vec.reset(seed=0)
        with pytest.raises(ValueError, match="does not fit UnicodeText.*the env must clip it"):
            vec.step(["x" * 10])
    finally:
        vec.close()


def test_memory_vector_wrapper_over_async_doors_with_surrogate_actions() -> None:
    """A surrogate action, recorded in a tip, comes back through the codec and the store."""
    envs = MemoryVectorWrapper(
        gym.make_vec("empo_gym/Doors-v0", num_envs=2, vectorization_mode="async", depth=1),
        use_memory=True,
    )
    try:
        envs.reset(seed=0)
        _, _, terms, truncs, infos = envs.step([BAD, BAD])
        assert list(infos["invalid_action"]) == [True, True]
        for _ in range(3):
            if all(terms | truncs):
                break
            _, _, terms, truncs, infos = envs.step([BAD, BAD])
        assert len(envs.store) > 0
        assert all(not has_unencodable(e.text + e.action) for e in envs.store.entries())
    finally:
        envs.close()
