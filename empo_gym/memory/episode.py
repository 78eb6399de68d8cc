"""A finished episode as EMPO²'s memory sees it, and the memory slot it belongs to.

One record type serves every writer of memory: the memory wrapper, the ``memory-only`` agent
and the trainer's memory hooks all record :class:`Episode` objects (through
:class:`~empo_gym.memory.recorder.EpisodeRecorder`), a tip writer turns each into one sentence,
and the store keeps one entry per :class:`Step`. (The trainer's rollout record,
``empo_gym.agents.llm.trajectory.Trajectory``, holds token ids; this one holds text.)

Memories are grouped into *slots*: :func:`memory_slot` is the one rule that names them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["SLOT_MODES", "Episode", "Step", "memory_slot"]

#: How episodes are grouped into memory slots: ``instance`` = task + variation / goal (EMPO²:
#: one slot per task instance), ``task`` = all instances of a task share one slot.
SLOT_MODES = ("instance", "task")


def memory_slot(info: dict[str, Any], by: str = "instance", *, default: str | None = None) -> str:
    """The memory slot of an episode from its env info.

    ``instance`` slots are ``task`` plus ``/variation`` (ScienceWorld) or ``/goal_index``
    (WebShop) when the info has one; ``task`` slots are the task alone.

    Args:
        info: The env's info dict (``task``, and ``variation`` / ``goal_index`` if any).
        by: ``instance`` or ``task`` (see :data:`SLOT_MODES`).
        default: Slot of an info without ``task``; None raises instead.

    Raises:
        ValueError: ``by`` is not a slot mode, or the info has no ``task`` and no default.

    Example:
        >>> memory_slot({"task": "boil", "variation": 3})
        'boil/3'
        >>> memory_slot({"task": "webshop", "goal_index": 12})
        'webshop/12'
        >>> memory_slot({"task": "boil", "variation": 3}, "task")
        'boil'
        >>> memory_slot({}, default="task")
        'task'
    """
    if by not in SLOT_MODES:
        raise ValueError(f"unknown slot mode {by!r}; expected one of: {', '.join(SLOT_MODES)}")
    task = info.get("task")
    if task is None:
        if default is not None:
            return default
        raise ValueError(
            "the env's info has no 'task' key to name the memory slot; pass slot_fn=... or "
            "reset(options={'memory_slot': ...})"
        )
    if by == "instance":
        for key in ("variation", "goal_index"):  # ScienceWorld variation, WebShop goal
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
        slot: Memory slot of the episode (see :func:`memory_slot`).
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
    slot: str
    steps: list[Step] = field(default_factory=list)
    final_score: float = 0.0
    success: bool = False
    used_memory: bool = False
    info: dict[str, Any] = field(default_factory=dict)
    tip: str | None = None
    keys: np.ndarray | None = field(default=None, repr=False, compare=False)
    episode_id: int | None = None
