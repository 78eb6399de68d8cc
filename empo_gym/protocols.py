"""Which members of a runtime-checkable protocol an object lacks (for errors that name them).

The harness checks agents against :class:`~empo_gym.harness.EvalAgent`, the LLM code checks
policies against its policy protocols; both name what is missing with :func:`missing_members`.

Example:
    >>> from typing import Protocol, runtime_checkable
    >>> @runtime_checkable
    ... class Greeter(Protocol):
    ...     name: str
    ...     def greet(self) -> str: ...
    >>> missing_members(object(), Greeter)
    ['name', 'greet']
"""

from __future__ import annotations

import typing
from typing import Protocol

__all__ = ["missing_members"]


def _protocol_members(protocol: type) -> list[str]:
    """Public members of a protocol class, its bases' first, in declaration order."""
    # typing.get_protocol_members arrives only in Python 3.13; this is its rule for our protocols.
    names: list[str] = []
    for base in reversed(protocol.__mro__):
        if base in (object, Protocol, typing.Generic) or not getattr(base, "_is_protocol", False):
            continue
        own = [*vars(base).get("__annotations__", {}), *vars(base)]
        names.extend(n for n in own if not n.startswith("_") and n not in names)
    return names


def missing_members(obj: object, protocol: type) -> list[str]:
    """Members of ``protocol`` that ``obj`` lacks (empty exactly when ``isinstance`` holds)."""
    missing = []
    for name in _protocol_members(protocol):
        # As isinstance does: a method member set to None counts as absent.
        method = callable(getattr(protocol, name, None))
        if not hasattr(obj, name) or (method and getattr(obj, name) is None):
            missing.append(name)
    return missing
