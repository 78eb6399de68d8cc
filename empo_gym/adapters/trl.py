"""Any empo-gym env as a TRL ``GRPOTrainer(environment_factory=...)`` environment.

TRL (1.x) calls ``environment_factory()`` for each concurrent rollout, calls ``reset(**row)``
with the dataset row (``prompt=...`` and any other columns) before generating, exposes every
public method of the instance's class except ``reset`` / ``get_reward`` as a tool, and scores a
finished rollout with ``get_reward()``. An empo-gym env fits none of that as is (its
``reset`` takes ``seed`` / ``options``; ``step``, ``close`` ... would become tools), so
:func:`environment_factory` builds a class per env whose only public methods are its actions:

* WebShop: ``search(query)`` and ``click(target)`` (the env's ``search[...]`` / ``click[...]``);
* ScienceWorld, OOD, Doors and any env without bracketed actions: ``act(action)``, free text.

Each tool returns the env's next observation; ``get_reward()`` is the env's score (its native
scale times ``reward_scale``: WebShop 0..1, ScienceWorld -1..1 by default). The task instance
is the row's ``seed`` column (:func:`task_dataset` writes one; a GRPO group repeats its row, so
its rollouts share the task); a row without one gets a seed derived from its prompt text.

Example:
    >>> import tempfile
    >>> factory = environment_factory(
    ...     "webshop", split="test", num_products=100, cache_dir=tempfile.mkdtemp()
    ... )
    >>> env = factory()
    >>> cls = type(env)
    >>> sorted(n for n in dir(cls) if not n.startswith("_") and callable(getattr(cls, n)))
    ['click', 'get_reward', 'reset', 'search']
    >>> env.reset(prompt=[{"role": "user", "content": "Shop."}], seed=0).split()[0]
    'WebShop'
    >>> env.click(target="buy now")[:61]  # not on the search page: a no-op, as in the env
    'Invalid action (nothing happened). WebShop [SEP] Instruction:'
    >>> env.get_reward(), env.done, env.steps
    (0.0, False, 1)
"""

from __future__ import annotations

import inspect
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium as gym

from empo_gym.registry import ActionTool, EnvInfo, env_names, env_profile, get_env_info

#: The free-text tool of envs whose actions are not ``verb[argument]``.
FREE_TEXT_TOOL = ActionTool(
    "act",
    "Take one action in the environment, written as free text (e.g. 'look around').",
    "action",
    "The action, e.g. 'open door to kitchen'.",
)
#: What the model is told in :func:`task_dataset`'s prompts (the env's first observation is
#: appended by ``reset``).
DEFAULT_PROMPT = (
    "Solve the task below by calling the tools; each call is one action in the environment "
    "and returns what you observe next. The task ends when the environment says so."
)
INVALID_PREFIX = "Invalid action (nothing happened). "


def _profile(env: str) -> EnvInfo:
    """The profile of a short name (``webshop``) or a Gymnasium id (``empo_gym/WebShop-v0``)."""
    for name in env_names():
        info = get_env_info(name)
        if env in (name, info.gym_id):
            return info
    if env in gym.registry:  # a user's own text env: free-text actions
        return env_profile(env)
    raise ValueError(
        f"unknown env {env!r}; expected a short name ({', '.join(env_names())}), an "
        "empo-gym Gymnasium id or a registered Gymnasium id"
    )


class TRLEnvironment:
    """One rollout's env as TRL expects it: ``reset``, ``get_reward`` and the action tools.

    Built by :func:`environment_factory` (a subclass per env adds the tools). Read-only
    ``score``, ``done`` and ``steps`` describe the episode (properties: never tools).

    Args:
        env: The Gymnasium env (an empo-gym text env, or any with the same ``info`` keys).
        reward_scale: ``get_reward()`` = ``info["score"] * reward_scale``.
    """

    def __init__(self, env: gym.Env, reward_scale: float = 0.01) -> None:
        self._env = env
        self._reward_scale = float(reward_scale)
        self._info: dict[str, Any] | None = None
        self._done = False
        self._steps = 0

    def reset(self, seed: int | None = None, prompt: Any = None, **row: Any) -> str:
        """Start the row's task instance and return its first observation (TRL appends it to
        the prompt's last message). Columns other than ``seed`` and ``prompt`` are ignored."""
        if seed is None:  # one prompt, one task instance (a GRPO group shares its row)
            seed = zlib.crc32(repr(prompt).encode("utf-8"))
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"the row's seed must be an int (the task instance), got {seed!r}")
        obs, info = self._env.reset(seed=seed)
        self._info, self._done, self._steps = info, False, 0
        instruction = str(info.get("instruction") or "")
        text = obs if instruction in obs else f"Task: {instruction}\n\n{obs}"
        return "\n\n" + text  # TRL appends it to the prompt's last message as is

    def __enter__(self) -> TRLEnvironment:
        return self

    def __exit__(self, *exc: object) -> None:
        # TRL never closes its environments; a user's own loop can (ScienceWorld: its JVM)
        self._env.close()

    def get_reward(self) -> float:
        """The env's score now (usually the end of the episode), times ``reward_scale``."""
        return self.score * self._reward_scale

    @property
    def score(self) -> float:
        """The env's score (native scale: WebShop 0..100, ScienceWorld -100..100)."""
        if self._info is None:
            raise RuntimeError("no episode yet: TRL calls reset(...) before generating")
        return float(self._info.get("score", 0.0))

    @property
    def done(self) -> bool:
        """Whether the episode ended (terminated or truncated)."""
        return self._done

    @property
    def steps(self) -> int:
        """Actions taken in this episode."""
        return self._steps

    def _act(self, action: str) -> str:
        """Take ``action``; the observation the model reads next (errors go back to it too)."""
        if self._info is None:
            raise RuntimeError("no episode yet: TRL calls reset(...) before generating")
        if self._done:
            raise ValueError(
                f"the episode is over (score {self.score:g}); no more actions can be taken"
            )
        obs, _, terminated, truncated, info = self._env.step(action)
        self._info, self._steps = info, self._steps + 1
        self._done = bool(terminated or truncated)
        text = (INVALID_PREFIX if info.get("invalid_action") else "") + obs
        if self._done:
            text += f"\n[episode over: score {self.score:g}]"
        return text


