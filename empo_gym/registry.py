"""Env profiles: everything empo-gym knows about an env family, under its short name.

One :class:`EnvInfo` per env (``scienceworld``, ``webshop``, ``ood``, or one you register) holds
what the CLI and harness need (Gymnasium id, splits, tasks) and what LLM agents need (prompt
style, answer format, token budget), so no other module keys constants by env-name strings. A
profile holds facts about the env only; the trainers' presets per env live with the trainers
(``empo_gym.agents.training.presets``). The values are plain data: this module imports no agent
code.

Example:
    >>> {"ood", "scienceworld", "webshop"} <= set(env_names())
    True
    >>> get_env_info("scienceworld").gym_id
    'empo_gym/ScienceWorld-v0'
    >>> get_env_info("sciworld")
    Traceback (most recent call last):
    ...
    ValueError: unknown env 'sciworld'; expected one of: ...
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: Prompt styles of ``empo_gym.agents.llm.prompts`` (what an env's profile may name).
PROMPT_STYLES = ("scienceworld", "webshop", "webshop-menu", "generic")
#: Answer formats of ``empo_gym.agents.llm.parsing``: ``plain`` = the whole answer is the action,
#: ``tagged`` = reasoning, then the action inside ``<action>...</action>``, ``index`` = the
#: number of an action in the prompt's numbered menu.
ACTION_FORMATS = ("plain", "tagged", "index")


def _scienceworld_tasks() -> list[str]:
    from empo_gym.scienceworld.tasks import TASK_NAMES

    return list(TASK_NAMES)


def _scienceworld_task(task: str) -> str:
    from empo_gym.scienceworld.tasks import resolve_task

    return resolve_task(task)


def _doors_families() -> list[str]:
    from empo_gym.doors import FAMILIES

    return list(FAMILIES)


def _ood_tasks() -> list[str]:
    from empo_gym.ood import TRANSFERS

    return list(TRANSFERS)


@dataclass(frozen=True)
class ActionTool:
    """One bracketed action of an env, ``verb[argument]``, as a tool a function-calling LLM calls
    (``empo_gym.adapters.trl``): the tool ``verb(argument)`` takes the action."""

    verb: str
    """The action's verb and the tool's name (``search``)."""
    summary: str
    """What the action does (the tool's description)."""
    argument: str
    """The tool's one parameter (``query``)."""
    argument_doc: str
    """What to pass as the argument."""


@dataclass(frozen=True)
class EnvInfo:
    """The profile of an env family: the one place that knows the facts of an env."""

    name: str
    """Short name (``empo-gym run --env NAME``)."""
    gym_id: str
    """Registered Gymnasium id."""
    description: str
    """One line for ``empo-gym envs``."""
    splits: tuple[str, ...]
    """Splits the env's ``split`` kwarg accepts."""
    default_split: str
    """Split evaluated by default."""
    tasks: Callable[[], list[str]] = field(default=lambda: [])
    """Canonical task names (called lazily: listing ScienceWorld's needs its package)."""
    task_kwarg: str | None = "task"
    """Constructor kwarg that receives ``--task`` (None: the env has no tasks)."""
    resolve_task: Callable[[str], str] | None = None
    """Alias -> canonical task name (ScienceWorld ids like ``1-1``); raises ValueError."""
    prompt_style: str = "generic"
    """Prompt an LLM agent builds (one of :data:`PROMPT_STYLES`)."""
    action_format: str = "plain"
    """How an LLM's answer is read (one of :data:`ACTION_FORMATS`)."""
    max_action_tokens: int = 32
    """Tokens an LLM may generate per step by default."""
    action_tools: tuple[ActionTool, ...] = ()
    """The env's actions as tools when they are ``verb[argument]`` (empty: free-text actions,
    one tool ``act(action)``)."""

    def __post_init__(self) -> None:
        if self.prompt_style not in PROMPT_STYLES:
            raise ValueError(
                f"env {self.name!r}: prompt_style={self.prompt_style!r}; "
                f"expected one of: {', '.join(PROMPT_STYLES)}"
            )
        if self.action_format not in ACTION_FORMATS:
            raise ValueError(
                f"env {self.name!r}: action_format={self.action_format!r}; "
                f"expected one of: {', '.join(ACTION_FORMATS)}"
            )
        if self.default_split not in self.splits:
            raise ValueError(
                f"env {self.name!r}: default_split={self.default_split!r}; "
                f"expected one of its splits: {', '.join(self.splits)}"
            )

    def env_kwargs(self, task: str | None, split: str) -> dict[str, Any]:
        """Constructor kwargs for a task and split, validated."""
        if split not in self.splits:
            raise ValueError(
                f"unknown split {split!r} for env {self.name!r}; "
                f"expected one of: {', '.join(self.splits)}"
            )
        kwargs: dict[str, Any] = {"split": split}
        if task is not None:
            if self.task_kwarg is None:
                raise ValueError(f"env {self.name!r} has no tasks; drop --task {task!r}")
            valid = self.tasks()
            try:
                canonical = self.canonical_task(task)
            except ValueError:
                canonical = None
            if canonical not in valid:
                raise ValueError(
                    f"unknown task {task!r} for env {self.name!r}; "
                    f"expected one of: {', '.join(valid)}"
                )
            kwargs[self.task_kwarg] = canonical
        return kwargs

    def canonical_task(self, task: str) -> str:
        """The task's canonical name (ScienceWorld ids like ``1-1`` become ``boil``)."""
        return self.resolve_task(task) if self.resolve_task is not None else task


#: The profile of an env nobody registered (a user's own env driven by an LLM agent).
GENERIC = EnvInfo(
    name="generic",
    gym_id="",
    description="any text env (plain prompt with the admissible actions, plain answers)",
    splits=("train", "test"),
    default_split="test",
    task_kwarg=None,
)

_ENVS: dict[str, EnvInfo] = {
    "scienceworld": EnvInfo(
        name="scienceworld",
        gym_id="empo_gym/ScienceWorld-v0",
        description="ScienceWorld (30 science tasks, JVM simulator); score -100..100",
        splits=("train", "dev", "test"),
        default_split="test",
        tasks=_scienceworld_tasks,
        resolve_task=_scienceworld_task,
        prompt_style="scienceworld",
        action_format="plain",
        max_action_tokens=32,  # the paper: the action only
    ),
    "webshop": EnvInfo(
        name="webshop",
        gym_id="empo_gym/WebShop-v0",
        description="WebShop (generated catalogue, or the original data with --data-dir; "
        "BM25 search); score 0..100 = 100 * reward",
        splits=("train", "eval", "test"),
        default_split="test",
        task_kwarg=None,
        prompt_style="webshop",
        action_format="tagged",
        max_action_tokens=512,  # the paper: reasoning in <think>, then the action
        action_tools=(
            ActionTool(
                "search",
                "Search the shop for products (only on the search page).",
                "query",
                "Keywords, e.g. 'machine wash men's dress shirts under 50 dollars'.",
            ),
            ActionTool(
                "click",
                "Click one of the current page's buttons, product ids or option values.",
                "target",
                "The clickable's text as the page shows it, e.g. 'buy now' or 'next >'.",
            ),
        ),
    ),
    "doors": EnvInfo(
        name="doors",
        gym_id="empo_gym/Doors-v0",
        description="exploration-hard chain of rooms, one safe door each; reward at the end only",
        splits=("train", "test"),
        default_split="test",
        tasks=_doors_families,
        task_kwarg="family",
        prompt_style="generic",
        action_format="plain",
        max_action_tokens=8,
    ),
    "ood": EnvInfo(
        name="ood",
        gym_id="empo_gym/ScienceWorldOOD-v0",
        description="EMPO² out-of-distribution transfer pairs (train on A, run on B)",
        splits=("train", "dev", "test"),
        default_split="test",
        tasks=_ood_tasks,
        task_kwarg="transfer",
        prompt_style="scienceworld",  # the target tasks are ScienceWorld tasks
        action_format="plain",
        max_action_tokens=32,
    ),
}


def _twx_profile(game: str) -> EnvInfo:
    from empo_gym.twx.games import GAMES, SPLITS

    spec = GAMES[game]
    return EnvInfo(
        name=spec.name,
        gym_id=spec.gym_id,
        description=f"TextWorldExpress {spec.title}: {spec.description}; score -100..100",
        splits=SPLITS,
        default_split="test",
        task_kwarg=None,  # one game per env; its generation parameters are env kwargs
        prompt_style="generic",
        action_format="plain",
        max_action_tokens=16,  # the actions are short menu strings ("open door to north")
    )


def _twx_names() -> tuple[str, ...]:
    from empo_gym.twx.games import GAME_NAMES

    return GAME_NAMES


#: The TextWorldExpress games, one profile each (``empo-gym run --env coin``).
TWX_ENVS: tuple[str, ...] = _twx_names()
_ENVS.update({game: _twx_profile(game) for game in TWX_ENVS})


def env_names() -> list[str]:
    """All short env names."""
    return sorted(_ENVS)


def get_env_info(name: str) -> EnvInfo:
    """The :class:`EnvInfo` for a short name, or a ValueError listing the valid names."""
    if name not in _ENVS:
        raise ValueError(f"unknown env {name!r}; expected one of: {', '.join(env_names())}")
    return _ENVS[name]


def env_profile(name: str) -> EnvInfo:
    """The profile of ``name``, or :data:`GENERIC` for an env nobody registered.

    Example:
        >>> env_profile("webshop").action_format, env_profile("my-own-env").prompt_style
        ('tagged', 'generic')
    """
    return _ENVS.get(name, GENERIC)


def register_env(info: EnvInfo, *, overwrite: bool = False) -> None:
    """Make a Gymnasium text env available to the harness and CLI under ``info.name``."""
    if info.name in _ENVS and not overwrite:
        raise ValueError(f"env {info.name!r} is already registered; pass overwrite=True")
    _ENVS[info.name] = info
