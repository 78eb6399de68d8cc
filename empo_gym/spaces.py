"""Gymnasium spaces for free-form text.

Gymnasium's :class:`gymnasium.spaces.Text` defaults to an alphanumeric charset, so
``"look around"`` or ``"click[< prev]"`` is not a member of it. Text environments for LLM
agents need a space whose ``contains`` accepts any ``str`` up to a length.
"""

from __future__ import annotations

import string
from typing import Any

import numpy as np
from gymnasium import spaces

# Characters used when *sampling*; membership accepts any Unicode string.
_SAMPLE_CHARSET = string.ascii_letters + string.digits + string.punctuation + " "


class UnicodeText(spaces.Text):
    """A text space that contains every ``str`` whose length lies in ``[min_length, max_length]``.

    Sampling draws from printable ASCII (a space must be able to sample), but membership is
    decided by type and length only, so observations with spaces, punctuation and non-ASCII
    characters are valid.

    Args:
        max_length: Longest string that is a member of the space.
        min_length: Shortest string that is a member of the space.
        seed: Seed for the space's sampler.

    Example:
        >>> space = UnicodeText(max_length=64)
        >>> space.contains("look around — ça va? 你好")
        True
        >>> space.contains(3)
        False
        >>> space.contains("x" * 65)
        False
    """

    def __init__(self, max_length: int, *, min_length: int = 0, seed: int | None = None):
        super().__init__(
            max_length=max_length, min_length=min_length, charset=_SAMPLE_CHARSET, seed=seed
        )

    def contains(self, x: Any) -> bool:
        """Return True when ``x`` is a ``str`` of admissible length."""
        if isinstance(x, np.str_):
            x = str(x)
        return isinstance(x, str) and self.min_length <= len(x) <= self.max_length

    def __repr__(self) -> str:
        return f"UnicodeText({self.min_length}, {self.max_length})"

    def __eq__(self, other: Any) -> bool:
        return (
            isinstance(other, UnicodeText)
            and self.min_length == other.min_length
            and self.max_length == other.max_length
        )


#: Default maximum length of a text observation (ScienceWorld "look around" can be long).
MAX_OBSERVATION_CHARS = 100_000
#: Default maximum length of a text action.
MAX_ACTION_CHARS = 100_000


# --- AsyncVectorEnv support -------------------------------------------------------------------
# Gymnasium's shared-memory codec for ``Text`` maps characters through the space's charset: a
# character outside it raises ``KeyError`` in the worker and strings come back as runs of "0".
# UnicodeText stores Unicode code points (+1, so 0 marks padding) instead, so
# ``gymnasium.make_vec(..., vectorization_mode="async")`` round-trips any text with the default
# ``shared_memory=True``.
def _register_shared_memory_codec() -> None:
    import multiprocessing as mp

    from gymnasium.vector.utils import shared_memory as shm

    @shm.create_shared_memory.register(UnicodeText)
    def _create(space: UnicodeText, n: int = 1, ctx: Any = mp) -> Any:
        return ctx.Array(np.dtype(np.int32).char, n * space.max_length)

    @shm.read_from_shared_memory.register(UnicodeText)
    def _read(space: UnicodeText, shared_memory: Any, n: int = 1) -> tuple[str, ...]:
        data = np.frombuffer(shared_memory.get_obj(), dtype=np.int32).reshape(
            (n, space.max_length)
        )
        out = []
        for row in data:
            (nz,) = np.nonzero(row == 0)
            end = int(nz[0]) if len(nz) else space.max_length
            out.append("".join(map(chr, (row[:end] - 1).tolist())))
        return tuple(out)

    @shm.write_to_shared_memory.register(UnicodeText)
    def _write(space: UnicodeText, index: int, values: str, shared_memory: Any) -> None:
        size = space.max_length
        text = str(values)[:size]
        encoded = np.zeros(size, dtype=np.int32)
        if text:
            encoded[: len(text)] = np.frombuffer(text.encode("utf-32-le"), dtype=np.int32) + 1
        destination = np.frombuffer(shared_memory.get_obj(), dtype=np.int32)
        np.copyto(destination[index * size : (index + 1) * size], encoded)


_register_shared_memory_codec()
