"""ScienceWorld as a Gymnasium environment (``empo_gym/ScienceWorld-v0``).

Example:
    >>> import gymnasium as gym
    >>> import empo_gym
    >>> env = gym.make("empo_gym/ScienceWorld-v0", task="boil")  # the JVM starts lazily
    >>> env.unwrapped.task
    'boil'
    >>> env.unwrapped.max_steps
    30
    >>> env.close()
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import numpy as np
from py4j.protocol import Py4JError

from empo_gym.jvm import heap_from_env, is_jvm_failure, jvm_death_message, refused_action
from empo_gym.scienceworld.jvm import (
    DEFAULT_MAX_HEAP_MB,
    JVMSupply,
    ScienceWorldJVM,
    ScienceWorldJVMError,
    jvm_options,
)
from empo_gym.scienceworld.tasks import (
    TASK_NAMES,
    default_max_steps,
    resolve_split,
    resolve_task,
    split_of_variation,
    split_variations,
)
from empo_gym.spaces import (
    MAX_ACTION_CHARS,
    MAX_OBSERVATION_CHARS,
    UnicodeText,
    clip_observation,
)

#: The EMPO² paper's success rule: the episode ended (task completed) with a score above 70.
SUCCESS_RULE = "scienceworld:terminated_and_score>70"
_UNKNOWN_ACTION_PREFIX = "No known action matches that input"


class ScienceWorldEnv(gym.Env[str, str]):
    """ScienceWorld with the Gymnasium API: text in, text out, 5-tuple ``step``.

    Reward is the score delta / 100. ``terminated`` is set when the task is completed or failed
    (score < 0); ``truncated`` after ``max_steps`` actions. ``info`` carries ``admissible_actions``,
    ``instruction`` (task description), ``score`` (-100..100), ``success`` (the paper's rule,
    named in ``success_rule``), ``goal_progress``, ``moves``, ``look``, ``inventory``, ``task``,
    ``variation``, ``split``, ``invalid_action`` and ``observation_truncated``.

    ``reset(seed=s)`` draws the variation from the split with the env's seeded RNG and loads it
    into a JVM that has never run an episode, so the same seed gives the same first observation,
    admissible actions and dynamics, in this env or a fresh one (GRPO groups rely on it). The
    next JVM starts in the background while the episode runs. ``options={"task": ...,
    "variation": ...}`` picks exactly (the variation must belong to the env's split).

    An action with unencodable code points (lone surrogates such as ``"\\udcff"``) is a no-op
    flagged ``invalid_action``. A JVM that dies mid-episode raises
    :class:`~empo_gym.scienceworld.jvm.ScienceWorldJVMError`; the next ``reset`` recovers.

    Args:
        task: Task name (``boil``) or id (``1-1``); ``None`` draws a task uniformly per reset.
        split: Variations to draw from: ``train``, ``dev`` or ``test``.
        simplification: ScienceWorld simplification string (the paper uses ``easy``).
        max_steps: Actions per episode before truncation; ``None`` uses the paper's limit for
            the task (30; chemistry-mix 60; measure-melting-point 120).
        oracle_info: Generate the gold path and put it in ``info["oracle"]`` at reset.
        jvm_max_heap_mb: JVM heap cap in MB (``None``: the JVM default; at least
            :data:`~empo_gym.scienceworld.jvm.MIN_HEAP_MB`). Default 256, or
            ``EMPO_GYM_JVM_HEAP_MB``.
        reuse_jvm: Run every episode in one JVM (no spare JVM process, a slightly faster
            reset). NOT reproducible: the JVM's history changes later episodes of the same seed
            (other first observations, action names and dynamics on some tasks).
        render_mode: ``None`` or ``"ansi"``.
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(
        self,
        task: str | None = None,
        split: str = "train",
        simplification: str = "easy",
        max_steps: int | None = None,
        oracle_info: bool = False,
        jvm_max_heap_mb: int | None | str = "auto",
        reuse_jvm: bool = False,
        render_mode: str | None = None,
    ):
        self.task = resolve_task(task) if task is not None else None
        self.split = resolve_split(split)
        if not isinstance(simplification, str):
            raise TypeError(f"simplification must be a str like 'easy', got {simplification!r}")
        self.simplification = simplification
        if max_steps is not None and (not isinstance(max_steps, int) or max_steps < 1):
            raise ValueError(f"max_steps must be a positive int or None, got {max_steps!r}")
        self._max_steps_arg = max_steps
        self.oracle_info = bool(oracle_info)
        if jvm_max_heap_mb == "auto":
            jvm_max_heap_mb = heap_from_env(DEFAULT_MAX_HEAP_MB)
        self.jvm_max_heap_mb = jvm_max_heap_mb
        jvm_options(self.jvm_max_heap_mb)  # a bad heap fails here, not at the first reset
        if not isinstance(reuse_jvm, bool):
            raise TypeError(f"reuse_jvm must be a bool, got {reuse_jvm!r}")
        self.reuse_jvm = reuse_jvm
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.render_mode = render_mode

        self.observation_space = UnicodeText(MAX_OBSERVATION_CHARS)
        self.action_space = UnicodeText(MAX_ACTION_CHARS)

        self._sim: ScienceWorldJVM | None = None
        self._supply: JVMSupply | None = None
        self._clear_episode()

    def _clear_episode(self) -> None:
        self._current_task: str | None = None
        self._variation: int | None = None
        self._steps = 0
        self._score = 0
        self._done = False
        self._last_obs = ""
        self._last_info: dict[str, Any] = {}

    # ------------------------------------------------------------------ properties
    @property
    def max_steps(self) -> int:
        """The step limit of the current (or configured) task."""
        if self._max_steps_arg is not None:
            return self._max_steps_arg
        task = self._current_task or self.task
        return default_max_steps(task) if task is not None else 30

    @property
    def simulator(self) -> ScienceWorldJVM:
        """The current episode's ScienceWorld JVM (one that has run nothing before the first
        reset)."""
        if self._sim is None:
            self._sim = self._new_jvm()
        return self._sim

    def _new_jvm(self) -> ScienceWorldJVM:
        if self.reuse_jvm:
            return ScienceWorldJVM(max_heap_mb=self.jvm_max_heap_mb)
        if self._supply is None:
            self._supply = JVMSupply(self.jvm_max_heap_mb)
        return self._supply.take()

    def _episode_jvm(self) -> ScienceWorldJVM:
        """The JVM for a new episode: a fresh one, or (``reuse_jvm``) the live current one."""
        sim = self._sim
        if sim is not None and not self.reuse_jvm:
            self._sim = None
            JVMSupply.retire(sim)
        elif sim is not None and not sim.alive:
            self._sim = None
            sim.close()
        return self.simulator

    def variations(self, task: str | None = None, split: str | None = None) -> list[int]:
        """The variation indices of ``task`` in ``split`` (no JVM needed)."""
        return split_variations(task or self.task or TASK_NAMES[0], split or self.split)

    # ------------------------------------------------------------------ gym API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Load a task variation into a fresh JVM and return its first observation."""
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - {"task", "variation"}
        if unknown:
            raise ValueError(
                f"unknown reset option(s) {sorted(unknown)}; expected 'task' and/or 'variation'"
            )
        if options.get("task") is not None:
            task = resolve_task(options["task"])
        elif self.task is not None:
            task = self.task
        else:
            task = TASK_NAMES[int(self.np_random.integers(len(TASK_NAMES)))]
        variations = self.variations(task, self.split)
        if options.get("variation") is not None:
            variation = options["variation"]
            if isinstance(variation, np.integer):
                variation = int(variation)
            true_split = split_of_variation(task, variation)
            if true_split != self.split:
                raise ValueError(
                    f"variation {variation} of task {task!r} belongs to split {true_split!r}, "
                    f"but this env draws from split {self.split!r}; pass a variation in "
                    f"[{variations[0]}, {variations[-1]}] or make the env with "
                    f"split={true_split!r}"
                )
        else:
            variation = variations[int(self.np_random.integers(len(variations)))]

        self._clear_episode()
        sim = self._episode_jvm()
        with self._jvm_guard(sim, "reset"):
            # load() builds the initial state; the package's reset() would load it again and,
            # with oracle_info, generate the gold path a second time
            sim.load(task, variation, self.simplification, self.oracle_info)
            self._current_task, self._variation = task, variation
            # ScienceWorld's own reset() also answers with "look around" (a free action)
            obs, score, _completed, raw_info = self._simulate(sim, "look around")
            info = self._make_info(sim, raw_info, invalid=False)
            if self.oracle_info:
                info["oracle"] = {"gold_actions": list(sim.server.getGoldActionSequence())}
        self._steps, self._score, self._done = 0, score, False
        return self._observe(obs, info)

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Send one action; reward = score delta / 100."""
        if self._current_task is None:
            raise RuntimeError("call reset() before step()")
        if self._done:
            raise RuntimeError(
                "the episode has ended (terminated or truncated); call reset() before step()"
            )
        sim = self.simulator
        text = action if isinstance(action, str) else str(action)
        text = text.replace("\n", " ").strip()
        self._steps += 1
        reward, terminated = 0.0, False
        refused = refused_action(text)
        if refused is not None:
            obs = refused
            info = dict(self._last_info, invalid_action=True, moves=self._steps)
        else:
            with self._jvm_guard(sim, f"step {text[:80]!r}"):
                try:
                    obs, score, completed, raw_info = self._simulate(sim, text)
                except Py4JError as exc:
                    if is_jvm_failure(exc):
                        raise  # the guard names the cause
                    # the simulator's parser rejected the input outright
                    obs = f"The simulator could not process that action ({type(exc).__name__})."
                    info = dict(self._last_info, invalid_action=True, moves=self._steps)
                else:
                    reward = (score - self._score) / 100.0
                    self._score = score
                    terminated = bool(completed) or score < 0
                    invalid = obs.startswith(_UNKNOWN_ACTION_PREFIX)
                    info = self._make_info(sim, raw_info, invalid=invalid)
        truncated = not terminated and self._steps >= self.max_steps
        info["success"] = bool(terminated and self._score > 70)
        self._done = terminated or truncated
        obs, info = self._observe(obs, info)
        return obs, float(reward), terminated, truncated, info

    def render(self) -> str | None:
        """Return the last observation as text (``render_mode="ansi"``)."""
        if self.render_mode == "ansi":
            return self._last_obs
        return None

    def close(self) -> None:
        """Stop the JVMs (a new one is started if the env is used again)."""
        if self._sim is not None:
            self._sim.close()
            self._sim = None
        if self._supply is not None:
            self._supply.close()
            self._supply = None

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the configuration and RNG; the JVMs and the episode stay behind (call
        ``reset()`` on the copy)."""
        state = dict(self.__dict__)
        state.update(_sim=None, _supply=None, _current_task=None, _variation=None, _done=False)
        state.update(_steps=0, _last_obs="", _last_info={})
        return state

    # ------------------------------------------------------------------ helpers
    @contextlib.contextmanager
    def _jvm_guard(self, sim: ScienceWorldJVM, doing: str) -> Iterator[None]:
        """Turn a dead or failing JVM into one ScienceWorldJVMError naming the cause."""
        if not sim.alive:
            raise self._jvm_error(sim, doing, None)
        try:
            yield
        except Py4JError as exc:
            if not is_jvm_failure(exc):
                raise
            raise self._jvm_error(sim, doing, exc) from exc

    def _jvm_error(
        self, sim: ScienceWorldJVM, doing: str, exc: BaseException | None
    ) -> ScienceWorldJVMError:
        message = jvm_death_message(sim, "ScienceWorld", doing, exc, self.jvm_max_heap_mb)
        self._done = True
        self._current_task = None
        return ScienceWorldJVMError(message)

    def _simulate(self, sim: ScienceWorldJVM, text: str) -> tuple[str, int, bool, dict[str, Any]]:
        # The package's own step() also fetches the task description and move count on every
        # call (constant, or tracked here) and pulls the admissible actions through py4j one
        # element per round trip (~1000 of them in a kitchen); one JSON string is one round
        # trip. This keeps the wrapper at or below the raw package's cost per step
        # (`empo-gym bench scienceworld`).
        server = sim.server
        obs = server.step(text)
        score = int(round(100 * server.getScore()))
        completed = bool(server.getCompleted())
        valid = json.loads(server.getValidActionObjectCombinationsJSON())["validActions"]
        raw_info = {
            "score": score,
            "taskDesc": self._last_info.get("instruction") or sim.taskdescription(),
            "valid": sorted(v["action"] for v in valid),  # the package returns them sorted
            "look": server.freeActionLook(),
            "inv": server.freeActionInventory(),
        }
        return obs, score, completed, raw_info

    def _make_info(
        self, sim: ScienceWorldJVM, raw: dict[str, Any], *, invalid: bool
    ) -> dict[str, Any]:
        score = int(raw["score"])
        return {
            "task": self._current_task,
            "variation": self._variation,
            "split": self.split,
            "instruction": raw["taskDesc"],
            "admissible_actions": list(raw["valid"]),
            "look": raw["look"],
            "inventory": raw["inv"],
            "score": float(score),
            "success": False,
            "success_rule": SUCCESS_RULE,
            "goal_progress": sim.get_goal_progress(),
            "moves": self._steps,
            "invalid_action": invalid,
            "max_steps": self.max_steps,
        }

    def _observe(self, obs: str, info: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        self._last_obs, self._last_info = obs, info
        obs, info["observation_truncated"] = clip_observation(obs, self.observation_space)
        return obs, info
