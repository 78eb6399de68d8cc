"""empo-gym: text environments for LLM agents, registered with Gymnasium.

Importing the package registers:

* ``empo_gym/ScienceWorld-v0`` -- ScienceWorld (JVM simulator) with Gymnasium semantics;
* ``empo_gym/WebShop-v0`` -- a self-contained WebShop (generated catalogue, BM25 search);
* ``empo_gym/ScienceWorldOOD-v0`` -- the EMPO² out-of-distribution transfer pairs;
* ``empo_gym/Doors-v0`` -- an exploration-hard chain of rooms (one safe door per room);
* ``empo_gym/TWX-Coin-v0``, ``-CookingWorld-``, ``-TWC-``, ``-MapReader-``, ``-Arithmetic-``,
  ``-Sorting-``, ``-SimonSays-``, ``-PeckingOrder-v0`` -- the TextWorldExpress games (one id per
  game; ``empo_gym/TextWorldExpress-v0`` takes ``game=``).

Example:
    >>> import gymnasium as gym
    >>> import empo_gym
    >>> "empo_gym/ScienceWorld-v0" in gym.registry
    True
"""

from __future__ import annotations

from gymnasium.envs.registration import register

from empo_gym import spaces  # noqa: F401  (registers the async-vector text codec)
from empo_gym.twx.games import GAMES as _TWX_GAMES

__version__ = "0.1.0"

register(
    id="empo_gym/ScienceWorld-v0",
    entry_point="empo_gym.scienceworld.env:ScienceWorldEnv",
    disable_env_checker=True,
)
register(
    id="empo_gym/WebShop-v0",
    entry_point="empo_gym.webshop.env:WebShopEnv",
    disable_env_checker=True,
)
register(
    id="empo_gym/ScienceWorldOOD-v0",
    entry_point="empo_gym.ood:ScienceWorldOODEnv",
    disable_env_checker=True,
)
register(
    id="empo_gym/Doors-v0",
    entry_point="empo_gym.doors:DoorsEnv",
    disable_env_checker=True,
)
register(
    id="empo_gym/TextWorldExpress-v0",
    entry_point="empo_gym.twx.env:TextWorldExpressEnv",
    disable_env_checker=True,
)
for _game in _TWX_GAMES.values():
    register(
        id=_game.gym_id,
        entry_point="empo_gym.twx.env:TextWorldExpressEnv",
        kwargs={"game": _game.name},
        disable_env_checker=True,
    )
