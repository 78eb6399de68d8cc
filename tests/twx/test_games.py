"""TextWorldExpress game specs without a JVM: names, ids, parameter validation, seed folds."""

from __future__ import annotations

import gymnasium as gym
import pytest

import empo_gym  # noqa: F401
from empo_gym.registry import TWX_ENVS, get_env_info
from empo_gym.twx.env import MIN_HEAP_MB, TextWorldExpressEnv
from empo_gym.twx.games import (
    FOLDS,
    GAME_NAMES,
    GAMES,
    fold_of_seed,
    generation_params,
    resolve_game,
    validate_params,
)


def test_all_eight_games_are_registered_with_a_profile() -> None:
    assert GAME_NAMES == (
        "coin",
        "cookingworld",
        "twc",
        "mapreader",
        "arithmetic",
        "sorting",
        "simonsays",
        "peckingorder",
    )
    assert TWX_ENVS == GAME_NAMES
    for game in GAMES.values():
        assert game.gym_id in gym.registry
        assert gym.registry[game.gym_id].kwargs == {"game": game.name}
        info = get_env_info(game.name)
        assert info.gym_id == game.gym_id and info.default_split == "test"
        assert info.env_kwargs(None, "dev") == {"split": "dev"}
    assert "empo_gym/TextWorldExpress-v0" in gym.registry


def test_make_builds_without_starting_a_jvm() -> None:
    env = gym.make("empo_gym/TWX-CookingWorld-v0", numIngredients=2, split="test")
    try:
        assert env.unwrapped.game == "cookingworld"
        assert env.unwrapped.params == "numIngredients=2"
        assert env.unwrapped._sim is None
    finally:
        env.close()


def test_generation_params_are_validated_with_clear_errors() -> None:
    assert generation_params("coin", {}) == ""
    assert validate_params("coin", {"includeDoors": True, "numLocations": 3}) == {
        "includeDoors": 1,
        "numLocations": 3,
    }
    with pytest.raises(ValueError, match=r"numLocations=12 of game 'coin' is out of range; "):
        generation_params("coin", {"numLocations": 12})
    with pytest.raises(ValueError, match=r"expected an int in \[1, 5\]"):
        generation_params("cookingworld", {"numIngredients": 0})
    with pytest.raises(ValueError, match="unknown generation parameter 'numIngredients'.*'coin'"):
        generation_params("coin", {"numIngredients": 2})
    with pytest.raises(ValueError, match="this game has no parameters"):
        generation_params("sorting", {"numLocations": 2})
    with pytest.raises(TypeError, match="must be an int in"):
        generation_params("twc", {"numLocations": "2"})
    with pytest.raises(TypeError, match="not a bool"):
        generation_params("twc", {"numLocations": True})
    with pytest.raises(ValueError, match="unknown game 'coins'; expected one of: coin, "):
        resolve_game("coins")
    assert resolve_game("TWC") == "twc"


def test_constructor_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown split 'validation'"):
        TextWorldExpressEnv("coin", split="validation")
    with pytest.raises(ValueError, match="max_steps must be a positive int"):
        TextWorldExpressEnv("coin", max_steps=0)
    with pytest.raises(ValueError, match=f"below the floor of {MIN_HEAP_MB} MB"):
        TextWorldExpressEnv("coin", jvm_max_heap_mb=16)
    with pytest.raises(ValueError, match="out of range"):
        TextWorldExpressEnv("twc", params={"numItemsToPutAway": 9})


def test_folds_are_disjoint_and_named() -> None:
    assert [len(r) for r in FOLDS.values()] == [1000, 1000, 1000]
    assert fold_of_seed(0) == "train" and fold_of_seed(10999) == "dev"
    assert fold_of_seed(20000) == "test" and fold_of_seed(5000) is None


def test_seed_of_another_fold_is_rejected_by_name_before_the_jvm() -> None:
    env = TextWorldExpressEnv("coin", split="test")
    with pytest.raises(ValueError, match="game seed 3 of game 'coin' belongs to split 'train'"):
        env.reset(options={"game_seed": 3})
    with pytest.raises(ValueError, match="game seed 5000 of game 'coin' is in no split"):
        env.reset(options={"game_seed": 5000})
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(options={"variation": 3})
    assert env._sim is None
    env.close()
