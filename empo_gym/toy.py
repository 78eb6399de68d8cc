"""One tiny deterministic text env for tests, doctests and examples (not a benchmark env).

:class:`ToyTextEnv` plays one of three games, picked by ``game``; every game follows the env
conventions (Gymnasium 5-tuple, the info keys) and runs in microseconds, with no simulator:

- ``"chest"`` (default): hall -> ``go north`` -> a vault with a key and a chest; ``take key``
  then ``open chest`` wins. Score 20 / 50 / 100, reward = score gain / 100; info carries the
  reset option ``variation``; unknown actions are no-ops flagged ``invalid_action``.
- ``"guess"``: say the secret word (one of :data:`GUESS_WORDS`, drawn from the reset seed);
  reward 1 and score 100 on success. :func:`register_guess_env` makes it the harness / CLI env
  ``guess`` (splits train / test).
- ``"echo"``: every episode lasts ``options["length"]`` steps (default ``max_steps``) and
  terminates; each observation echoes the action; the first observation depends on the reset
  seed only; reward 1 for each ``pick up key`` (actions: :data:`ECHO_ACTIONS`).

Options shared by every game: ``max_steps``, ``unicode`` (non-ASCII text in observations, for
codec tests), ``with_tips`` (observations in the memory wrapper's dict format), ``oracle_info``,
``split``, ``task``. The env records its ``resets`` (seed, options) and ``actions``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from empo_gym.registry import EnvInfo, register_env
from empo_gym.spaces import UnicodeText

GAMES = ("chest", "guess", "echo")
"""The games :class:`ToyTextEnv` plays."""

GUESS_WORDS = ("alpha", "beta", "gamma", "delta")
"""The words of the ``guess`` game (its actions are ``say <word>``)."""

ECHO_ACTIONS = ("go north", "go south", "pick up key", "look around")
"""The admissible actions of the ``echo`` game."""

GUESS_ENV = EnvInfo(
    name="guess",
    gym_id="empo_gym_toy/Guess-v0",
    description="toy env (tests): say the secret word",
    splits=("train", "test"),
    default_split="test",
    task_kwarg=None,
)
"""The ``guess`` game's profile for the harness and the CLI (see :func:`register_guess_env`)."""

_ROOMS = {
    "hall": "You are in a hall. Exits: north.",
    "vault": "You are in a vault. There is a key and a chest. Exits: south.",
}
_UNICODE = " — ça brûle, 你好 ✓"
# per game: default max_steps, observation chars, action chars, default info["task"]
_SETTINGS = {
    "chest": (8, 2_000, 200, "toy-chest"),
    "guess": (3, 1_000, 1_000, "guess"),
    "echo": (3, 1_000, 200, "toy"),
}


