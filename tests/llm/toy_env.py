"""A tiny deterministic text env for rollout tests (no simulator needed)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from empo_gym.spaces import UnicodeText

ACTIONS = ["go north", "go south", "pick up key", "look around"]


class ToyTextEnv(gym.Env):
    """Episodes last ``options["length"]`` steps (default 3); the first observation depends on
    the reset seed only; reward 1 for ``pick up key``. ``with_tips`` wraps observations in the
    memory wrapper's dict format."""

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, with_tips: bool = False) -> None:
        self.observation_space = UnicodeText(1000)
        self.action_space = UnicodeText(200)
        self.with_tips = with_tips
        self.resets: list[tuple[int | None, dict | None]] = []
        self.actions: list[str] = []

    def _obs(self, text: str) -> Any:
        if self.with_tips:
            return {"observation": text, "tips": [f"tip for {self._seed}", "look around first"]}
        return text

    def _info(self) -> dict[str, Any]:
        return {
            "admissible_actions": list(ACTIONS),
            "task": "toy",
            "instruction": f"Find the key (room {self._seed}).",
            "score": float(self._score),
            "success": self._score > 0,
            "success_rule": "picked up the key",
        }

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._seed = seed
        self._length = int((options or {}).get("length", 3))
        self._t = 0
        self._score = 0
        self.resets.append((seed, options))
        return self._obs(f"You are in room {seed}. It is {self.np_random.integers(100)} C."), (
            self._info()
        )

    def step(self, action: str):
        self.actions.append(action)
        self._t += 1
        reward = 1.0 if action == "pick up key" else 0.0
        self._score += reward
        terminated = self._t >= self._length
        return (
            self._obs(f"Step {self._t}: you did {action}."),
            reward,
            terminated,
            False,
            (self._info()),
        )
