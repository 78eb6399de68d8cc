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

import json
import os
from typing import Any

import gymnasium as gym
import numpy as np
from py4j.protocol import Py4JError

from empo_gym.scienceworld.jvm import DEFAULT_MAX_HEAP_MB, ScienceWorldJVM
from empo_gym.scienceworld.tasks import (
    TASK_NAMES,
    default_max_steps,
    resolve_split,
    resolve_task,
)
from empo_gym.spaces import MAX_ACTION_CHARS, MAX_OBSERVATION_CHARS, UnicodeText

#: The EMPO² paper's success rule: the episode ended (task completed) with a score above 70.
SUCCESS_RULE = "scienceworld:terminated_and_score>70"
_UNKNOWN_ACTION_PREFIX = "No known action matches that input"
#: Longest action forwarded to the simulator; longer input is an invalid action (its parser
#: gains nothing from it and the JVM round trip would grow with it).
MAX_SIMULATOR_ACTION_CHARS = 1_000


def _heap_from_env() -> int | None:
    raw = os.environ.get("EMPO_GYM_JVM_HEAP_MB")
    if raw is None:
        return DEFAULT_MAX_HEAP_MB
    if raw.strip().lower() in {"", "none", "default"}:
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(
            f"EMPO_GYM_JVM_HEAP_MB must be an integer number of MB or 'default', got {raw!r}"
        ) from exc


