"""What the training loop asks of an algorithm, the modes it answers with, and plain GRPO.

The loop (:class:`~empo_gym.agents.training.trainer.TrainingRun`) is the same for every
algorithm; an :class:`Algorithm` decides, each iteration, how the rollouts are generated and how
the update scores them (:meth:`Algorithm.modes`), wraps the training envs once
(:meth:`Algorithm.wrap_envs`), and may act on the finished rollouts before the update
(:meth:`Algorithm.after_rollouts`: EMPO² writes tips and fills the intrinsic reward). Its state
is saved inside the trainer's atomic checkpoint (:meth:`Algorithm.save` / :meth:`Algorithm.load`).

Two algorithms exist: :class:`GRPO` (here: plain rollouts, on-policy updates, no state) and
EMPO² (:class:`empo_gym.agents.training.empo.EMPO`, the method read top to bottom).
:func:`make_algorithm` picks one from the config.

The update modes are data: each one says under which prompt the numerator of the importance
ratio is scored (the paper's table; u = task instruction, s = state):

| mode                  | numerator           | denominator                |
|-----------------------|---------------------|----------------------------|
| plain on-policy       | pi(a | s,u)         | pi_old(a | s,u)            |
| on-policy with tips   | pi(a | s,u,tips)    | pi_old(a | s,u,tips)       |
| off-policy            | pi(a | s,u)         | pi_old(a | s,u,tips)       |

The denominator is always the sampling policy's log-probability under the prompt the response was
actually sampled from (``Turn.prompt_ids``, stored in ``Turn.logprobs``). Only the numerator's
prompt changes: off-policy scores the response under ``Turn.prompt_ids_no_tips``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from empo_gym.agents.llm.trajectory import Trajectory, Turn

if TYPE_CHECKING:  # config imports the policy stack's settings; only types are needed here
    from empo_gym.agents.training.config import GRPOConfig
    from empo_gym.memory import TipWriter

__all__ = [
    "GRPO",
    "Algorithm",
    "RolloutMode",
    "UpdateMode",
    "denominator_prompt",
    "make_algorithm",
    "numerator_prompt",
]


class RolloutMode(Enum):
    """How one iteration's rollouts are generated (one draw per iteration)."""

    PLAIN = "plain"
    """No memory: prompts carry no tips."""
    MEMORY = "memory"
    """Memory-augmented: retrieved tips are appended to each turn's prompt."""

    @property
    def use_memory(self) -> bool:
        """True for memory-augmented rollouts."""
        return self is RolloutMode.MEMORY


class UpdateMode(Enum):
    """How one iteration's policy update scores the responses.

    Each member carries ``strip_tips``: whether the numerator is computed under the prompt
    without tips (the denominator always keeps the sampling prompt).

    Example:
        >>> UpdateMode.OFF_POLICY.strip_tips, UpdateMode.ON_POLICY_TIPS.strip_tips
        (True, False)
    """

    ON_POLICY = ("on_policy", False)
    """Plain rollouts, plain update: pi(a|s,u) / pi_old(a|s,u)."""
    ON_POLICY_TIPS = ("on_policy_tips", False)
    """Memory rollouts, tips kept: pi(a|s,u,tips) / pi_old(a|s,u,tips)."""
    OFF_POLICY = ("off_policy", True)
    """Memory rollouts, tips stripped: pi(a|s,u) / pi_old(a|s,u,tips) (distils tips)."""

    def __init__(self, label: str, strip_tips: bool) -> None:
        self.label = label
        self.strip_tips = strip_tips

    @classmethod
    def from_label(cls, label: str) -> UpdateMode:
        """The member whose label is ``label`` (``on_policy``, ``on_policy_tips``, ``off_policy``).

        Example:
            >>> UpdateMode.from_label("off_policy") is UpdateMode.OFF_POLICY
            True
        """
        for member in cls:
            if member.label == label:
                return member
        raise ValueError(
            f"update mode {label!r} is unknown; expected one of {[m.label for m in cls]}"
        )


def numerator_prompt(turn: Turn, mode: UpdateMode) -> list[int]:
    """Prompt ids under which the current policy scores ``turn.response_ids`` in ``mode``.

    Off-policy returns exactly ``turn.prompt_ids_no_tips`` (token ids built without the tip
    block, no string surgery); the other modes return ``turn.prompt_ids``.

    Example:
        >>> t = Turn(prompt_ids=[1, 7, 2], prompt_ids_no_tips=[1, 2], response_ids=[5],
        ...          logprobs=[-0.1], used_tips=True)
        >>> numerator_prompt(t, UpdateMode.OFF_POLICY), numerator_prompt(t, UpdateMode.ON_POLICY)
        ([1, 2], [1, 7, 2])
    """
    return list(turn.prompt_ids_no_tips if mode.strip_tips else turn.prompt_ids)


