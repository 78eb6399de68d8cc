"""The one loader from YAML / mappings to config dataclasses: unknown keys and wrong types fail.

Every config of empo-gym (``empo-gym run --config``, the GRPO / EMPO² trainer settings) is a
dataclass built here, so each reports a bad file the same way: the file, the key, the value and
what was expected, before any model loads. Values YAML writes loosely are converted: ``1e-6``
(a string in YAML 1.1) or an int for a float, a list for a tuple.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class C:
    ...     lr: float = 1e-6
    ...     group_size: int = 8
    >>> from_dict(C, {"lr": "3e-6"})
    C(lr=3e-06, group_size=8)
    >>> from_dict(C, {"learning_rate": 1.0})
    Traceback (most recent call last):
    ...
    ValueError: <config>: unknown config key 'learning_rate' for C; expected one of: group_size, lr
    >>> from_dict(C, {"group_size": "four"})
    Traceback (most recent call last):
    ...
    ValueError: <config>: group_size='four'; expected an integer
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

__all__ = ["check_fields", "coerce", "from_dict", "load_yaml", "read_yaml"]

T = TypeVar("T")


def coerce(name: str, value: Any, hint: Any) -> Any:
    """``value`` converted to type ``hint``, or a ValueError ``"name=value; expected ..."``.

    Example:
        >>> coerce("betas", [0.9, 1], tuple[float, float])
        (0.9, 1.0)
        >>> coerce("lora", 1, bool)
        Traceback (most recent call last):
        ...
        ValueError: lora=1; expected true or false
    """
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(name, value, arg)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError(errors[0] if errors else f"{name}={value!r}; expected None")
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ValueError(f"{name}={value!r}; expected a list of {len(args)} values")
        return tuple(coerce(name, v, a) for v, a in zip(value, args, strict=True))
    if origin is not None:  # dict[str, Any], list[str], ...: the container type only
        if not isinstance(value, origin):
            raise ValueError(f"{name}={value!r}; expected a {origin.__name__}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{name}={value!r}; expected true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name}={value!r}; expected an integer")
        return value
    if hint is float:
        if isinstance(value, bool):
            raise ValueError(f"{name}={value!r}; expected a number")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ValueError(f"{name}={value!r}; expected a number")
    if hint is str:
        if not isinstance(value, str):
            raise ValueError(f"{name}={value!r}; expected a string")
        return value
    if isinstance(hint, type) and not isinstance(value, hint):
        raise ValueError(f"{name}={value!r}; expected {hint.__name__}")
    return value


def check_fields(obj: Any) -> None:
    """Coerce every field of dataclass instance ``obj`` in place (call it in ``__post_init__``)."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        setattr(obj, f.name, coerce(f.name, getattr(obj, f.name), hints[f.name]))


def from_dict(cls: type[T], data: Any, source: str = "<config>", owner: str | None = None) -> T:
    """Build dataclass ``cls`` from a mapping; unknown keys and wrong types raise ValueError.

    Args:
        cls: The config dataclass.
        data: Its settings (e.g. a parsed YAML file).
        source: Where ``data`` came from (the file), the prefix of every error.
        owner: How errors name ``cls`` (default: its class name).
    """
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a mapping of settings, got {type(data).__name__}")
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    values = {}
    for key, value in data.items():
        if key not in fields:
            raise ValueError(
                f"{source}: unknown config key {key!r} for {owner or cls.__name__}; "
                f"expected one of: {', '.join(sorted(fields))}"
            )
        try:
            values[key] = coerce(key, value, hints[key])
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from None
    try:
        return cls(**values)
    except ValueError as exc:  # the dataclass's own range checks
        raise ValueError(f"{source}: {exc}") from None


def read_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The mapping in a YAML file (an empty file is ``{}``); clear errors for anything else."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"{path}: cannot read config: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{path}: not a text file (byte {exc.start} is not UTF-8); expected a YAML config"
        ) from exc
    except yaml.YAMLError as exc:
        # YAML's own message spans several lines (a caret under the bad spot)
        raise ValueError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    return data


def load_yaml(cls: type[T], path: str | os.PathLike[str]) -> T:
    """Read a YAML file into dataclass ``cls`` (see :func:`from_dict`)."""
    return from_dict(cls, read_yaml(path), str(path))
