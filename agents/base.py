"""The agent interface every empo-gym agent implements: scripted, LLM inference and learners.

The harness drives ``n`` environments in lockstep. An agent sees each environment by its
*slot* index (``0..n-1``) so that it can keep per-episode state (a plan, a history) and so
that LLM agents can answer all active slots with one batched generation (``act_batch``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

from empo_gym.harness import EPISODE_SEED_KEY

__all__ = ["EPISODE_SEED_KEY", "Agent"]


class Agent(ABC):
    """Base class of all agents (implements the harness's :class:`~empo_gym.harness.EvalAgent`).

    Subclasses implement :meth:`act` (or :meth:`act_batch` for batched inference) and may
    override :meth:`reset`, :meth:`observe`, :meth:`env_kwargs` and :meth:`train`.
    """

    #: Registry name (``empo-gym run --agent NAME``).
    name: ClassVar[str] = "agent"
    #: True when ``empo-gym run`` must call :meth:`train` before evaluating.
    learns: ClassVar[bool] = False
    #: Env short names (``scienceworld``, ``webshop``, ...) the agent supports; empty = any.
    supported_envs: ClassVar[tuple[str, ...]] = ()
    #: False on the non-main processes of a distributed training run (set by :meth:`train`):
    #: only the main process evaluates and writes results.
    is_main_process: bool = True

    @property
    def eval_episodes(self) -> int | None:
        """Evaluation episodes the agent asks for when the run does not say (None: no view)."""
        return None

    @property
    def model(self) -> str | None:
        """The model the agent runs, or None for scripted agents (goes into the leaderboard)."""
        return None

    def config(self) -> dict[str, Any]:
        """The agent's settings, recorded in the leaderboard entry."""
        return {}

    def env_kwargs(self, env_name: str) -> dict[str, Any]:
        """Extra constructor kwargs the agent needs from the env (e.g. ``oracle_info=True``)."""
        return {}

    def reset(self, slot: int, observation: Any, info: dict[str, Any]) -> None:  # noqa: B027
        """Start a new episode in ``slot`` with its first observation and info."""

    @abstractmethod
    def act(self, slot: int, observation: Any, info: dict[str, Any]) -> str:
        """Return the next action (a string) for the episode running in ``slot``."""

    def act_batch(
        self,
        slots: Sequence[int],
        observations: Sequence[Any],
        infos: Sequence[dict[str, Any]],
    ) -> list[str]:
        """Return one action per active slot. Batched agents override this."""
        return [self.act(s, o, i) for s, o, i in zip(slots, observations, infos, strict=True)]

    def observe(  # noqa: B027
        self,
        slot: int,
        action: str,
        observation: Any,
        reward: float,
        terminated: bool,
        truncated: bool,
        info: dict[str, Any],
    ) -> None:
        """See the outcome of the last action in ``slot`` (history keeping; default no-op)."""

    def prepare(self, env_name: str, task: str | None) -> None:  # noqa: B027
        """Settle the run's settings for ``env_name`` before the untrained policy is evaluated
        (only called when ``learns`` is True, before :meth:`train` with the same arguments)."""

    def train(self, env_name: str, task: str | None) -> None:  # noqa: B027
        """Train before evaluation (only called when ``learns`` is True)."""

    def close(self) -> None:  # noqa: B027
        """Release resources (models, servers)."""
