"""TextWorldExpress envs against the real JVM: API, info contract, bad input, vector envs."""

from __future__ import annotations

import pickle

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import empo_gym  # noqa: F401
from empo_gym.twx.env import SUCCESS_RULE, TextWorldExpressEnv, TWXJVMError
from empo_gym.twx.games import FOLDS, GAME_NAMES

pytestmark = pytest.mark.slow

INFO_KEYS = {
    "admissible_actions",
    "instruction",
    "score",
    "success",
    "success_rule",
    "moves",
    "task",
    "game_seed",
    "split",
    "invalid_action",
    "max_steps",
}


@pytest.fixture(scope="module")
def env() -> TextWorldExpressEnv:
    e = TextWorldExpressEnv("coin", split="dev", numLocations=4)
    yield e
    e.close()


def test_reset_draws_from_the_split_and_sets_every_info_key(env: TextWorldExpressEnv) -> None:
    obs, info = env.reset(seed=0)
    assert set(info) >= INFO_KEYS
    assert info["game_seed"] in FOLDS["dev"] and info["task"] == "coin"
    assert info["success_rule"] == SUCCESS_RULE and info["score"] == 0.0
    assert "coin" in info["instruction"] and "look around" in info["admissible_actions"]
    assert env.observation_space.contains(obs) and "You are in" in obs
    assert "oracle" not in info


def test_every_game_resets_and_steps() -> None:
    for game in GAME_NAMES:
        e = TextWorldExpressEnv(game, split="test", oracle_info=True)
        try:
            obs, info = e.reset(seed=1)
            assert info["admissible_actions"], game
            gold = info["oracle"]["gold_actions"]
            obs, reward, term, trunc, info = e.step(gold[0])
            assert not info["invalid_action"], (game, gold[0], obs)
        finally:
            e.close()


def test_invalid_actions_are_flagged_no_ops(env: TextWorldExpressEnv) -> None:
    obs0, info0 = env.reset(seed=3)
    for action in ("xyzzy", "", "x" * 5000, "open door \udcff", "LOOK AROUND"):
        obs, reward, term, trunc, info = env.step(action)
        assert info["invalid_action"], action
        assert reward == 0.0 and not term
        assert info["admissible_actions"] == info0["admissible_actions"]
        assert env.observation_space.contains(obs)
    obs, *_, info = env.step("look around")
    assert not info["invalid_action"] and obs == obs0


def test_truncation_at_max_steps() -> None:
    e = TextWorldExpressEnv("coin", split="train", max_steps=3)
    try:
        e.reset(seed=0)
        results = [e.step("inventory") for _ in range(3)]
        assert [r[3] for r in results] == [False, False, True]
        with pytest.raises(RuntimeError, match="call reset"):
            e.step("inventory")
    finally:
        e.close()


def test_gold_path_reaches_success_and_reward_sums_to_one() -> None:
    e = TextWorldExpressEnv("cookingworld", split="test", oracle_info=True, max_steps=1000)
    try:
        _, info = e.reset(options={"game_seed": 20007})
        total = 0.0
        for action in info["oracle"]["gold_actions"]:
            _, reward, term, trunc, info = e.step(action)
            total += reward
            if term or trunc:
                break
        assert term and info["success"] and info["score"] == 100.0
        assert total == pytest.approx(1.0)
    finally:
        e.close()


def test_check_env_passes() -> None:
    e = TextWorldExpressEnv("twc")
    try:
        check_env(e, skip_render_check=True)
    finally:
        e.close()


def test_async_vector_env() -> None:
    vec = gym.make_vec("empo_gym/TWX-Coin-v0", num_envs=2, vectorization_mode="async")
    try:
        obs, infos = vec.reset(seed=[4, 4])
        assert obs[0] == obs[1] and "You are in" in obs[0]
        obs, rewards, term, trunc, infos = vec.step(["look around", "ouvre la porte — 你好"])
        assert list(infos["invalid_action"]) == [False, True]
    finally:
        vec.close()


def test_pickled_copy_gives_the_same_episode() -> None:
    e = TextWorldExpressEnv("coin", split="test", max_steps=7, numLocations=6)
    try:
        e.reset(seed=2)
        copy = pickle.loads(pickle.dumps(e))
        assert copy._sim is None and copy.params == e.params and copy.max_steps == 7
        try:
            assert copy.reset(seed=9)[0] == e.reset(seed=9)[0]
        finally:
            copy.close()
    finally:
        e.close()


def test_dead_jvm_is_one_clear_error_and_reset_recovers() -> None:
    e = TextWorldExpressEnv("coin", split="train")
    try:
        e.reset(seed=0)
        pid = e.simulator.pid
        e.simulator.process.kill()
        with pytest.raises(TWXJVMError, match=rf"JVM \(pid {pid}\) was killed by signal 9"):
            e.step("look around")
        with pytest.raises(RuntimeError, match="call reset"):
            e.step("look around")
        obs, info = e.reset(seed=0)
        assert e.simulator.pid != pid and info["admissible_actions"]
    finally:
        e.close()


def test_a_game_the_simulator_cannot_generate_is_a_clear_error() -> None:
    e = TextWorldExpressEnv("mapreader", split="test", numLocations=15, maxDistanceApart=8)
    try:
        with pytest.raises(ValueError, match=r"could not generate game 'mapreader' seed 20811"):
            e.reset(options={"game_seed": 20811})
        _, info = e.reset(options={"game_seed": 20812})  # the JVM is still usable
        assert info["admissible_actions"]
    finally:
        e.close()
