"""Doors: an exploration-hard text environment (a chain of rooms, one safe door per room).

The agent stands in the first of ``depth`` rooms. Every room has ``doors`` doors; exactly one
leads on to the next room, every other one is a trap that ends the episode with score 0.
Behind the last room's safe door lies the treasure (reward 1, score 100, success).

Why it is exploration-hard (in the spirit of bsuite's "deep sea"):

* **Sparse reward at the end only.** Nothing distinguishes a safe door from a trap until the
  episode is over, and a trap ends it; a policy learns which door is safe only by surviving.
* **The instruction says nothing about the way.** It asks for the treasure; the rooms, their
  doors and which door is safe are not mentioned anywhere but in the states themselves.
* **Chance success shrinks geometrically.** A uniformly random policy over the admissible
  actions succeeds with probability ``doors ** -depth`` (3 doors, depth 5: 1/243 = 0.41 %),
  so a group of 8 rollouts almost never contains a success to learn from.
* **Every seed is a new layout.** Every room has the same ``doors`` doors (as deep sea has the
  same actions everywhere); room names, the order the doors are listed in and the safe door of
  every room are drawn per layout, so what is learned on some layouts must be re-discovered
  (or transferred through memory) on others.

Splits are disjoint layout ranges: ``train`` layouts ``0..999``, ``test`` layouts
``1000..1999``; ``reset(seed=s)`` plays layout ``s % 1000`` of the split, ``options={"layout":
i}`` layout ``i`` of the split. A ``family`` sets the vocabulary of rooms and door names
(``castle`` or ``cave``); the two share no room or door name, for out-of-distribution runs.

Example:
    >>> env = DoorsEnv(depth=2, doors=2)
    >>> obs, info = env.reset(seed=0)
    >>> obs
    'You are in the study. There is a blue door and a red door.'
    >>> info["admissible_actions"]
    ['open blue door', 'open red door']
    >>> env.safe_action()
    'open blue door'
    >>> env.step("open blue door")[1:3]
    (0.0, False)
    >>> obs, reward, terminated, truncated, info = env.step(env.safe_action())
    >>> reward, terminated, info["success"], info["depth"]
    (1.0, True, True, 2)
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import gymnasium as gym

from empo_gym.spaces import UnicodeText, has_unencodable

__all__ = [
    "FAMILIES",
    "SPLIT_SIZE",
    "DoorsEnv",
    "Layout",
    "door_action",
    "make_layout",
    "random_success",
    "room_text",
]

#: Room and door names per layout family (the two families share no word).
FAMILIES: dict[str, dict[str, tuple[str, ...]]] = {
    "castle": {
        "rooms": (
            "armory",
            "library",
            "chapel",
            "kitchen",
            "gallery",
            "cellar",
            "tower",
            "vault",
            "pantry",
            "study",
            "ballroom",
            "dungeon",
            "garret",
            "parlor",
            "scullery",
            "solar",
            "stable",
            "treasury",
            "nursery",
            "larder",
            "workshop",
            "foyer",
            "chamber",
            "lobby",
        ),
        "doors": (
            "red",
            "blue",
            "green",
            "yellow",
            "white",
            "black",
            "silver",
            "golden",
            "purple",
            "orange",
            "grey",
            "brown",
            "pink",
            "violet",
            "scarlet",
            "amber",
            "ivory",
            "azure",
        ),
    },
    "cave": {
        "rooms": (
            "grotto",
            "cavern",
            "chasm",
            "hollow",
            "den",
            "burrow",
            "crypt",
            "pit",
            "lair",
            "sinkhole",
            "gorge",
            "ravine",
            "alcove",
            "nook",
            "niche",
            "rift",
            "shaft",
            "tunnel",
            "gully",
            "basin",
            "ledge",
            "dome",
            "well",
            "pocket",
        ),
        "doors": (
            "mossy",
            "rusty",
            "wooden",
            "iron",
            "stone",
            "copper",
            "oaken",
            "crystal",
            "narrow",
            "muddy",
            "sandy",
            "slimy",
            "hidden",
            "cracked",
            "jagged",
            "dusty",
            "bronze",
            "frozen",
        ),
    },
}
#: Layouts per split (``train``: 0..999, ``test``: 1000..1999).
SPLIT_SIZE = 1000
_SPLIT_START = {"train": 0, "test": SPLIT_SIZE}


@dataclass(frozen=True)
class Layout:
    """One generated layout: its rooms, each room's doors (in listed order), the safe ones."""

    layout_id: int
    family: str
    rooms: tuple[str, ...]
    doors: tuple[tuple[str, ...], ...]
    safe: tuple[int, ...]


