"""EMPO² memory for empo_gym envs: tip store, embedders, episode recorder, memory wrappers,
novelty reward.

Example:
    >>> from empo_gym.memory import MemoryStore, MemoryEntry
    >>> store = MemoryStore("hashing")
    >>> store.add([MemoryEntry("tip", key="You see a door.", score=10, slot="t")])
    1
"""

import warnings
from typing import Any

from empo_gym.memory.embedders import (
    Embedder,
    HashingEmbedder,
    MiniLMEmbedder,
    make_embedder,
)
from empo_gym.memory.episode import SLOT_MODES, Episode, Step, memory_slot
from empo_gym.memory.novelty import NoveltyReward
from empo_gym.memory.recorder import EpisodeRecorder, episode_entries
from empo_gym.memory.store import MemoryEntry, MemoryFileError, MemoryStore
from empo_gym.memory.tips import (
    TIP_BLOCK_CLOSE,
    TIP_BLOCK_GAP,
    TIP_BLOCK_OPEN,
    TIP_PROMPT,
    TIP_SEPARATOR,
    PromptTipWriter,
    TemplateTipWriter,
    TipWriter,
    build_tip_prompt,
    parse_tips,
    render_tip_block,
    split_tips,
)
from empo_gym.memory.wrapper import (
    MemoryObservationWrapper,
    MemoryVectorWrapper,
    MemoryWrapper,
    compose_prompt,
)

__all__ = [
    "SLOT_MODES",
    "TIP_BLOCK_CLOSE",
    "TIP_BLOCK_GAP",
    "TIP_BLOCK_OPEN",
    "TIP_PROMPT",
    "TIP_SEPARATOR",
    "Embedder",
    "Episode",
    "EpisodeRecorder",
    "HashingEmbedder",
    "MemoryEntry",
    "MemoryFileError",
    "MemoryObservationWrapper",
    "MemoryStore",
    "MemoryVectorWrapper",
    "MemoryWrapper",
    "MiniLMEmbedder",
    "NoveltyReward",
    "PromptTipWriter",
    "Step",
    "TemplateTipWriter",
    "TipWriter",
    "build_tip_prompt",
    "compose_prompt",
    "episode_entries",
    "make_embedder",
    "memory_slot",
    "parse_tips",
    "render_tip_block",
    "split_tips",
]

# old names, still importable (with a DeprecationWarning) for code written against them
_DEPRECATED = {
    "Trajectory": ("Episode", Episode),
    "default_slot": ("memory_slot", memory_slot),
    "trajectory_entries": ("episode_entries", episode_entries),
}


def __getattr__(name: str) -> Any:
    if name in _DEPRECATED:
        new, obj = _DEPRECATED[name]
        warnings.warn(
            f"empo_gym.memory.{name} is deprecated; use empo_gym.memory.{new}",
            DeprecationWarning,
            stacklevel=2,
        )
        return obj
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
