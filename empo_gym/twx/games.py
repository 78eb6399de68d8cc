"""The TextWorldExpress games: names, Gymnasium ids, generation parameters and seed folds.

Every game draws its instances from three seed folds (the same for all eight games in
``textworld-express`` 1.1): train ``0..999``, dev ``10000..10999``, test ``20000..20999``. A
game's generation parameters are validated here, before the JVM sees them, with the ranges the
simulator itself enforces (its error messages, probed for every parameter); a parameter left
out keeps the simulator's default (listed in :data:`GAMES`). Some rare combinations still fail
to generate for some seeds (mapreader with ``maxDistanceApart=8`` on 15 rooms: 1 seed in 10);
the env's ``reset`` then raises a ValueError naming the game, seed, parameters and Java error.

Example:
    >>> generation_params("coin", {"numLocations": 5, "includeDoors": False})
    'numLocations=5,includeDoors=0'
    >>> generation_params("coin", {"numRooms": 5})
    Traceback (most recent call last):
    ...
    ValueError: unknown generation parameter 'numRooms' for game 'coin'; expected one of: ...
    >>> fold_of_seed(20003)
    'test'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

#: Seed folds of every game (``getSeedsTrain/Dev/Test`` of the simulator).
FOLDS: dict[str, range] = {
    "train": range(0, 1000),
    "dev": range(10000, 11000),
    "test": range(20000, 21000),
}
SPLITS = tuple(FOLDS)


@dataclass(frozen=True)
class Param:
    """One integer generation parameter and its accepted range (flags are 0..1)."""

    name: str
    low: int
    high: int
    default: int
    doc: str

    @property
    def flag(self) -> bool:
        """Whether the parameter is an on/off switch (accepts bools)."""
        return (self.low, self.high) == (0, 1)


def _doors(default: int) -> Param:
    return Param("includeDoors", 0, 1, default, "rooms are joined by doors to open")


def _inventory(default: int) -> Param:
    return Param("limitInventorySize", 0, 1, default, "the inventory holds few items")


@dataclass(frozen=True)
class Game:
    """One TextWorldExpress game: its names, what it is, and its generation parameters."""

    name: str
    """The simulator's game name and the short env name (``empo-gym run --env coin``)."""
    gym_id: str
    """The registered Gymnasium id."""
    title: str
    description: str
    params: tuple[Param, ...]

    def param(self, name: str) -> Param:
        """The parameter ``name``, or a ValueError listing this game's parameters."""
        for param in self.params:
            if param.name == name:
                return param
        known = ", ".join(p.name for p in self.params) or "none (this game has no parameters)"
        raise ValueError(
            f"unknown generation parameter {name!r} for game {self.name!r}; "
            f"expected one of: {known}"
        )


