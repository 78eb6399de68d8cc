"""A finished episode as EMPO²'s memory sees it, and the memory partition it belongs to.

One record type serves every writer of memory: the memory wrapper, the ``memory-only`` agent
and the trainer's EMPO² algorithm all record :class:`Episode` objects (through
:class:`~empo_gym.memory.recorder.EpisodeRecorder`), a tip writer turns each into one sentence,
and the store keeps one entry per :class:`Step`. (The trainer's rollout record,
``empo_gym.agents.llm.trajectory.Trajectory``, holds token ids; this one holds text.)

Memories are grouped into *partitions* (EMPO²: one per task instance; a partition never sees
another's memories): :func:`memory_partition` is the one rule that names them. ("Slot", in
empo_gym, is the harness's lane of a running episode, not a memory partition.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from empo_gym.deprecation import deprecated_aliases

__all__ = ["PARTITION_KEY", "PARTITION_MODES", "Episode", "Step", "memory_partition"]

#: How episodes are grouped into memory partitions: ``instance`` = task + variation / goal
#: (EMPO²: one partition per task instance), ``task`` = all instances of a task share one.
PARTITION_MODES = ("instance", "task")
#: Info key naming an episode's partition: the memory wrapper reports its assignment there (and
#: takes a reset option of that name), a rollout's trajectory info records it.
PARTITION_KEY = "memory_partition"


def memory_partition(
    info: dict[str, Any], by: str = "instance", *, default: str | None = None
) -> str:
    """The memory partition of an episode from its info: the one rule, in this order.

    1. ``info["memory_partition"]`` when set (the memory wrapper's assignment, which a
       rollout's trajectory info copies);
    2. the env's ``task``, for ``instance`` partitions plus ``/variation`` (ScienceWorld),
       ``/goal_index`` (WebShop) or ``/game_seed`` (TextWorldExpress) when the info has one;
    3. ``default`` (a rollout's group id, say) for an env whose info has no ``task``.

    Args:
        info: An env's (or a trajectory's) info dict.
        by: ``instance`` or ``task`` (see :data:`PARTITION_MODES`).
        default: Partition of an info without either key; None raises instead.

    Raises:
        ValueError: ``by`` is not a partition mode, or the info names no partition and there is
            no default.

    Example:
        >>> memory_partition({"task": "boil", "variation": 3})
        'boil/3'
        >>> memory_partition({"task": "webshop", "goal_index": 12})
        'webshop/12'
        >>> memory_partition({"task": "coin", "game_seed": 20003})
        'coin/20003'
        >>> memory_partition({"task": "boil", "variation": 3}, "task")
        'boil'
        >>> memory_partition({"memory_partition": "custom", "task": "boil"})
        'custom'
        >>> memory_partition({}, default="g0")
        'g0'
    """
    if by not in PARTITION_MODES:
        raise ValueError(
            f"unknown partition mode {by!r}; expected one of: {', '.join(PARTITION_MODES)}"
        )
    assigned = info.get(PARTITION_KEY)
    if assigned:
        return str(assigned)
    task = info.get("task")
    if task is None:
        if default is not None:
            return default
        raise ValueError(
            "the env's info has no 'task' key to name the memory partition; pass "
            "partition_fn=... or reset(options={'memory_partition': ...})"
        )
    if by == "instance":
        # ScienceWorld variation, WebShop goal, TextWorldExpress game seed
        for key in ("variation", "goal_index", "game_seed"):
            if info.get(key) is not None:
                return f"{task}/{info[key]}"
    return str(task)


@dataclass
class Step:
    """One step of a recorded episode: the state seen, the action taken, what followed.

    Attributes:
        state: Raw observation the action was chosen in (tips excluded); the key its memory
            entry is retrieved by.
        action: The action taken.
        reward: Env reward of the step.
        score: Env score after the step.
    """

    state: str
    action: str
    reward: float = 0.0
    score: float = 0.0


@dataclass
class Episode:
    """A finished episode as memory sees it (what a tip writer reads and the store keeps).

    Attributes:
        task: Task text (the env's ``info["instruction"]`` or ``info["task"]``).
        partition: Memory partition of the episode (see :func:`memory_partition`).
        steps: Steps in order.
        final_score: Score at the end (env's native scale).
        success: Whether the env reported success.
        used_memory: Whether the episode ran with tips.
        info: Free-form extra data (not stored).
        tip: The one-sentence tip written for it, once written.
        keys: Embedding of each step's state, ``[len(steps), dim]``, when already computed
            (the store then embeds nothing); None = embedded when stored.
        episode_id: Id the :class:`~empo_gym.memory.recorder.EpisodeRecorder` gave it (the
            memory wrapper reports it as ``info["memory_episode"]``).

    Example:
        >>> ep = Episode("boil water", "boil/0", [Step("hall", "go kitchen")], final_score=10)
        >>> ep.steps[0].action, ep.tip, ep.keys is None
        ('go kitchen', None, True)
    """

    task: str
    partition: str
    steps: list[Step] = field(default_factory=list)
    final_score: float = 0.0
    success: bool = False
    used_memory: bool = False
    info: dict[str, Any] = field(default_factory=dict)
    tip: str | None = None
    keys: np.ndarray | None = field(default=None, repr=False, compare=False)
    episode_id: int | None = None


# old names, still importable (with a DeprecationWarning) for code written against them
__getattr__ = deprecated_aliases(
    __name__,
    {
        "SLOT_MODES": ("empo_gym.memory.PARTITION_MODES", PARTITION_MODES),
        "memory_slot": ("empo_gym.memory.memory_partition", memory_partition),
    },
)
