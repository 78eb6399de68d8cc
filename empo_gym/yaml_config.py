"""Load dataclass configs from YAML, rejecting unknown keys and wrong types up front.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class C:
    ...     lr: float = 1e-6
    ...     group_size: int = 8
    >>> from_dict(C, {"lr": 3e-6})
    C(lr=3e-06, group_size=8)
    >>> from_dict(C, {"learning_rate": 1.0})
    Traceback (most recent call last):
    ...
    ValueError: <config>: unknown key 'learning_rate' for C; expected one of: group_size, lr
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


def _check_type(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_check_type(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is not None:
        return isinstance(value, origin)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def from_dict(cls: type[T], data: dict[str, Any], source: str = "<config>") -> T:
    """Build dataclass ``cls`` from ``data``; unknown keys and wrong types raise ValueError."""
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a mapping of settings, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    for key, value in data.items():
        if key not in fields:
            raise ValueError(
                f"{source}: unknown key {key!r} for {cls.__name__}; "
                f"expected one of: {', '.join(sorted(fields))}"
            )
        if not _check_type(value, hints[key]):
            raise ValueError(
                f"{source}: {key} must be {hints[key]}, got {value!r} ({type(value).__name__})"
            )
    obj = cls(**data)
    return obj


def load_yaml(cls: type[T], path: str | os.PathLike[str]) -> T:
    """Read a YAML file into dataclass ``cls`` (see :func:`from_dict`)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ValueError(f"{path}: cannot read config: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from exc
    return from_dict(cls, data, str(path))