GAMES: dict[str, Game] = {
    game.name: game
    for game in (
        Game(
            "coin",
            "empo_gym/TWX-Coin-v0",
            "Coin Collector",
            "search the rooms, behind doors, for a coin and take it (exploration-hard)",
            (
                Param("numLocations", 1, 11, 11, "number of rooms"),
                Param("numDistractorItems", 0, 10, 0, "objects that are not the coin"),
                _doors(1),
                _inventory(1),
            ),
        ),
        Game(
            "cookingworld",
            "empo_gym/TWX-CookingWorld-v0",
            "CookingWorld",
            "find the recipe and the ingredients, prepare them and eat the meal",
            (
                Param("numLocations", 1, 11, 11, "number of rooms"),
                Param("numIngredients", 1, 5, 3, "ingredients of the recipe"),
                Param("numDistractorItems", 0, 10, 10, "objects the recipe does not need"),
                _doors(1),
                _inventory(1),
            ),
        ),
        Game(
            "twc",
            "empo_gym/TWX-TWC-v0",
            "TextWorld Commonsense",
            "put the objects away in their usual places (commonsense)",
            (
                Param("numLocations", 1, 3, 3, "number of rooms"),
                Param("numItemsToPutAway", 1, 4, 4, "objects to put away"),
                _doors(0),
                _inventory(0),
            ),
        ),
        Game(
            "mapreader",
            "empo_gym/TWX-MapReader-v0",
            "Map Reader",
            "read the map, fetch the coin and put it in the box at the start",
            (
                # the simulator accepts up to 50 rooms but fails to generate 50 (Java
                # IndexOutOfBoundsException) on every seed tried; 40 generates
                Param("numLocations", 1, 40, 15, "number of rooms"),
                Param("maxDistanceApart", 1, 8, 4, "most rooms between start and coin"),
                Param("maxDistractorItemsPerLocation", 0, 3, 3, "distractor objects per room"),
                _doors(0),
                _inventory(0),
            ),
        ),
        Game(
            "arithmetic",
            "empo_gym/TWX-Arithmetic-v0",
            "Arithmetic",
            "solve the math problem, put the bundle of that many objects in the box",
            (),
        ),
        Game(
            "sorting",
            "empo_gym/TWX-Sorting-v0",
            "Sorting",
            "put the objects in the box in increasing order of quantity",
            (),
        ),
        Game(
            "simonsays",
            "empo_gym/TWX-SimonSays-v0",
            "Simon Says",
            "do exactly what Simon says",
            (
                Param("gameLength", 1, 1000, 5, "number of instructions"),
                Param("numDistractors", 0, 5, 3, "distractor actions offered"),
                Param("memorization", 0, 1, 0, "the instructions are shown once, up front"),
            ),
        ),
        Game(
            "peckingorder",
            "empo_gym/TWX-PeckingOrder-v0",
            "Pecking Order",
            "follow the instructions book, re-reading it after every step",
            (),
        ),
    )
}
GAME_NAMES = tuple(GAMES)


def resolve_game(game: str) -> str:
    """The canonical game name (case-insensitive), or a ValueError listing the games."""
    if not isinstance(game, str) or game.lower() not in GAMES:
        raise ValueError(f"unknown game {game!r}; expected one of: {', '.join(GAME_NAMES)}")
    return game.lower()


def resolve_split(split: str) -> str:
    """``split`` validated against the seed folds."""
    if split not in FOLDS:
        raise ValueError(f"unknown split {split!r}; expected one of: {', '.join(SPLITS)}")
    return split


def fold_of_seed(seed: int) -> str | None:
    """The fold a game seed belongs to (``None``: in no fold)."""
    return next((fold for fold, seeds in FOLDS.items() if seed in seeds), None)


def validate_params(game: str, params: Mapping[str, int | bool]) -> dict[str, int]:
    """Check ``params`` against ``game``'s generation parameters; bools become 0/1.

    Raises:
        ValueError: an unknown name or an out-of-range value (naming the range).
        TypeError: a value that is not an int (or a bool for a flag).
    """
    spec = GAMES[resolve_game(game)]
    checked: dict[str, int] = {}
    for name, value in params.items():
        param = spec.param(name)
        if isinstance(value, bool):
            if not param.flag:
                raise TypeError(
                    f"generation parameter {name}={value!r} of game {spec.name!r} must be an "
                    f"int in [{param.low}, {param.high}], not a bool"
                )
            value = int(value)
        if not isinstance(value, int):
            raise TypeError(
                f"generation parameter {name}={value!r} of game {spec.name!r} must be an int "
                f"in [{param.low}, {param.high}]"
            )
        if not param.low <= value <= param.high:
            raise ValueError(
                f"generation parameter {name}={value} of game {spec.name!r} is out of range; "
                f"expected an int in [{param.low}, {param.high}] ({param.doc})"
            )
        checked[name] = int(value)
    return checked


def generation_params(game: str, params: Mapping[str, int | bool]) -> str:
    """The simulator's parameter string (``"numLocations=5,includeDoors=0"``), validated."""
    return ",".join(f"{k}={v}" for k, v in validate_params(game, params).items())