def _tool(spec: ActionTool) -> Callable[..., str]:
    """The method ``spec.verb(self, <spec.argument>: str) -> str`` that acts ``verb[arg]``
    (or the free-text action itself), documented for TRL's tool schema."""
    signature = inspect.Signature(
        [
            inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
            inspect.Parameter(
                spec.argument, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=str
            ),
        ],
        return_annotation=str,
    )
    free_text = spec is FREE_TEXT_TOOL

    def tool(*args: Any, **kwargs: Any) -> str:
        bound = signature.bind(*args, **kwargs)  # TypeError names a wrong or missing argument
        self, value = bound.arguments["self"], bound.arguments[spec.argument]
        if not isinstance(value, str):
            raise TypeError(f"{spec.verb}: {spec.argument} must be a string, got {value!r}")
        return self._act(value if free_text else f"{spec.verb}[{value}]")

    tool.__name__ = tool.__qualname__ = spec.verb
    tool.__signature__ = signature  # type: ignore[attr-defined]
    tool.__annotations__ = {spec.argument: str, "return": str}
    tool.__doc__ = f"{spec.summary}\n\nArgs:\n    {spec.argument}: {spec.argument_doc}\n"
    return tool


def tool_class(env: str) -> type[TRLEnvironment]:
    """The :class:`TRLEnvironment` subclass of ``env``: its actions as its only tools."""
    info = _profile(env)
    specs: Sequence[ActionTool] = info.action_tools or (FREE_TEXT_TOOL,)
    reserved = {"reset", "get_reward", "score", "done", "steps"}
    clash = [s.verb for s in specs if s.verb in reserved or s.verb.startswith("_")]
    if clash:
        raise ValueError(f"env {info.name!r}: action verb(s) {clash} clash with {sorted(reserved)}")
    # TRL logs the reward under the class name: rewards/WebShopTRLEnvironment/mean
    base = (info.gym_id or env).rsplit("/", 1)[-1].split("-v", 1)[0]
    name = "".join(ch for ch in base if ch.isalnum()) or "Text"
    return type(f"{name}TRLEnvironment", (TRLEnvironment,), {s.verb: _tool(s) for s in specs})


def environment_factory(
    env: str,
    *,
    split: str = "train",
    task: str | None = None,
    reward_scale: float = 0.01,
    **env_kwargs: Any,
) -> Callable[[], TRLEnvironment]:
    """What to pass as ``GRPOTrainer(environment_factory=...)``: each call makes a fresh env.

    Args:
        env: A short name (``webshop``, ``scienceworld``, ``ood``, ``doors``), an empo-gym
            Gymnasium id (``empo_gym/WebShop-v0``) or another registered Gymnasium id.
        split: The split to train on (the env's ``train`` by default).
        task: The env's task (ScienceWorld task, OOD transfer pair, Doors family).
        reward_scale: ``get_reward()`` = score times this (default: score / 100).
        **env_kwargs: Passed to the env (e.g. WebShop ``num_products``, ``max_steps``).

    Raises:
        ValueError: An unknown env, split or task (the message lists the valid ones).
    """
    info = _profile(env)
    if info.gym_id:
        kwargs = {**info.env_kwargs(task, split), **env_kwargs}
        gym_id = info.gym_id
    else:
        if task is not None:
            raise ValueError(f"env {env!r} has no registered tasks; drop task={task!r}")
        kwargs, gym_id = dict(env_kwargs), env
    cls = tool_class(env)

    def make() -> TRLEnvironment:
        return cls(gym.make(gym_id, **kwargs), reward_scale=reward_scale)

    make.__doc__ = f"A fresh {cls.__name__} ({gym_id}, {kwargs})."
    return make


def task_dataset(
    env: str,
    size: int,
    *,
    first_seed: int = 0,
    prompt: str = DEFAULT_PROMPT,
    extra: Mapping[str, Any] | None = None,
) -> Any:
    """A ``datasets.Dataset`` of ``size`` rows ``{"prompt": [user message], "seed": s}``:
    seeds ``first_seed ..`` enumerate the split's task instances (WebShop: its goals).

    ``env`` only checks the name (the prompt is the same for every env; ``reset`` appends the
    task's first observation); ``extra`` adds constant columns.
    """
    from datasets import Dataset

    _profile(env)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive int (rows = task instances), got {size!r}")
    rows = [
        {"prompt": [{"role": "user", "content": prompt}], "seed": first_seed + i, **(extra or {})}
        for i in range(size)
    ]
    return Dataset.from_list(rows)
