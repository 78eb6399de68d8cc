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
    >>> split_variations("boil", "dev")
    [14, 15, 16, 17, 18, 19, 20]
    >>> split_of_variation("boil", 25)
    'test'
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


#: Task -> (variations, train count, dev count), as scienceworld 1.2.3's JVM reports them. Each
#: split is a contiguous range: train ``[0, train)``, dev ``[train, train + dev)``, test the rest.
#: A static table, because asking the JVM means loading a task, which changes the JVM's random
#: state and so the episodes that follow (a slow test checks it against the JVM).
VARIATION_SPLITS: dict[str, tuple[int, int, int]] = {
    "boil": (30, 14, 7),
    "melt": (30, 14, 7),
    "freeze": (30, 14, 7),
    "change-the-state-of-matter-of": (30, 14, 7),
    "use-thermometer": (540, 270, 135),
    "measure-melting-point-known-substance": (436, 218, 109),
    "measure-melting-point-unknown-substance": (300, 150, 75),
    "power-component": (20, 10, 5),
    "power-component-renewable-vs-nonrenewable-energy": (20, 10, 5),
    "test-conductivity": (900, 450, 225),
    "test-conductivity-of-unknown-substances": (600, 300, 150),
    "find-living-thing": (300, 150, 75),
    "find-non-living-thing": (300, 150, 75),
    "find-plant": (300, 150, 75),
    "find-animal": (300, 150, 75),
    "grow-plant": (126, 62, 31),
    "grow-fruit": (126, 62, 31),
    "chemistry-mix": (32, 16, 8),
    "chemistry-mix-paint-secondary-color": (36, 18, 9),
    "chemistry-mix-paint-tertiary-color": (36, 18, 9),
    "lifespan-longest-lived": (125, 62, 31),
    "lifespan-shortest-lived": (125, 62, 31),
    "lifespan-longest-lived-then-shortest-lived": (125, 62, 31),
    "identify-life-stages-1": (14, 6, 3),
    "identify-life-stages-2": (10, 4, 2),
    "inclined-plane-determine-angle": (168, 84, 42),
    "inclined-plane-friction-named-surfaces": (1386, 692, 346),
    "inclined-plane-friction-unnamed-surfaces": (162, 80, 40),
    "mendelian-genetics-known-plant": (120, 60, 30),
    "mendelian-genetics-unknown-plant": (480, 240, 120),
}


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


def split_variations(task: str, split: str) -> list[int]:
    """The variation indices of ``task`` in ``split`` (no JVM needed)."""
    total, train, dev = VARIATION_SPLITS[resolve_task(task)]
    start, stop = {"train": (0, train), "dev": (train, train + dev), "test": (train + dev, total)}[
        resolve_split(split)
    ]
    return list(range(start, stop))


def split_of_variation(task: str, variation: int) -> str:
    """The split that variation ``variation`` of ``task`` belongs to.

    Raises:
        ValueError: when ``variation`` is not an index of the task's variations.
    """
    total, train, dev = VARIATION_SPLITS[resolve_task(task)]
    if isinstance(variation, bool) or not isinstance(variation, int) or not 0 <= variation < total:
        raise ValueError(
            f"variation must be an int in [0, {total}) for task {task!r}, got {variation!r}"
        )
    return "train" if variation < train else "dev" if variation < train + dev else "test"
