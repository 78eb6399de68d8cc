"""TextWorldExpress games as Gymnasium environments (``empo_gym/TWX-Coin-v0`` and the rest).

One Gymnasium id per game (``empo_gym/TWX-Coin-v0``, ``-CookingWorld-``, ``-TWC-``,
``-MapReader-``, ``-Arithmetic-``, ``-Sorting-``, ``-SimonSays-``, ``-PeckingOrder-``), each
this class with ``game`` fixed; ``empo_gym/TextWorldExpress-v0`` takes ``game=``. The game's
generation parameters are keyword arguments (validated by :mod:`empo_gym.twx.games`).

Example:
    >>> import gymnasium as gym
    >>> import empo_gym
    >>> env = gym.make("empo_gym/TWX-Coin-v0", numLocations=5, includeDoors=False)
    >>> env.unwrapped.game, env.unwrapped.params  # the JVM starts at the first reset
    ('coin', 'numLocations=5,includeDoors=0')
    >>> env.close()
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import orjson
from py4j.protocol import Py4JError
from textworld_express.constants import BASEPATH, JAR_PATH

from empo_gym import jvm as _jvm
from empo_gym.jvm import JVMError, ManagedJVM, heap_from_env, is_jvm_failure, refused_action
from empo_gym.spaces import (
    MAX_ACTION_CHARS,
    MAX_OBSERVATION_CHARS,
    UnicodeText,
    clip_observation,
)
from empo_gym.twx.games import FOLDS, fold_of_seed, generation_params, resolve_game, resolve_split

#: TextWorldExpress's own success flag (the game says the task is done).
SUCCESS_RULE = "twx:tasksuccess"
#: The package's default step limit (``TextWorldExpressEnv(envStepLimit=100)``).
DEFAULT_MAX_STEPS = 100
#: Default JVM heap. Measured (``empo-gym bench twx --steps 1000 --rounds 7``, coin, cookingworld,
#: twc; 2 shared cores): with the JVM's default heap the JVM is ~300 MB resident (the raw package
#: and this env alike); with 128 MB and the serial collector ~105-115 MB, and no slower.
DEFAULT_MAX_HEAP_MB = 128
#: Smallest accepted heap: the largest games (cookingworld with 11 rooms, 5 ingredients and 10
#: distractors; mapreader with 40 rooms) generate and replay their gold paths at 64 MB
#: (tests/twx/test_jvm_lifecycle.py).
MIN_HEAP_MB = 64
_UNKNOWN_ACTION_PREFIX = "Unknown action"


class TWXJVMError(JVMError):
    """The TextWorldExpress JVM died (killed, out of memory) or stopped answering."""


def jvm_options(max_heap_mb: int | None) -> list[str]:
    """JVM flags for a heap cap (``None`` keeps the JVM's default heap)."""
    return _jvm.jvm_options(
        max_heap_mb,
        min_heap_mb=MIN_HEAP_MB,
        floor_reason="the largest games' gold paths are only measured at 64 MB and up",
    )


class TWXJVM(ManagedJVM):
    """The TextWorldExpress simulator in a JVM with a bounded heap and a guaranteed shutdown.

    ``server`` is the simulator's ``PythonInterface`` (the raw package's ``env.server``).

    Args:
        max_heap_mb: JVM ``-Xmx`` in MB, or ``None`` for the JVM default.
    """

    def __init__(self, max_heap_mb: int | None = DEFAULT_MAX_HEAP_MB):
        # -Xverify:none as the package's own launcher (skips bytecode verification at start)
        opts = [*jvm_options(max_heap_mb), "-Xverify:none"]
        self._launch(JAR_PATH, BASEPATH, opts, "TextWorldExpress")
        self.server = self._gateway.jvm.textworldexpress.runtime.PythonInterface()
        self.loaded: tuple[str, str] | None = None


class TextWorldExpressEnv(gym.Env[str, str]):
    """A TextWorldExpress game with the Gymnasium API: text in, text out, 5-tuple ``step``.

    Reward is the score delta (the game's score is -1..1: 1 solved, -1 failed in the games that
    can be failed, such as a wrong answer in arithmetic); ``terminated`` when the game reports
    success or failure (or the score reaches 1); ``truncated`` after ``max_steps`` actions.
    ``info`` carries ``admissible_actions``, ``instruction`` (the task description), ``score``
    (-100..100 = 100 * the game's score), ``success`` (the game's own success flag, named in
    ``success_rule``), ``failure``, ``look``, ``inventory``, ``task`` (the game name),
    ``game_seed``, ``split``, ``params``, ``moves``, ``invalid_action``, ``max_steps`` and
    ``observation_truncated``.

    ``reset(seed=s)`` draws a game seed from the split's fold with the env's seeded RNG and
    generates that game; ``options={"game_seed": n}`` picks exactly (``n`` must belong to the
    split's fold). The game is a pure function of its seed and parameters, so one JVM serves
    every episode: the same seed gives the same first observation, admissible actions and
    dynamics in this env after other episodes or in a fresh env (tests/twx/test_determinism.py).
    A spare JVM (ScienceWorld's :class:`~empo_gym.jvm.JVMSupply`) would not pay: a reset takes
    ~1.5 ms, a JVM start ~1 s (``empo-gym bench twx``). The gold path (``oracle_info``) solves
    the game but is not unique: the simulator's solver draws from an unseeded generator, so two
    resets of one seed may give two different, equally valid, gold paths.

    Actions that are empty, too long or carry unencodable code points are no-ops flagged
    ``invalid_action``; an action the game does not know ("Unknown action") is flagged too. A
    JVM that dies raises :class:`TWXJVMError` once; the next ``reset`` starts a new one.

    Args:
        game: Game name (``coin``, ``cookingworld``, ``twc``, ``mapreader``, ``arithmetic``,
            ``sorting``, ``simonsays``, ``peckingorder``).
        split: Seed fold: ``train`` (0..999), ``dev`` (10000..10999), ``test`` (20000..20999).
        params: Generation parameters (also accepted as keyword arguments), e.g. coin's
            ``numLocations``; see :data:`empo_gym.twx.games.GAMES`.
        max_steps: Actions per episode before truncation (the package's default, 100).
        oracle_info: Generate the gold path and put it in ``info["oracle"]`` at reset.
        jvm_max_heap_mb: JVM heap cap in MB (``None``: the JVM default; at least
            :data:`MIN_HEAP_MB`). Default 128, or ``EMPO_GYM_JVM_HEAP_MB``.
        render_mode: ``None`` or ``"ansi"``.
        **game_params: More generation parameters.
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(
        self,
        game: str = "coin",
        split: str = "train",
        params: Mapping[str, int | bool] | None = None,
        max_steps: int = DEFAULT_MAX_STEPS,
        oracle_info: bool = False,
        jvm_max_heap_mb: int | None | str = "auto",
        render_mode: str | None = None,
        **game_params: int | bool,
    ):
        self.game = resolve_game(game)
        self.split = resolve_split(split)
        self.params = generation_params(self.game, {**dict(params or {}), **game_params})
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise ValueError(f"max_steps must be a positive int, got {max_steps!r}")
        self.max_steps = max_steps
        self.oracle_info = bool(oracle_info)
        if jvm_max_heap_mb == "auto":
            jvm_max_heap_mb = heap_from_env(DEFAULT_MAX_HEAP_MB)
        jvm_options(jvm_max_heap_mb)  # a bad heap fails here, not at the first reset
        self.jvm_max_heap_mb = jvm_max_heap_mb
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.render_mode = render_mode

        self.observation_space = UnicodeText(MAX_OBSERVATION_CHARS)
        self.action_space = UnicodeText(MAX_ACTION_CHARS)

        self._sim: TWXJVM | None = None
        self._clear_episode()

    def _clear_episode(self) -> None:
        self._game_seed: int | None = None
        self._steps = 0
        self._score = 0.0
        self._done = False
        self._instruction = ""
        self._last_obs = ""
        self._last_info: dict[str, Any] = {}

    @property
    def simulator(self) -> TWXJVM:
        """The env's JVM (started on first use; a dead one is replaced at the next reset)."""
        if self._sim is None:
            self._sim = TWXJVM(max_heap_mb=self.jvm_max_heap_mb)
        return self._sim

    @property
    def seeds(self) -> range:
        """The game seeds of the env's split."""
        return FOLDS[self.split]

    # ------------------------------------------------------------------ gym API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Generate a game from the split's fold and return its first observation."""
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - {"game_seed"}
        if unknown:
            raise ValueError(f"unknown reset option(s) {sorted(unknown)}; expected 'game_seed'")
        seeds = self.seeds
        if options.get("game_seed") is not None:
            game_seed = options["game_seed"]
            if isinstance(game_seed, np.integer):
                game_seed = int(game_seed)
            if isinstance(game_seed, bool) or not isinstance(game_seed, int):
                raise TypeError(f"game_seed must be an int, got {game_seed!r}")
            fold = fold_of_seed(game_seed)
            if fold != self.split:
                where = f"belongs to split {fold!r}" if fold else "is in no split"
                fix = f" or make the env with split={fold!r}" if fold else ""
                raise ValueError(
                    f"game seed {game_seed} of game {self.game!r} {where}, but this env draws "
                    f"from split {self.split!r}; pass a seed in [{seeds[0]}, {seeds[-1]}]{fix}"
                )
        else:
            game_seed = seeds[int(self.np_random.integers(len(seeds)))]

        self._clear_episode()
        if self._sim is not None and not self._sim.alive:
            self._sim.close()
            self._sim = None
        sim = self.simulator
        with self._jvm_guard(sim, "reset"):
            if sim.loaded != (self.game, self.params):
                message = sim.server.load(self.game, self.params)
                if message:  # the simulator refused the parameters (validated above: rare)
                    raise ValueError(f"textworld_express refused {self.params!r}: {message}")
                sim.loaded = (self.game, self.params)
            try:
                raw = orjson.loads(
                    sim.server.generateNewGameJSON(game_seed, self.split, self.oracle_info)
                )
            except Py4JError as exc:
                if is_jvm_failure(exc):
                    raise
                java_error = str(getattr(exc, "java_exception", "") or exc).strip()
                raise ValueError(
                    f"textworld_express could not generate game {self.game!r} seed {game_seed} "
                    f"with parameters {self.params!r} ({java_error[:300]}); try other "
                    f"parameters or another seed"
                ) from exc
            self._instruction = sim.server.getTaskDescription()
            gold = list(sim.server.getGoldActionSequence()) if self.oracle_info else None
        self._game_seed = game_seed
        info = self._make_info(raw, invalid=False)
        if gold is not None:
            info["oracle"] = {"gold_actions": gold}
        return self._observe(raw["observation"], info)

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Send one action; reward = the game's score delta."""
        if self._game_seed is None:
            raise RuntimeError("call reset() before step()")
        if self._done:
            raise RuntimeError(
                "the episode has ended (terminated or truncated); call reset() before step()"
            )
        text = action if isinstance(action, str) else str(action)
        text = text.replace("\n", " ").strip()
        self._steps += 1
        reward, terminated = 0.0, False
        refused = refused_action(text)
        if refused is not None:
            obs = refused
            info = dict(self._last_info, invalid_action=True, moves=self._steps)
            info.pop("oracle", None)
        else:
            sim = self.simulator
            with self._jvm_guard(sim, f"step {text[:80]!r}"):
                try:
                    raw = orjson.loads(sim.server.stepJSON(text))
                except Py4JError as exc:
                    if is_jvm_failure(exc):
                        raise  # the guard names the cause
                    raw = None  # the simulator's parser rejected the input outright
            if raw is None:
                obs = "The simulator could not process that action."
                info = dict(self._last_info, invalid_action=True, moves=self._steps)
                info.pop("oracle", None)
            else:
                obs = raw["observation"]
                score = float(raw["score"])
                reward = score - self._score
                self._score = score
                terminated = bool(raw["tasksuccess"] or raw["taskfailure"] or score >= 1.0)
                info = self._make_info(raw, invalid=obs.startswith(_UNKNOWN_ACTION_PREFIX))
        truncated = not terminated and self._steps >= self.max_steps
        self._done = terminated or truncated
        obs, info = self._observe(obs, info)
        return obs, float(reward), terminated, truncated, info

    def render(self) -> str | None:
        """Return the last observation as text (``render_mode="ansi"``)."""
        if self.render_mode == "ansi":
            return self._last_obs
        return None

    def close(self) -> None:
        """Stop the JVM (a new one is started if the env is used again)."""
        if self._sim is not None:
            self._sim.close()
            self._sim = None

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the configuration and RNG; the JVM and the episode stay behind (call
        ``reset()`` on the copy)."""
        state = dict(self.__dict__)
        state.update(_sim=None, _game_seed=None, _done=False, _steps=0, _score=0.0)
        state.update(_instruction="", _last_obs="", _last_info={})
        return state

    # ------------------------------------------------------------------ helpers
    @contextlib.contextmanager
    def _jvm_guard(self, sim: TWXJVM, doing: str) -> Iterator[None]:
        """Turn a dead or failing JVM into one TWXJVMError naming the cause."""
        try:
            if not sim.alive:
                raise Py4JError("the JVM process is not running")
            yield
        except Py4JError as exc:
            if not is_jvm_failure(exc):
                raise
            self._done = True
            self._game_seed = None
            self._sim = None
            message = _jvm.jvm_death_message(
                sim, "TextWorldExpress", doing, exc, self.jvm_max_heap_mb
            )
            raise TWXJVMError(message) from exc

    def _make_info(self, raw: dict[str, Any], *, invalid: bool) -> dict[str, Any]:
        score = float(raw["score"])
        return {
            "task": self.game,
            "game_seed": self._game_seed,
            "split": self.split,
            "params": self.params,
            "instruction": self._instruction,
            "admissible_actions": sorted(raw["validActions"]),
            "look": raw.get("look", ""),
            "inventory": raw.get("inventory", ""),
            "score": 100.0 * score,
            "success": bool(raw["tasksuccess"]),
            "failure": bool(raw["taskfailure"]),
            "success_rule": SUCCESS_RULE,
            "moves": self._steps,
            "invalid_action": invalid,
            "max_steps": self.max_steps,
        }

    def _observe(self, obs: str, info: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        self._last_obs, self._last_info = obs, info
        obs, info["observation_truncated"] = clip_observation(obs, self.observation_space)
        return obs, info
