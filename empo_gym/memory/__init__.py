"""EMPO² memory for empo_gym envs: tip store, embedders, episode recorder, memory wrappers,
novelty reward.

Example:
    >>> from empo_gym.memory import MemoryStore, MemoryEntry
    >>> store = MemoryStore("hashing")
    >>> store.add([MemoryEntry("tip", key="You see a door.", score=10, partition="t")])
    1
"""

from empo_gym.deprecation import deprecated_aliases
from empo_gym.memory.embedders import (
    Embedder,
    HashingEmbedder,
    MiniLMEmbedder,
    make_embedder,
)
from empo_gym.memory.episode import (
    PARTITION_KEY,
    PARTITION_MODES,
    Episode,
    Step,
    memory_partition,
)
from empo_gym.memory.novelty import NoveltyReward
from empo_gym.memory.observation import (
    MEMORY_OPTIONS,
    OBSERVATION_KEY,
    TIP_BLOCK_KEY,
    TIPS_KEY,
    USE_MEMORY_OPTION,
    compose_observation,
    compose_prompt,
    is_memory_env,
    memory_observation_space,
    split_observation,
)
from empo_gym.memory.recorder import EpisodeRecorder, episode_entries
from empo_gym.memory.session import MemorySession
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
)

__all__ = [
    "MEMORY_OPTIONS",
    "OBSERVATION_KEY",
    "TIPS_KEY",
    "TIP_BLOCK_KEY",
    "USE_MEMORY_OPTION",
    "PARTITION_KEY",
    "PARTITION_MODES",
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
    "MemorySession",
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
    "compose_observation",
    "compose_prompt",
    "episode_entries",
    "is_memory_env",
    "make_embedder",
    "memory_observation_space",
    "memory_partition",
    "parse_tips",
    "render_tip_block",
    "split_observation",
    "split_tips",
]

# old names, still importable (with a DeprecationWarning) for code written against them
__getattr__ = deprecated_aliases(
    __name__,
    {
        "Trajectory": ("empo_gym.memory.Episode", Episode),
        "SLOT_MODES": ("empo_gym.memory.PARTITION_MODES", PARTITION_MODES),
        "default_slot": ("empo_gym.memory.memory_partition", memory_partition),
        "memory_slot": ("empo_gym.memory.memory_partition", memory_partition),
        "trajectory_entries": ("empo_gym.memory.episode_entries", episode_entries),
    },
)
