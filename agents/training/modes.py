"""EMPO² rollout and update modes as data (the paper's importance ratios per update mode).

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
from enum import Enum

from empo_gym.agents.llm.trajectory import Turn


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


def _check_prob(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}={value!r}; expected a probability in [0, 1]")


def sample_rollout_mode(rng: random.Random, p: float) -> RolloutMode:
    """Draw the iteration's rollout mode: memory with probability ``p`` (paper: 0.25).

    Example:
        >>> sample_rollout_mode(random.Random(0), 1.0)
        <RolloutMode.MEMORY: 'memory'>
        >>> sample_rollout_mode(random.Random(0), 0.0)
        <RolloutMode.PLAIN: 'plain'>
    """
    _check_prob("p", p)
    return RolloutMode.MEMORY if rng.random() < p else RolloutMode.PLAIN


def sample_update_mode(rng: random.Random, q: float) -> UpdateMode:
    """Draw the update mode of a memory iteration: off-policy with probability ``q`` (2/3).

    Only called when the rollouts used memory; plain rollouts always update
    :attr:`UpdateMode.ON_POLICY` (see :func:`sample_modes`).

    Example:
        >>> sample_update_mode(random.Random(0), 1.0)
        <UpdateMode.OFF_POLICY: ('off_policy', True)>
    """
    _check_prob("q", q)
    return UpdateMode.OFF_POLICY if rng.random() < q else UpdateMode.ON_POLICY_TIPS


def sample_modes(rng: random.Random, p: float, q: float) -> tuple[RolloutMode, UpdateMode]:
    """Draw both modes of one iteration (P(off-policy) = p*q = 1/6 with the paper's values).

    Example:
        >>> sample_modes(random.Random(0), 0.0, 1.0)
        (<RolloutMode.PLAIN: 'plain'>, <UpdateMode.ON_POLICY: ('on_policy', False)>)
    """
    rollout = sample_rollout_mode(rng, p)
    if not rollout.use_memory:
        return rollout, UpdateMode.ON_POLICY
    return rollout, sample_update_mode(rng, q)
