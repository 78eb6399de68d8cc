"""Tiny text envs for fast tests (no JVM, no model)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from empo_gym.registry import EnvInfo, register_env
from empo_gym.spaces import UnicodeText


class GuessEnv(gym.Env):
    """Say the secret word (one of ``words``) within ``max_steps``; score 100 on success.

    The secret is drawn from the reset seed, so the same seed gives the same episode.
    """

    words = ("alpha", "beta", "gamma", "delta")

    def __init__(self, split: str = "test", max_steps: int = 3, oracle_info: bool = False):
        self.observation_space = UnicodeText(1000)
        self.action_space = UnicodeText(1000)
        self.max_steps, self.oracle_info, self.split = max_steps, oracle_info, split
        self._secret, self._t = "alpha", 0

    def _info(self, score: float, success: bool) -> dict[str, Any]:
        info = {
            "admissible_actions": [f"say {w}" for w in self.words],
            "task": "guess",
            "score": score,
            "success": success,
            "success_rule": "guess:said_the_secret",
            "instruction": "say the secret word",
            "invalid_action": False,
        }
        if self.oracle_info:
            info["oracle"] = {"gold_actions": [f"say {self._secret}"]}
        return info

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._secret = self.words[int(self.np_random.integers(len(self.words)))]
        self._t = 0
        return f"guess the word ({self.split})", self._info(0.0, False)

    def step(self, action: str):
        self._t += 1
        win = action == f"say {self._secret}"
        info = self._info(100.0 if win else 0.0, win)
        info["invalid_action"] = not action.startswith("say ")
        trunc = not win and self._t >= self.max_steps
        return ("right!" if win else "wrong"), float(win), win, trunc, info


register_env(
    EnvInfo(
        name="guess",
        gym_id="empo_gym_test/Guess-v0",
        description="test env",
        splits=("train", "test"),
        default_split="test",
        task_kwarg=None,
    ),
    overwrite=True,
)
gym.register("empo_gym_test/Guess-v0", entry_point=GuessEnv)
