"""The ``oracle`` of the simulator envs: replays the simulator's gold action sequence
(ScienceWorld, TextWorldExpress)."""

from __future__ import annotations

from typing import Any, ClassVar

from empo_gym.agents.base import Agent
from empo_gym.registry import TWX_ENVS

#: The oracle is granted this many steps (gold paths of some tasks exceed the paper's limits).
ORACLE_MAX_STEPS = 1_000


class ScienceWorldOracleAgent(Agent):
    """Replay ``info["oracle"]["gold_actions"]`` (requested with ``oracle_info=True``).

    Example:
        >>> agent = ScienceWorldOracleAgent()
        >>> agent.reset(0, "obs", {"oracle": {"gold_actions": ["open door", "go to kitchen"]}})
        >>> agent.act(0, "obs", {}), agent.act(0, "obs", {})
        ('open door', 'go to kitchen')
    """

    name: ClassVar[str] = "oracle"
    supported_envs: ClassVar[tuple[str, ...]] = ("scienceworld",)

    def __init__(self) -> None:
        self._plans: dict[int, list[str]] = {}
        self._cursor: dict[int, int] = {}

    def env_kwargs(self, env_name: str) -> dict[str, Any]:
        """Ask the env for the gold path and room to finish it."""
        return {"oracle_info": True, "max_steps": ORACLE_MAX_STEPS}

    def config(self) -> dict[str, Any]:
        """Settings recorded in the leaderboard entry."""
        return {"max_steps": ORACLE_MAX_STEPS, "source": "scienceworld gold action sequence"}

    def reset(self, slot: int, observation: Any, info: dict[str, Any]) -> None:
        """Load the gold plan of the new episode."""
        oracle = info.get("oracle")
        if not oracle or "gold_actions" not in oracle:
            raise ValueError(
                "the oracle agent needs info['oracle']['gold_actions']; construct the env with "
                "oracle_info=True (the harness does this through env_kwargs)"
            )
        self._plans[slot] = list(oracle["gold_actions"])
        self._cursor[slot] = 0

    def act(self, slot: int, observation: Any, info: dict[str, Any]) -> str:
        """Return the next gold action ("look around" once the plan is exhausted)."""
        plan, i = self._plans.get(slot, []), self._cursor.get(slot, 0)
        self._cursor[slot] = i + 1
        return plan[i] if i < len(plan) else "look around"


class TextWorldExpressOracleAgent(ScienceWorldOracleAgent):
    """Replay a TextWorldExpress game's gold path (``info["oracle"]["gold_actions"]``).

    Example:
        >>> agent = TextWorldExpressOracleAgent()
        >>> agent.reset(0, "obs", {"oracle": {"gold_actions": ["move north", "take coin"]}})
        >>> agent.act(0, "obs", {}), agent.act(0, "obs", {})
        ('move north', 'take coin')
    """

    supported_envs: ClassVar[tuple[str, ...]] = TWX_ENVS

    def config(self) -> dict[str, Any]:
        """Settings recorded in the leaderboard entry."""
        return {"max_steps": ORACLE_MAX_STEPS, "source": "textworld-express gold action sequence"}
