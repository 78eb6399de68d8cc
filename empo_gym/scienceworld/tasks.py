"""ScienceWorld task names, ids, splits and the paper's per-task step limits.

Everything here is read from the ``scienceworld`` package's own task table, so it needs no JVM.

Example:
    >>> resolve_task("1-1")
    'boil'
    >>> resolve_task("boil")
    'boil'
    >>> default_max_steps("chemistry-mix-paint-secondary-color")
    60
    >>> len(TASK_NAMES)
    30
"""

from __future__ import annotations

from scienceworld.constants import ID2TASK

#: The 30 task names, in ScienceWorld's id order ("1-1" .. "10-2").
TASK_NAMES: tuple[str, ...] = tuple(ID2TASK.values())
#: Task id ("1-1") -> task name ("boil").
TASK_IDS: dict[str, str] = dict(ID2TASK)
#: Splits of variations, as ScienceWorld defines them.
SPLITS: tuple[str, ...] = ("train", "dev", "test")

#: The EMPO² paper's episode limits: 30 steps, chemistry-mix 60, measure-melting-point 120.
DEFAULT_STEPS = 30
_LONG_TASK_PREFIXES = {"chemistry-mix": 60, "measure-melting-point": 120}


def resolve_task(task: str) -> str:
    """Return the canonical task name for a name (``boil``) or an id (``1-1``).

    Raises:
        ValueError: naming the unknown task and listing the valid ones.
    """
    if not isinstance(task, str):
        raise TypeError(f"task must be a str (name like 'boil' or id like '1-1'), got {task!r}")
    key = task.strip()
    if key in TASK_IDS:
        return TASK_IDS[key]
    if key in TASK_NAMES:
        return key
    raise ValueError(
        f"unknown ScienceWorld task {task!r}; expected a name or id, one of: "
        + ", ".join(f"{tid} {name}" for tid, name in TASK_IDS.items())
    )


def default_max_steps(task: str) -> int:
    """The paper's step limit for ``task`` (30; chemistry-mix 60; measure-melting-point 120)."""
    name = resolve_task(task)
    for prefix, steps in _LONG_TASK_PREFIXES.items():
        if name.startswith(prefix):
            return steps
    return DEFAULT_STEPS


def resolve_split(split: str) -> str:
    """Validate a split name (``train``, ``dev`` or ``test``)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    return split