class ScienceWorldEnv(gym.Env[str, str]):
    """ScienceWorld with the Gymnasium API: text in, text out, 5-tuple ``step``.

    Reward is the score delta / 100. ``terminated`` is set when the task is completed or failed
    (score < 0); ``truncated`` after ``max_steps`` actions. ``info`` carries ``admissible_actions``,
    ``instruction`` (task description), ``score`` (-100..100), ``success`` (the paper's rule,
    named in ``success_rule``), ``goal_progress``, ``moves``, ``look``, ``inventory``, ``task``,
    ``variation`` and ``invalid_action``.

    ``reset(seed=s)`` draws the variation from the split with the env's seeded RNG, so the same
    seed gives the same variation and the same first observation (GRPO groups rely on it).
    ``options={"task": ..., "variation": ...}`` picks exactly.

    Args:
        task: Task name (``boil``) or id (``1-1``); ``None`` draws a task uniformly per reset.
        split: Variations to draw from: ``train``, ``dev`` or ``test``.
        simplification: ScienceWorld simplification string (the paper uses ``easy``).
        max_steps: Actions per episode before truncation; ``None`` uses the paper's limit for
            the task (30; chemistry-mix 60; measure-melting-point 120).
        oracle_info: Generate the gold path and put it in ``info["oracle"]`` at reset.
        jvm_max_heap_mb: JVM heap cap in MB (``None``: the JVM default). Default 256, or
            ``EMPO_GYM_JVM_HEAP_MB``.
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
        self.jvm_max_heap_mb = _heap_from_env() if jvm_max_heap_mb == "auto" else jvm_max_heap_mb
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.render_mode = render_mode

        self.observation_space = UnicodeText(MAX_OBSERVATION_CHARS)
        self.action_space = UnicodeText(MAX_ACTION_CHARS)

        self._sim: ScienceWorldJVM | None = None
        self._variations: dict[tuple[str, str], list[int]] = {}
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
        """The ScienceWorld JVM, started on first use."""
        if self._sim is None or not self._sim.alive:
            self._sim = ScienceWorldJVM(max_heap_mb=self.jvm_max_heap_mb)
        return self._sim

    def variations(self, task: str | None = None, split: str | None = None) -> list[int]:
        """The variation indices of ``task`` in ``split`` (cached after the first query)."""
        name = resolve_task(task or self.task or TASK_NAMES[0])
        split = resolve_split(split or self.split)
        key = (name, split)
        if key not in self._variations:
            sim = self.simulator
            sim.load(name, 0, self.simplification, False)
            getter = {
                "train": sim.get_variations_train,
                "dev": sim.get_variations_dev,
                "test": sim.get_variations_test,
            }[split]
            self._variations[key] = sorted(int(v) for v in getter())
        return self._variations[key]

    # ------------------------------------------------------------------ gym API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Load a task variation and return its first observation."""
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
            max_var = self.simulator.get_max_variations(task)
            if not isinstance(variation, (int, np.integer)) or not 0 <= variation < max_var:
                raise ValueError(
                    f"variation must be an int in [0, {max_var}) for task {task!r}, "
                    f"got {variation!r}"
                )
            variation = int(variation)
        else:
            variation = variations[int(self.np_random.integers(len(variations)))]

        sim = self.simulator
        sim.load(task, variation, self.simplification, self.oracle_info)
        sim.server.reset()
        self._current_task, self._variation = task, variation
        self._last_info = {}
        # ScienceWorld's own reset() also answers with "look around" (a free action)
        obs, score, _completed, raw_info = self._simulate(sim, "look around")
        self._steps, self._score, self._done = 0, score, False
        info = self._make_info(raw_info, invalid=False)
        if self.oracle_info:
            info["oracle"] = {"gold_actions": list(sim.get_gold_action_sequence())}
        self._last_obs, self._last_info = obs, info
        return self._clip(obs), info

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Send one action; reward = score delta / 100."""
        if self._current_task is None:
            raise RuntimeError("call reset() before step()")
        if self._done:
            raise RuntimeError(
                "the episode has ended (terminated or truncated); call reset() before step()"
            )
        text = action if isinstance(action, str) else str(action)
        text = text.replace("\n", " ").strip()
        self._steps += 1
        sim = self.simulator
        if not text or len(text) > MAX_SIMULATOR_ACTION_CHARS:
            obs, reward, terminated = self._noop_observation(text), 0.0, False
            info = dict(self._last_info, invalid_action=True, moves=self._steps)
        else:
            try:
                obs, score, completed, raw_info = self._simulate(sim, text)
            except Py4JError as exc:  # the simulator's parser rejected the input outright
                obs = f"The simulator could not process that action ({type(exc).__name__})."
                reward, terminated = 0.0, False
                info = dict(self._last_info, invalid_action=True, moves=self._steps)
            else:
                reward = (score - self._score) / 100.0
                self._score = score
                terminated = bool(completed) or score < 0
                invalid = obs.startswith(_UNKNOWN_ACTION_PREFIX)
                info = self._make_info(raw_info, invalid=invalid)
        truncated = not terminated and self._steps >= self.max_steps
        info["success"] = bool(terminated and self._score > 70)
        self._done = terminated or truncated
        self._last_obs, self._last_info = obs, info
        return self._clip(obs), float(reward), terminated, truncated, info

    def render(self) -> str | None:
        """Return the last observation as text (``render_mode="ansi"``)."""
        if self.render_mode == "ansi":
            return self._last_obs
        return None

    def close(self) -> None:
        """Stop the JVM (it is restarted lazily if the env is used again)."""
        if self._sim is not None:
            self._sim.close()
            self._sim = None

    # ------------------------------------------------------------------ helpers
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

    def _make_info(self, raw: dict[str, Any], *, invalid: bool) -> dict[str, Any]:
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
            "goal_progress": self.simulator.get_goal_progress(),
            "moves": self._steps,
            "invalid_action": invalid,
            "max_steps": self.max_steps,
        }

    @staticmethod
    def _noop_observation(text: str) -> str:
        if not text:
            return "No action was given. Choose one of the admissible actions."
        return (
            f"That action is too long ({len(text)} characters; at most "
            f"{MAX_SIMULATOR_ACTION_CHARS}). Choose one of the admissible actions."
        )

    @staticmethod
    def _clip(obs: str) -> str:
        return obs if len(obs) <= MAX_OBSERVATION_CHARS else obs[:MAX_OBSERVATION_CHARS]
