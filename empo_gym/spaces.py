"""Gymnasium spaces for free-form text.

Gymnasium's :class:`gymnasium.spaces.Text` defaults to an alphanumeric charset, so
``"look around"`` or ``"click[< prev]"`` is not a member of it. Text environments for LLM
agents need a space whose ``contains`` accepts any ``str`` up to a length.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
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


#: Code points no encoding can write: UTF-16 surrogates standing alone (``"\udcff"``, what
#: ``surrogateescape`` decoding leaves for undecodable bytes).
_UNENCODABLE = re.compile("[\ud800-\udfff]")
#: What :func:`replace_unencodable` writes for each of them.
REPLACEMENT_CHAR = "\ufffd"


def has_unencodable(text: str) -> bool:
    """Whether ``text`` holds code points that cannot be encoded (lone surrogates).

    The one rule of empo_gym envs: an action that holds any is a no-op flagged
    ``info["invalid_action"]``; text that is stored or shown (memory tips, observations) has
    them replaced by :func:`replace_unencodable`.

    Example:
        >>> has_unencodable("look around"), has_unencodable("look \\udcff")
        (False, True)
    """
    return _UNENCODABLE.search(text) is not None


def replace_unencodable(text: str) -> str:
    """``text`` with every unencodable code point replaced by U+FFFD.

    Example:
        >>> replace_unencodable("tip \\udcff") == "tip \\ufffd"
        True
    """
    return _UNENCODABLE.sub(REPLACEMENT_CHAR, text)


def clip_observation(text: str, space: spaces.Text) -> tuple[str, bool]:
    """``text`` cut to ``space.max_length``, and whether it was cut (``observation_truncated``).

    Envs clip at their boundary, so sync and async vector envs return the same text and the
    same ``info["observation_truncated"]`` flag.

    Example:
        >>> clip_observation("abcdef", UnicodeText(4))
        ('abcd', True)
    """
    if len(text) <= space.max_length:
        return text, False
    return text[: space.max_length], True


#: Default maximum length of a text observation (ScienceWorld "look around" can be long).
MAX_OBSERVATION_CHARS = 100_000
#: Default maximum length of a text action.
MAX_ACTION_CHARS = 100_000


# --- AsyncVectorEnv support -------------------------------------------------------------------
# Gymnasium's shared-memory codec for ``Text`` maps characters through the space's charset (a
# character outside it raises ``KeyError`` in the worker) and, worse, ``AsyncVectorEnv`` reads
# the shared buffer once at construction expecting a live numpy view: a tuple of strings is a
# snapshot, so observations come back empty or stale. UnicodeText stores Unicode code points
# (+1, so 0 marks padding) and reads back a *live* sequence view that decodes on access and
# deep-copies to a plain tuple, so ``gymnasium.make_vec(..., vectorization_mode="async")``
# round-trips any text with the default ``shared_memory=True``.
class SharedTextView(Sequence):
    """A live, read-only view of ``n`` strings stored as code points in shared memory.

    ``copy.deepcopy`` (what ``AsyncVectorEnv`` returns with its default ``copy=True``) gives a
    plain ``tuple`` of ``str``.
    """

    def __init__(self, buffer: np.ndarray):
        self._buffer = buffer  # [n, max_length] int32 view of the shared array

    def __len__(self) -> int:
        return int(self._buffer.shape[0])

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return tuple(self[i] for i in range(*index.indices(len(self))))
        row = self._buffer[index]
        (nz,) = np.nonzero(row == 0)
        end = int(nz[0]) if len(nz) else row.shape[0]
        return (row[:end] - 1).astype("<i4").tobytes().decode("utf-32-le", "surrogatepass")

    def __deepcopy__(self, memo: dict) -> tuple[str, ...]:
        return tuple(self)

    def __eq__(self, other: object) -> bool:
        return tuple(self) == (tuple(other) if isinstance(other, Sequence) else other)

    def __repr__(self) -> str:
        return repr(tuple(self))


def _register_shared_memory_codec() -> None:
    import multiprocessing as mp

    from gymnasium.vector.utils import shared_memory as shm

    @shm.create_shared_memory.register(UnicodeText)
    def _create(space: UnicodeText, n: int = 1, ctx: Any = mp) -> Any:
        return ctx.Array(np.dtype(np.int32).char, n * space.max_length)

    @shm.read_from_shared_memory.register(UnicodeText)
    def _read(space: UnicodeText, shared_memory: Any, n: int = 1) -> SharedTextView:
        data = np.frombuffer(shared_memory.get_obj(), dtype=np.int32).reshape((n, space.max_length))
        return SharedTextView(data)

    @shm.write_to_shared_memory.register(UnicodeText)
    def _write(space: UnicodeText, index: int, values: str, shared_memory: Any) -> None:
        size = space.max_length
        text = str(values)
        if len(text) > size:
            # cutting here would hide the loss from info; empo_gym envs clip (and flag) first
            raise ValueError(
                f"an observation of {len(text)} characters does not fit {space!r} (max_length "
                f"{size}); the env must clip it, as empo_gym envs do with "
                "empo_gym.spaces.clip_observation (flagging info['observation_truncated'])"
            )
        destination = np.frombuffer(shared_memory.get_obj(), dtype=np.int32)
        row = destination[index * size : (index + 1) * size]
        # surrogatepass: lone surrogates round-trip as they would in a sync vector env
        codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<i4") + 1
        row[: len(codes)] = codes
        if len(codes) < size:
            row[len(codes)] = 0  # terminator; bytes after it are ignored


_register_shared_memory_codec()
