"""The oracle agent reaches success on 50 test-fold seeds of coin, cookingworld and twc.

This proves the env passes actions to the simulator intact and reports success correctly.
"""

from __future__ import annotations

import pytest

from empo_gym.agents.scripted.oracle import TextWorldExpressOracleAgent
from empo_gym.twx.env import TextWorldExpressEnv
from empo_gym.twx.games import FOLDS, GAME_NAMES

pytestmark = pytest.mark.slow

SEEDS = FOLDS["test"][:50]


def _oracle_successes(game: str, seeds) -> list[int]:
    agent = TextWorldExpressOracleAgent()
    env = TextWorldExpressEnv(game, split="test", **agent.env_kwargs(game))
    failed = []
    try:
        for game_seed in seeds:
            obs, info = env.reset(options={"game_seed": game_seed})
            agent.reset(0, obs, info)
            assert info["oracle"]["gold_actions"], (game, game_seed)
            while True:
                obs, _, term, trunc, info = env.step(agent.act(0, obs, info))
                if term or trunc:
                    break
            if not (term and info["success"] and info["score"] == 100.0):
                failed.append(game_seed)
    finally:
        env.close()
    return failed


@pytest.mark.parametrize("game", ["coin", "cookingworld", "twc"])
def test_oracle_succeeds_on_50_test_seeds(game: str) -> None:
    assert _oracle_successes(game, SEEDS) == []


@pytest.mark.parametrize(
    "game", [g for g in GAME_NAMES if g not in ("coin", "cookingworld", "twc")]
)
def test_oracle_succeeds_on_other_games(game: str) -> None:
    assert _oracle_successes(game, SEEDS[:10]) == []