def denominator_prompt(turn: Turn, mode: UpdateMode) -> list[int]:
    """Prompt ids the old (sampling) log-probabilities are conditioned on: always the sampling one.

    Used when old log-probabilities are recomputed rather than taken from ``turn.logprobs``.

    Example:
        >>> t = Turn(prompt_ids=[1, 7, 2], prompt_ids_no_tips=[1, 2], response_ids=[5],
        ...          logprobs=[-0.1], used_tips=True)
        >>> denominator_prompt(t, UpdateMode.OFF_POLICY)
        [1, 7, 2]
    """
    del mode  # same for every mode (the paper's table); the argument keeps call sites symmetric
    return list(turn.prompt_ids)


@runtime_checkable
class Algorithm(Protocol):
    """What the training loop asks of an algorithm (GRPO, EMPO²) each iteration."""

    name: str
    """The config's ``agent`` (``grpo``, ``empo``): the loop checks they agree."""
    timings: dict[str, float]
    """Seconds of the last :meth:`after_rollouts` by part (joined into the metrics row)."""

    def modes(self, rng: random.Random) -> tuple[RolloutMode, UpdateMode]:
        """This iteration's rollout and update modes (``rng`` is the trainer's mode RNG, the
        same on every process and restored by checkpoints)."""
        ...

    def wrap_envs(self, envs: Sequence[Any]) -> list[Any]:
        """The training envs as the rollouts should see them (called once, when wiring a run)."""
        ...

    def after_rollouts(
        self, policy: Any, trajectories: list[Trajectory], rollout_mode: RolloutMode
    ) -> None:
        """Act on an iteration's finished rollouts before the update (may fill
        ``Turn.intrinsic_reward`` and ``Trajectory.tip``)."""
        ...

    def size(self) -> int:
        """Entries the algorithm holds (EMPO²: memory entries; the ``memory_size`` metric)."""
        ...

    def stats(self) -> dict[str, Any]:
        """Counters for the run summary."""
        ...

    def save(self, directory: Path) -> None:
        """Write the algorithm's state into ``directory`` (inside the atomic checkpoint)."""
        ...

    def load(self, directory: Path) -> None:
        """Restore the state :meth:`save` wrote into ``directory`` (missing files: keep it)."""
        ...


class GRPO:
    """Group-relative PPO (the paper's baseline): plain rollouts, on-policy updates, no state.

    Example:
        >>> GRPO().modes(random.Random(0))
        (<RolloutMode.PLAIN: 'plain'>, <UpdateMode.ON_POLICY: ('on_policy', False)>)
    """

    name: ClassVar[str] = "grpo"

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    def modes(self, rng: random.Random) -> tuple[RolloutMode, UpdateMode]:
        """Always plain rollouts and an on-policy update (draws nothing from ``rng``)."""
        del rng
        return RolloutMode.PLAIN, UpdateMode.ON_POLICY

    def wrap_envs(self, envs: Sequence[Any]) -> list[Any]:
        """The envs as they are."""
        return list(envs)

    def after_rollouts(
        self, policy: Any, trajectories: list[Trajectory], rollout_mode: RolloutMode
    ) -> None:
        """Nothing: GRPO's returns are the env rewards."""

    def size(self) -> int:
        """0: GRPO keeps no memory."""
        return 0

    def stats(self) -> dict[str, Any]:
        """Nothing to report."""
        return {}

    def save(self, directory: Path) -> None:
        """Nothing to save."""

    def load(self, directory: Path) -> None:
        """Nothing to restore."""


def make_algorithm(cfg: GRPOConfig, *, tip_writer: TipWriter | None = None) -> Algorithm:
    """The algorithm ``cfg`` configures: :class:`GRPO`, or EMPO² for an ``EMPOConfig``.

    Args:
        cfg: Trainer settings; ``cfg.agent`` picks the algorithm.
        tip_writer: EMPO²: a :class:`~empo_gym.memory.TipWriter` instead of the policy.

    Example:
        >>> from empo_gym.agents.training.config import config_from_dict
        >>> [type(make_algorithm(config_from_dict({}, agent=a))).__name__ for a in ("grpo", "empo")]
        ['GRPO', 'EMPO']
    """
    if cfg.agent == "empo":
        from empo_gym.agents.training.empo import EMPO  # EMPO² imports this module

        return EMPO(cfg, tip_writer=tip_writer)  # type: ignore[arg-type]
    if cfg.agent == "grpo":
        return GRPO()
    raise ValueError(f"cfg.agent={cfg.agent!r}; expected 'grpo' or 'empo'")