def make_layout(layout_id: int, family: str = "castle", depth: int = 5, doors: int = 3) -> Layout:
    """The layout ``layout_id`` of ``family`` (a pure function of its arguments).

    Example:
        >>> lay = make_layout(7, depth=3, doors=2)
        >>> len(lay.rooms), len(set(lay.rooms)), [len(d) for d in lay.doors]
        (3, 3, [2, 2, 2])
        >>> lay == make_layout(7, depth=3, doors=2)
        True
    """
    names = FAMILIES[family]
    rng = random.Random(f"doors/{family}/{depth}/{doors}/{layout_id}")
    rooms = tuple(rng.sample(names["rooms"], depth))
    # the same doors in every room (as deep sea has the same actions everywhere), listed in a
    # per-room order
    door_sets = tuple(tuple(rng.sample(names["doors"][:doors], doors)) for _ in range(depth))
    safe = tuple(rng.randrange(doors) for _ in range(depth))
    return Layout(layout_id, family, rooms, door_sets, safe)


def random_success(depth: int, doors: int) -> float:
    """Success probability of a uniformly random admissible-action policy: ``doors ** -depth``.

    Example:
        >>> round(100 * random_success(5, 3), 2)
        0.41
    """
    return float(doors) ** -depth


def door_action(door: str) -> str:
    """The action that opens ``door``.

    Example:
        >>> door_action("red")
        'open red door'
    """
    return f"open {door} door"


def room_text(layout: Layout, room: int) -> str:
    """The observation of ``room`` of ``layout`` (its name and its doors, in listed order).

    Example:
        >>> room_text(Layout(0, "castle", ("hall",), (("red", "amber"),), (0,)), 0)
        'You are in the hall. There is a red door and an amber door.'
    """
    names = [f"{'an' if d[0] in 'aeiou' else 'a'} {d} door" for d in layout.doors[room]]
    listed = ", ".join(names[:-1]) + f" and {names[-1]}"
    return f"You are in the {layout.rooms[room]}. There is {listed}."