class ToyTextEnv(gym.Env[Any, str]):
    """A tiny deterministic text env with the info keys the conventions require.

    Args:
        game: ``"chest"``, ``"guess"`` or ``"echo"`` (see the module docstring).
        max_steps: Step limit: truncation for chest (default 8) and guess (default 3), the
            episode length for echo (default 3; ``reset(options={"length": n})`` overrides).
        unicode: Append non-ASCII text to every observation (codec tests).
        with_tips: Observations are ``{"observation": text, "tips": [...]}`` (two fixed tips),
            as a memory wrapper returns them.
        oracle_info: Reset's info carries ``info["oracle"] = {"gold_actions": [...]}``.
        split: The split name (the guess game shows it in its first observation).
        task: ``info["task"]`` (default per game: ``toy-chest``, ``guess``, ``toy``).

    Example:
        >>> env = ToyTextEnv()
        >>> env.reset(seed=0)[0]
        'You are in a hall. Exits: north.'
        >>> env.step("go north")[1:3]
        (0.2, False)
        >>> ToyTextEnv(game="echo").reset(seed=1)[1]["instruction"]
        'Find the key (room 1).'
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        game: str = "chest",
        *,
        max_steps: int | None = None,
        unicode: bool = False,
        with_tips: bool = False,
        oracle_info: bool = False,
        split: str = "test",
        task: str | None = None,
    ) -> None:
        if game not in GAMES:
            raise ValueError(f"game={game!r}; expected one of {list(GAMES)}")
        default_steps, obs_chars, action_chars, default_task = _SETTINGS[game]
        self.observation_space = UnicodeText(obs_chars)
        self.action_space = UnicodeText(action_chars)
        self.game = game
        self.max_steps = default_steps if max_steps is None else max_steps
        self.unicode, self.with_tips, self.oracle_info = unicode, with_tips, oracle_info
        self.split = split
        self.task = default_task if task is None else task
        self.resets: list[tuple[int | None, dict[str, Any] | None]] = []
        self.actions: list[str] = []
        self._seed: int | None = None
        self._steps, self._score, self._variation, self._length = 0, 0.0, 0, self.max_steps
        self._room, self._key, self._secret = "hall", False, GUESS_WORDS[0]

    def _obs(self, text: str) -> Any:
        """The observation for ``text``: with the unicode suffix and in the tips format if set."""
        text += _UNICODE if self.unicode else ""
        if self.with_tips:
            return {"observation": text, "tips": [f"tip for {self._seed}", "look around first"]}
        return text

    def _info(self) -> dict[str, Any]:
        """The game's info dict (its keys and their order are what each game always had)."""
        if self.game == "chest":
            acts = ["go north"] if self._room == "hall" else ["go south", "take key", "open chest"]
            return {
                "admissible_actions": acts,
                "task": self.task,
                "variation": self._variation,
                "score": float(self._score),
                "success": self._score >= 100,
                "success_rule": "toy:score>=100",
                "instruction": "Open the chest.",
                "invalid_action": False,
            }
        if self.game == "guess":
            return {
                "admissible_actions": [f"say {w}" for w in GUESS_WORDS],
                "task": self.task,
                "score": float(self._score),
                "success": self._score >= 100,
                "success_rule": "guess:said_the_secret",
                "instruction": "say the secret word",
                "invalid_action": False,
            }
        return {
            "admissible_actions": list(ECHO_ACTIONS),
            "task": self.task,
            "instruction": f"Find the key (room {self._seed}).",
            "score": float(self._score),
            "success": self._score > 0,
            "success_rule": "picked up the key",
        }

    def _gold_actions(self) -> list[str]:
        """The actions that win the current episode (``info["oracle"]``)."""
        if self.game == "chest":
            return ["go north", "take key", "open chest"]
        if self.game == "guess":
            return [f"say {self._secret}"]
        return ["pick up key"] * self._length

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Start an episode (options: chest ``variation``, echo ``length``; see the class)."""
        super().reset(seed=seed)
        self.resets.append((seed, options))
        self._seed, self._steps, self._score = seed, 0, 0.0
        if self.game == "chest":
            unknown = set(options or {}) - {"variation"}
            if unknown:
                raise ValueError(f"unknown reset option(s) {sorted(unknown)}; expected 'variation'")
            self._variation = int((options or {}).get("variation", 0))
            self._room, self._key = "hall", False
            text = _ROOMS["hall"]
        elif self.game == "guess":
            self._secret = GUESS_WORDS[int(self.np_random.integers(len(GUESS_WORDS)))]
            text = f"guess the word ({self.split})"
        else:
            self._length = int((options or {}).get("length", self.max_steps))
            text = f"You are in room {seed}. It is {self.np_random.integers(100)} C."
        info = self._info()
        if self.oracle_info:
            info["oracle"] = {"gold_actions": self._gold_actions()}
        return self._obs(text), info

    def step(self, action: str) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Apply a text action (never raises; chest and guess flag unknown ones invalid)."""
        self.actions.append(action)
        self._steps += 1
        if self.game == "chest":
            return self._step_chest(action)
        if self.game == "guess":
            win = action == f"say {self._secret}"
            self._score = 100.0 if win else 0.0
            info = self._info()
            info["invalid_action"] = not action.startswith("say ")
            truncated = not win and self._steps >= self.max_steps
            return self._obs("right!" if win else "wrong"), float(win), win, truncated, info
        reward = 1.0 if action == "pick up key" else 0.0
        self._score += reward
        terminated = self._steps >= self._length
        return (
            self._obs(f"Step {self._steps}: you did {action}."),
            reward,
            terminated,
            False,
            (self._info()),
        )

    def _step_chest(self, action: str) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """One step of the chest game."""
        before, extra, invalid = self._score, "", False
        if action == "go north" and self._room == "hall":
            self._room = "vault"
            self._score = max(self._score, 20)
        elif action == "go south" and self._room == "vault":
            self._room = "hall"
        elif action == "take key" and self._room == "vault" and not self._key:
            self._key, self._score = True, 50
        elif action == "open chest" and self._room == "vault":
            if self._key:
                self._score = 100
            else:
                extra = " The chest is locked."
        else:
            invalid, extra = True, " Nothing happens."
        terminated = self._score >= 100
        truncated = not terminated and self._steps >= self.max_steps
        info = self._info()
        info["invalid_action"] = invalid
        text = _ROOMS[self._room] + (" You hold a key." if self._key else "") + extra
        return self._obs(text), (self._score - before) / 100.0, terminated, truncated, info


def register_guess_env() -> EnvInfo:
    """Make the guess game the harness / CLI env ``guess`` (idempotent; tests and examples).

    Example:
        >>> from empo_gym.registry import get_env_info
        >>> register_guess_env().name, get_env_info("guess").splits
        ('guess', ('train', 'test'))
    """
    register_env(GUESS_ENV, overwrite=True)
    if GUESS_ENV.gym_id not in gym.registry:
        gym.register(GUESS_ENV.gym_id, entry_point=ToyTextEnv, kwargs={"game": "guess"})
    return GUESS_ENV
