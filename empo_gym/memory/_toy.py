"""A tiny deterministic text env for memory tests and doctests (not a benchmark env).

Hall -> north -> a room with a key and a chest; ``take key`` then ``open chest`` wins.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from empo_gym.spaces import UnicodeText

_ROOMS = {
    "hall": "You are in a hall. Exits: north.",
    "vault": "You are in a vault. There is a key and a chest. Exits: south.",
}


class ToyTextEnv(gym.Env[str, str]):
    """Toy empo_gym-style text env (info keys as the conventions require).

    Args:
        max_steps: Truncation limit.
        unicode: Add non-ASCII text to observations (codec tests).
        task: Task name reported in ``info["task"]``.

    Example:
        >>> env = ToyTextEnv()
        >>> env.reset(seed=0)[0]
        'You are in a hall. Exits: north.'
        >>> env.step("go north")[1:3]
        (0.2, False)
    """

    metadata = {"render_modes": []}

    def __init__(self, max_steps: int = 8, unicode: bool = False, task: str = "toy-chest"):
        self.observation_space = UnicodeText(2_000)
        self.action_space = UnicodeText(200)
        self.max_steps = max_steps
        self.unicode = unicode
        self.task = task
        self._room, self._key, self._steps, self._score, self._variation = "hall", False, 0, 0, 0

    def _obs(self, extra: str = "") -> str:
        text = _ROOMS[self._room] + (" You hold a key." if self._key else "") + extra
        return text + (" — ça brûle, 你好 ✓" if self.unicode else "")

    def _info(self) -> dict[str, Any]:
        acts = ["go north"] if self._room == "hall" else ["go south", "take key", "open chest"]
        return {
            "admissible_actions": acts,
            "task": self.task,
            "variation": self._variation,
            "score": float(self._score),
            "success": self._score >= 100,
            "success_rule": "toy:score>=100",
            "instruction": "Open the chest.",
            "invalid_action": False,
        }

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Start in the hall (``options={"variation": int}`` only changes the reported slot)."""
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - {"variation"}
        if unknown:
            raise ValueError(f"unknown reset option(s) {sorted(unknown)}; expected 'variation'")
        self._variation = int(options.get("variation", 0))
        self._room, self._key, self._steps, self._score = "hall", False, 0, 0
        return self._obs(), self._info()

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Apply a text action; unknown actions are no-ops flagged ``invalid_action``."""
        self._steps += 1
        before, extra, invalid = self._score, "", False
        if action == "go north" and self._room == "hall":
            self._room = "vault"
            self._score = max(self._score, 20)
        elif action == "go south" and self._room == "vault":
            self._room = "hall"
        elif action == "take key" and self._room == "vault" and not self._key:
            self._key, self._score = True, 50
        elif action == "open chest" and self._room == "vault":
            if self._key:
                self._score = 100
            else:
                extra = " The chest is locked."
        else:
            invalid, extra = True, " Nothing happens."
        terminated = self._score >= 100
        truncated = not terminated and self._steps >= self.max_steps
        info = self._info()
        info["invalid_action"] = invalid
        return self._obs(extra), (self._score - before) / 100.0, terminated, truncated, info