class DoorsEnv(gym.Env[str, str]):
    """A chain of rooms; one door per room leads on, the others are traps (see module doc).

    Args:
        depth: Rooms to pass (>= 1).
        doors: Doors per room (>= 2); one is safe.
        family: Vocabulary of rooms and doors (``castle`` or ``cave``).
        split: ``train`` (layouts 0..999) or ``test`` (1000..1999).
        max_steps: Truncation limit (default ``depth + 2``: invalid actions waste steps).
        render_mode: Only None is supported (the observation is the rendering).
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        depth: int = 5,
        doors: int = 3,
        family: str = "castle",
        split: str = "train",
        max_steps: int | None = None,
        render_mode: str | None = None,
    ):
        if not isinstance(depth, int) or depth < 1:
            raise ValueError(f"depth must be an int >= 1, got {depth!r}")
        if family not in FAMILIES:
            raise ValueError(f"family={family!r}; expected one of {sorted(FAMILIES)}")
        n_names = len(FAMILIES[family]["doors"])
        if not isinstance(doors, int) or doors < 2:
            raise ValueError(f"doors must be an int >= 2, got {doors!r}")
        if doors > n_names:
            raise ValueError(f"doors={doors} exceeds the {n_names} door names of {family!r}")
        if depth > len(FAMILIES[family]["rooms"]):
            raise ValueError(
                f"depth={depth} exceeds the {len(FAMILIES[family]['rooms'])} room names of "
                f"family {family!r}"
            )
        if split not in _SPLIT_START:
            raise ValueError(f"split={split!r}; expected one of {sorted(_SPLIT_START)}")
        if max_steps is not None and (not isinstance(max_steps, int) or max_steps < depth):
            raise ValueError(f"max_steps must be an int >= depth={depth}, got {max_steps!r}")
        if render_mode is not None:
            raise ValueError(f"render_mode={render_mode!r}; expected None (text observations)")
        self.depth, self.doors, self.family, self.split = depth, doors, family, split
        self.max_steps = max_steps if max_steps is not None else depth + 2
        self.observation_space = UnicodeText(1_000)
        self.action_space = UnicodeText(200)
        self.layout = make_layout(_SPLIT_START[split], family, depth, doors)
        self._room, self._steps, self._score, self._done = 0, 0, 0.0, False

    # -- helpers -----------------------------------------------------------------------------
    def _actions(self) -> list[str]:
        if self._done:
            return []
        return [door_action(d) for d in self.layout.doors[self._room]]

    def safe_action(self) -> str:
        """The action that leads on from the current room (scripted agents and tests)."""
        return door_action(self.layout.doors[self._room][self.layout.safe[self._room]])

    def _room_text(self) -> str:
        return room_text(self.layout, self._room)

    def _info(self, invalid: bool = False) -> dict[str, Any]:
        return {
            "admissible_actions": self._actions(),
            "task": f"doors-{self.family}",
            "instruction": "Find the treasure.",
            "variation": self.layout.layout_id,
            "depth": self._room if not self._score else self.depth,
            "score": self._score,
            "success": self._score >= 100,
            "success_rule": "score >= 100: opened the safe door of every room",
            "invalid_action": invalid,
            "observation_truncated": False,  # rooms are described in far fewer characters
        }

    # -- gymnasium API -----------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Start in the first room of a layout.

        ``options={"layout": i}`` plays layout ``i`` of the split; otherwise ``seed=s`` plays
        layout ``s % 1000``, and with neither a layout is drawn from the env's RNG.
        """
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - {"layout"}
        if unknown:
            raise ValueError(f"unknown reset option(s) {sorted(unknown)}; expected 'layout'")
        if "layout" in options:
            index = options["layout"]
            if isinstance(index, bool) or not isinstance(index, int) or index < 0:
                raise ValueError(f"layout must be an int >= 0, got {index!r}")
        elif seed is not None:
            index = int(seed)
        else:
            index = int(self.np_random.integers(SPLIT_SIZE))
        layout_id = _SPLIT_START[self.split] + index % SPLIT_SIZE
        self.layout = make_layout(layout_id, self.family, self.depth, self.doors)
        self._room, self._steps, self._score, self._done = 0, 0, 0.0, False
        return self._room_text(), self._info()

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Open a door: the safe one leads on (or to the treasure), any other is a trap."""
        if self._done:
            raise RuntimeError("step() after the episode ended; call reset() first")
        if not isinstance(action, str):
            raise TypeError(f"action must be a str, got {type(action).__name__}")
        self._steps += 1
        names = self.layout.doors[self._room]
        chosen = None
        if not has_unencodable(action):  # the empo_gym rule: such an action is invalid
            chosen = next(
                (i for i, d in enumerate(names) if door_action(d) == action.strip()), None
            )
        reward, terminated = 0.0, False
        if chosen is None:
            obs = f"Nothing happens. {self._room_text()}"
            truncated = self._steps >= self.max_steps
            self._done = truncated
            return obs, reward, False, truncated, self._info(invalid=True)
        if chosen != self.layout.safe[self._room]:
            obs = f"The {names[chosen]} door was a trap: you fall into a pit. The episode is over."
            terminated = True
        elif self._room + 1 == self.depth:
            obs = f"Behind the {names[chosen]} door lies the treasure. You found it!"
            reward, self._score, terminated = 1.0, 100.0, True
        else:
            self._room += 1
            obs = self._room_text()
        truncated = not terminated and self._steps >= self.max_steps
        self._done = terminated or truncated
        return obs, reward, terminated, truncated, self._info()
