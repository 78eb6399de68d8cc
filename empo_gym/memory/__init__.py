"""EMPO² memory for empo_gym envs: tip store, embedders, observation wrappers, novelty reward.

Example:
    >>> from empo_gym.memory import MemoryStore, MemoryEntry
    >>> store = MemoryStore("hashing")
    >>> store.add([MemoryEntry("tip", key="You see a door.", score=10, slot="t")])
    1
"""

from empo_gym.memory.embedders import (
    Embedder,
    HashingEmbedder,
    MiniLMEmbedder,
    make_embedder,
)
from empo_gym.memory.novelty import NoveltyReward
from empo_gym.memory.store import MemoryEntry, MemoryFileError, MemoryStore
from empo_gym.memory.tips import (
    TIP_PROMPT,
    PromptTipWriter,
    Step,
    TemplateTipWriter,
    TipWriter,
    Trajectory,
    build_tip_prompt,
    render_tip_block,
    split_tips,
)
from empo_gym.memory.wrapper import (
    MemoryObservationWrapper,
    MemoryVectorWrapper,
    compose_prompt,
    default_slot,
    trajectory_entries,
)

__all__ = [
    "TIP_PROMPT",
    "Embedder",
    "HashingEmbedder",
    "MemoryEntry",
    "MemoryFileError",
    "MemoryObservationWrapper",
    "MemoryStore",
    "MemoryVectorWrapper",
    "MiniLMEmbedder",
    "NoveltyReward",
    "PromptTipWriter",
    "TemplateTipWriter",
    "Step",
    "TipWriter",
    "Trajectory",
    "build_tip_prompt",
    "compose_prompt",
    "default_slot",
    "make_embedder",
    "render_tip_block",
    "split_tips",
    "trajectory_entries",
]
