"""Old public names kept importable, with a DeprecationWarning that names the replacement.

Example:
    >>> import warnings
    >>> __getattr__ = deprecated_aliases("pkg", {"old": ("pkg.new", 42)})
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     value = __getattr__("old")
    >>> value, str(caught[0].message)
    (42, 'pkg.old is deprecated; use pkg.new')
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["deprecated_aliases"]


def deprecated_aliases(module: str, aliases: Mapping[str, tuple[str, Any]]) -> Callable[[str], Any]:
    """A module ``__getattr__`` serving ``aliases`` (old name -> (replacement's path, object)).

    Assign it as ``__getattr__`` in ``module``; other missing names raise AttributeError.
    """

    def __getattr__(name: str) -> Any:
        if name in aliases:
            new, obj = aliases[name]
            warnings.warn(f"{module}.{name} is deprecated; use {new}", DeprecationWarning, 2)
            return obj
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__
