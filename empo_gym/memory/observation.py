"""The memory observation contract: what a memory-wrapped env emits and what an agent reads.

The memory wrappers (:mod:`empo_gym.memory.wrapper`) turn a text observation into a dict::

    {"observation": raw env observation (tips never inside),
     "tips":        retrieved memories joined with TIP_SEPARATOR ("\\n"; see split_tips),
     "tip_block":   "<tip> Here are some memories ...\\n" + memories + "\\n</tip>" or ""}

This module is the one home of that format: the keys, the observation space
(:func:`memory_observation_space`), the builder (:func:`compose_observation`, used by the
wrappers and the ``memory-only`` agent), the reader (:func:`split_observation`, used by the LLM
agents and the rollout runner) and the reset options the wrappers consume
(:data:`MEMORY_OPTIONS`).

Example:
    >>> obs = compose_observation("You are in a hall.", ["open the door"])
    >>> sorted(obs)
    ['observation', 'tip_block', 'tips']
    >>> split_observation(obs)[0]
    'You are in a hall.'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
from gymnasium import spaces as gspaces

from empo_gym.memory.episode import PARTITION_KEY
from empo_gym.memory.tips import (
    TIP_BLOCK_CLOSE,
    TIP_BLOCK_GAP,
    TIP_BLOCK_OPEN,
    join_tips,
    render_tip_block,
)
from empo_gym.spaces import UnicodeText

__all__ = [
    "EVAL_OPTION",
    "LEGACY_PARTITION_OPTION",
    "MEMORY_OPTIONS",
    "OBSERVATION_KEY",
    "PARTITION_OPTION",
    "TIPS_KEY",
    "TIP_BLOCK_KEY",
    "USE_MEMORY_OPTION",
    "compose_observation",
    "compose_prompt",
    "is_memory_env",
    "memory_observation_space",
    "split_observation",
]

#: Key of the raw env observation (tips never inside).
OBSERVATION_KEY = "observation"
#: Key of the retrieved memories, joined one per line.
TIPS_KEY = "tips"
#: Key of the rendered ``<tip> ... </tip>`` block ("" without memories).
TIP_BLOCK_KEY = "tip_block"
#: Reset option that turns retrieval on for an episode (bool).
USE_MEMORY_OPTION = "use_memory"
#: Reset option for an evaluation episode: nothing is written, no novelty kept (bool).
EVAL_OPTION = "eval"
#: Reset option naming the episode's memory partition (str; else the wrapper's
#: ``partition_fn``); the wrapper reports the partition under the same info key.
PARTITION_OPTION = PARTITION_KEY
#: Old name of :data:`PARTITION_OPTION`, still accepted by the wrappers (DeprecationWarning).
LEGACY_PARTITION_OPTION = "memory_slot"
#: Reset options consumed by the memory wrappers (not forwarded to the env).
MEMORY_OPTIONS = (USE_MEMORY_OPTION, EVAL_OPTION, PARTITION_OPTION)


def _text_space(space: gym.Space[Any], what: str) -> UnicodeText:
    if isinstance(space, UnicodeText):
        return space
    if isinstance(space, gspaces.Text):
        return UnicodeText(space.max_length)
    raise TypeError(
        f"the memory wrapper needs a text {what} space (empo_gym.spaces.UnicodeText), got {space}"
    )


def memory_observation_space(obs_space: gym.Space[Any], max_tips_chars: int) -> gspaces.Dict:
    """The dict space of a memory-wrapped env whose own observation space is ``obs_space``.

    Args:
        obs_space: The wrapped env's text space (``UnicodeText`` or ``gymnasium.spaces.Text``).
        max_tips_chars: Bound of the ``tips`` field (the block adds its frame).

    Raises:
        TypeError: ``obs_space`` is not a text space.

    Example:
        >>> space = memory_observation_space(UnicodeText(100), 50)
        >>> sorted(space.spaces), space["tips"].max_length
        (['observation', 'tip_block', 'tips'], 50)
    """
    raw = _text_space(obs_space, "observation")
    block_len = len(TIP_BLOCK_OPEN) + max_tips_chars + 1 + len(TIP_BLOCK_CLOSE)
    return gspaces.Dict(
        {
            OBSERVATION_KEY: raw,
            TIPS_KEY: UnicodeText(max_tips_chars),
            TIP_BLOCK_KEY: UnicodeText(block_len),
        }
    )


def compose_observation(raw: Any, tips: Sequence[str]) -> dict[str, str]:
    """The memory observation dict of a raw observation and its retrieved memories.

    Example:
        >>> obs = compose_observation("hall", ["m1", "m2"])
        >>> obs["tips"], obs["tip_block"].splitlines()[1:]
        ('m1\\nm2', ['m1', 'm2', '</tip>'])
        >>> compose_observation("hall", [])["tip_block"]
        ''
    """
    return {
        OBSERVATION_KEY: str(raw),
        TIPS_KEY: join_tips(tips),
        TIP_BLOCK_KEY: render_tip_block(tips),
    }


def compose_prompt(observation: Mapping[str, Any], with_tips: bool = True) -> str:
    """The text an agent reads: the raw observation, plus the tip block when asked.

    Example:
        >>> obs = {"observation": "You are in a hall.", "tips": "m1",
        ...        "tip_block": "<tip> ...\\nm1\\n</tip>"}
        >>> compose_prompt(obs, with_tips=False)
        'You are in a hall.'
        >>> compose_prompt(obs).endswith("</tip>")
        True
    """
    text = str(observation[OBSERVATION_KEY])
    block = str(observation.get(TIP_BLOCK_KEY, ""))
    return text + TIP_BLOCK_GAP + block if with_tips and block else text


def split_observation(observation: Any) -> tuple[str, list[str] | str | None]:
    """Split an observation into its text and its tips (the memory wrapper's format).

    Args:
        observation: A ``str``, or a mapping with ``"observation"`` (text) and optionally
            ``"tips"`` (a list of tip strings or one string, one tip per line) and
            ``"tip_block"`` (the rendered block, preferred when non-empty).

    Returns:
        ``(text, tips)``; ``tips`` is None for plain observations, else a list of tips or the
        rendered tip block (``empo_gym.agents.llm.prompts.make_prompt`` accepts both).

    Raises:
        TypeError: Neither a str nor a mapping with an ``"observation"`` key.

    Example:
        >>> split_observation("You are in the kitchen.")
        ('You are in the kitchen.', None)
        >>> split_observation({"observation": "kitchen", "tips": ["open the fridge"]})
        ('kitchen', ['open the fridge'])
        >>> split_observation({"observation": "kitchen", "tips": "a\\nb", "tip_block": ""})
        ('kitchen', ['a', 'b'])
    """
    if isinstance(observation, str):
        return observation, None
    if isinstance(observation, Mapping):
        if OBSERVATION_KEY not in observation:
            raise TypeError(
                f"observation dict has keys {sorted(observation)}; expected "
                f"{OBSERVATION_KEY!r} (and optionally {TIPS_KEY!r})"
            )
        text = str(observation[OBSERVATION_KEY])
        block = observation.get(TIP_BLOCK_KEY)
        if isinstance(block, str) and block.strip():
            return text, block
        tips = observation.get(TIPS_KEY)
        if tips is None:
            return text, None
        if isinstance(tips, str):
            return text, [t for t in tips.split("\n") if t.strip()]
        return text, [str(t) for t in tips]
    raise TypeError(
        f"observation of type {type(observation).__name__}; expected str or a dict with "
        f"{OBSERVATION_KEY!r} / {TIPS_KEY!r}"
    )


def is_memory_env(env: gym.Env[Any, Any]) -> bool:
    """Whether ``env`` emits the memory wrapper's dict observations (has a ``tips`` field).

    Example:
        >>> class E(gym.Env):
        ...     observation_space = gspaces.Dict({"observation": gspaces.Text(5),
        ...                                       "tips": gspaces.Text(5)})
        >>> is_memory_env(E())
        True
    """
    space = getattr(env, "observation_space", None)
    return isinstance(space, gspaces.Dict) and TIPS_KEY in space.spaces
