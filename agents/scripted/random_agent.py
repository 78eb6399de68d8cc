"""The ``random`` reference agent: uniform over the admissible actions."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from empo_gym.agents.base import EPISODE_SEED_KEY, Agent


class RandomAgent(Agent):
    """Pick uniformly among ``info["admissible_actions"]`` (seeded, reproducible).

    Args:
        seed: Seed of the agent's own RNG.

    Example:
        >>> agent = RandomAgent(seed=0)
        >>> agent.act(0, "obs", {"admissible_actions": ["look around"]})
        'look around'
    """

    name: ClassVar[str] = "random"

    def __init__(self, seed: int = 0):
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._rngs: dict[int, np.random.Generator] = {}

    def reset(self, slot: int, observation: Any, info: dict[str, Any]) -> None:
        """Seed this slot's RNG from the agent seed and the episode's reset seed."""
        episode_seed = info.get(EPISODE_SEED_KEY)
        if episode_seed is not None:
            self._rngs[slot] = np.random.default_rng([self.seed, int(episode_seed)])

    def rng(self, slot: int) -> np.random.Generator:
        """The RNG of ``slot`` (per episode when the harness gave a seed, else shared)."""
        return self._rngs.get(slot, self._rng)

    def config(self) -> dict[str, Any]:
        """Settings recorded in the leaderboard entry."""
        return {"seed": self.seed}

    def act(self, slot: int, observation: Any, info: dict[str, Any]) -> str:
        """Return a uniformly drawn admissible action."""
        actions = info.get("admissible_actions") or []
        if not actions:
            raise ValueError(
                "RandomAgent needs info['admissible_actions'] (a non-empty list of strings); "
                f"got {actions!r}"
            )
        return str(actions[int(self.rng(slot).integers(len(actions)))])
