"""Short environment names (``scienceworld``, ``webshop``, ``ood``) used by the CLI and harness.

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


def _scienceworld_tasks() -> list[str]:
    from empo_gym.scienceworld.tasks import TASK_NAMES

    return list(TASK_NAMES)


def _ood_tasks() -> list[str]:
    from empo_gym.ood import TRANSFERS

    return list(TRANSFERS)


@dataclass(frozen=True)
class EnvInfo:
    """What the CLI and the harness need to know about an environment family."""

    name: str
    gym_id: str
    description: str
    splits: tuple[str, ...]
    default_split: str
    tasks: Callable[[], list[str]] = field(default=lambda: [])
    task_kwarg: str | None = "task"
    """Constructor kwarg that receives ``--task`` (None: the env has no tasks)."""

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
            if task not in valid and not self._alias_ok(task):
                raise ValueError(
                    f"unknown task {task!r} for env {self.name!r}; "
                    f"expected one of: {', '.join(valid)}"
                )
            kwargs[self.task_kwarg] = self.canonical_task(task)
        return kwargs

    def canonical_task(self, task: str) -> str:
        """The task's canonical name (ScienceWorld ids like ``1-1`` become ``boil``)."""
        if self.name == "scienceworld":
            from empo_gym.scienceworld.tasks import resolve_task

            return resolve_task(task)
        return task

    def _alias_ok(self, task: str) -> bool:
        if self.name != "scienceworld":
            return False
        from empo_gym.scienceworld.tasks import TASK_IDS

        return task in TASK_IDS


_ENVS: dict[str, EnvInfo] = {
    "scienceworld": EnvInfo(
        name="scienceworld",
        gym_id="empo_gym/ScienceWorld-v0",
        description="ScienceWorld (30 science tasks, JVM simulator); score -100..100",
        splits=("train", "dev", "test"),
        default_split="test",
        tasks=_scienceworld_tasks,
    ),
    "webshop": EnvInfo(
        name="webshop",
        gym_id="empo_gym/WebShop-v0",
        description="WebShop (generated catalogue, BM25 search); score 0..100 = 100 * reward",
        splits=("train", "eval", "test"),
        default_split="test",
        task_kwarg=None,
    ),
    "ood": EnvInfo(
        name="ood",
        gym_id="empo_gym/ScienceWorldOOD-v0",
        description="EMPO² out-of-distribution transfer pairs (train on A, run on B)",
        splits=("train", "dev", "test"),
        default_split="test",
        tasks=_ood_tasks,
        task_kwarg="transfer",
    ),
}


def env_names() -> list[str]:
    """All short env names."""
    return sorted(_ENVS)


def get_env_info(name: str) -> EnvInfo:
    """The :class:`EnvInfo` for a short name, or a ValueError listing the valid names."""
    if name not in _ENVS:
        raise ValueError(f"unknown env {name!r}; expected one of: {', '.join(env_names())}")
    return _ENVS[name]


def register_env(info: EnvInfo, *, overwrite: bool = False) -> None:
    """Make a Gymnasium text env available to the harness and CLI under ``info.name``."""
    if info.name in _ENVS and not overwrite:
        raise ValueError(f"env {info.name!r} is already registered; pass overwrite=True")
    _ENVS[info.name] = info
