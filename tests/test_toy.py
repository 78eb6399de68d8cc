"""The one toy text env of the tests and doctests: every game keeps the env conventions."""

from __future__ import annotations

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

from empo_gym.agents.scripted.random_agent import RandomAgent
from empo_gym.harness import evaluate
from empo_gym.toy import GAMES, GUESS_ENV, ToyTextEnv, register_guess_env

INFO_KEYS = {"admissible_actions", "task", "score", "success", "success_rule", "instruction"}


@pytest.mark.parametrize("game", GAMES)
def test_every_game_passes_the_gymnasium_checker_and_sets_the_info_keys(game: str) -> None:
    check_env(ToyTextEnv(game, unicode=True), skip_render_check=True)
    env = ToyTextEnv(game)
    obs, info = env.reset(seed=3)
    assert env.observation_space.contains(obs) and set(info) >= INFO_KEYS
    again = ToyTextEnv(game).reset(seed=3)
    assert again == (obs, info)  # deterministic in the seed
    step = env.step("no such action")
    assert env.observation_space.contains(step[0]) and set(step[4]) >= INFO_KEYS
    assert env.resets == [(3, None)] and env.actions == ["no such action"]


@pytest.mark.parametrize("game", GAMES)
def test_the_oracle_actions_win_every_game(game: str) -> None:
    env = ToyTextEnv(game, oracle_info=True)
    _, info = env.reset(seed=5)
    for action in info["oracle"]["gold_actions"]:
        _, _, terminated, truncated, info = env.step(action)
    assert info["success"] and terminated and not truncated


@pytest.mark.parametrize("game", GAMES)
def test_tips_and_unicode_options_apply_to_every_game(game: str) -> None:
    obs, _ = ToyTextEnv(game, with_tips=True, unicode=True).reset(seed=2)
    assert obs["tips"] == ["tip for 2", "look around first"]
    assert obs["observation"].endswith("你好 ✓")


def test_max_steps_truncates_chest_and_guess_and_sets_the_echo_length() -> None:
    for game in ("chest", "guess"):
        env = ToyTextEnv(game, max_steps=2)
        env.reset(seed=0)
        assert not env.step("look")[3] and env.step("look")[3]
    echo = ToyTextEnv("echo", max_steps=2)
    echo.reset(seed=0)
    assert not echo.step("look around")[2] and echo.step("look around")[2]
    echo.reset(seed=0, options={"length": 1})
    assert echo.step("look around")[2]


def test_bad_arguments_name_the_value() -> None:
    with pytest.raises(ValueError, match=r"game='maze'; expected one of \['chest', 'guess'"):
        ToyTextEnv("maze")
    with pytest.raises(ValueError, match=r"unknown reset option\(s\) \['length'\]"):
        ToyTextEnv().reset(options={"length": 3})


def test_guess_is_a_named_env_of_the_harness() -> None:
    assert register_guess_env() is GUESS_ENV and register_guess_env() is GUESS_ENV
    assert gym.make(GUESS_ENV.gym_id).unwrapped.game == "guess"
    result = evaluate(RandomAgent(seed=0), "guess", episodes=4, seed=0, split="train")
    assert result.settings["split"] == "train" and result.metrics["episodes"] == 4
