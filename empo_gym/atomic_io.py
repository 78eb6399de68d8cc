"""Atomic file writes: a temp file in the target's directory, fsync, then ``os.replace``.

A reader sees the old file or the new one, never a half-written one; a failed write leaves the
old file untouched and no temp file behind. Every results, memory, checkpoint and plot file of
empo-gym is written through here.

A write killed outright (``kill -9``) cannot clean up after itself, so every temp file or
directory made here carries its writer's process id and machine
(``.NAME.pid<PID>-<HOST>.<random><suffix>``), and the next writer in that folder on that
machine removes those of writers no longer running
(:func:`sweep_dead_temps`). Files and directories get the permissions the umask allows (like
``open``), not the 0600 / 0700 of :mod:`tempfile`.

Example:
    >>> import json, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.json"
    >>> _ = write_json_atomic(p, {"a": 1})
    >>> json.loads(p.read_text())
    {'a': 1}
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import tempfile
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

__all__ = [
    "atomic_path",
    "check_writable_dir",
    "check_writable_file",
    "follow_umask",
    "make_temp_dir",
    "sweep_dead_temps",
    "temp_prefix",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_text_atomic",
]

#: A temp name made here: ``.NAME.pid<PID>-<HOST>.<random from tempfile><suffix>``.
_TEMP_NAME = re.compile(r"^\..+\.pid(?P<pid>\d+)-(?P<host>[0-9a-f]{8})\.[A-Za-z0-9_]{8}(\.[^.]+)?$")
#: This machine, in temp names: a folder shared over the network holds other machines' temp
#: files, whose pids say nothing here (they are never swept from this one).
HOST_TAG = f"{zlib.crc32(socket.gethostname().encode()):08x}"
_umask_lock = threading.Lock()


def _umask() -> int:
    """The process's umask (reading it means setting it; the lock keeps threads consistent)."""
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def temp_prefix(name: str, pid: int | None = None) -> str:
    """The start of a temp name for ``name`` made by process ``pid`` (default: this one).

    Example:
        >>> temp_prefix("x.json", 42) == f".x.json.pid42-{HOST_TAG}."
        True
    """
    return f".{name}.pid{os.getpid() if pid is None else pid}-{HOST_TAG}."


def sweep_dead_temps(directory: str | os.PathLike[str]) -> list[Path]:
    """Remove temp files and directories in ``directory`` left by writers no longer running.

    Only names made by this module (they carry the writer's pid) are touched; a live writer's
    temp file (this process's or another's) stays.

    Returns:
        The paths removed.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> dead = d / (temp_prefix("x.json", pid=999999999) + "abcd1234.tmp")
        >>> _ = dead.write_text("torn")
        >>> _ = (d / (temp_prefix("y.json") + "abcd1234.tmp")).write_text("mine, writing")
        >>> sweep_dead_temps(d) == [dead]
        True
    """
    removed = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        match = _TEMP_NAME.match(name)
        if match is None:
            continue
        pid = int(match.group("pid"))
        if match.group("host") != HOST_TAG or pid == os.getpid() or psutil.pid_exists(pid):
            continue
        path = Path(directory) / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                path.unlink()
        removed.append(path)
    return removed


def follow_umask(path: str | os.PathLike[str]) -> None:
    """Give ``path`` (and everything under a directory) the mode the umask allows: libraries
    that write 0600 files (safetensors does) then match files written with ``open``."""
    mask = _umask()
    root = Path(path)
    for p in [root, *(root.rglob("*") if root.is_dir() else ())]:
        if not p.is_symlink():
            os.chmod(p, (0o777 if p.is_dir() else 0o666) & ~mask)


def make_temp_dir(parent: str | os.PathLike[str], name: str, suffix: str = ".tmp") -> Path:
    """A new directory in ``parent`` named for ``name`` and this process (swept once it dies),
    with the permissions the umask allows."""
    path = Path(tempfile.mkdtemp(prefix=temp_prefix(name), suffix=suffix, dir=parent))
    os.chmod(path, 0o777 & ~_umask())
    return path


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike[str], suffix: str = ".tmp", *, exclusive: bool = False
) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on error it is removed.

    Args:
        path: The file to (re)place; its directory is created when missing.
        suffix: Suffix of the temporary file (some writers infer the format from it).
        exclusive: Never replace an existing ``path``: publishing raises ``FileExistsError``
            instead (the temp file is removed), so concurrent writers cannot overwrite each other.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_dead_temps(path.parent)
    fd, name = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=suffix, dir=path.parent)
    os.fchmod(fd, 0o666 & ~_umask())
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        if exclusive:
            os.link(tmp, path)  # fails when path exists: atomic create-if-absent
            tmp.unlink()
        else:
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_bytes_atomic(
    path: str | os.PathLike[str], data: bytes, *, exclusive: bool = False
) -> Path:
    """Write ``data`` to ``path`` atomically (``exclusive``: see :func:`atomic_path`)."""
    with (
        atomic_path(path, exclusive=exclusive) as tmp,
        os.fdopen(os.open(tmp, os.O_WRONLY), "wb") as f,
    ):
        f.write(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike[str], text: str, *, exclusive: bool = False) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically (``exclusive``: see :func:`atomic_path`)."""
    return write_bytes_atomic(path, text.encode("utf-8"), exclusive=exclusive)


def write_json_atomic(path: str | os.PathLike[str], data: Any, **dump_kwargs: Any) -> Path:
    """Write ``data`` as JSON (``json.dumps`` keyword arguments allowed) atomically."""
    return write_text_atomic(path, json.dumps(data, **dump_kwargs))


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable_dir(path: str | os.PathLike[str], what: str) -> Path:
    """Check, without creating anything, that ``path`` is or can become a writable directory.

    Args:
        path: The directory.
        what: How the caller names it in the error (e.g. ``"out_dir"``).

    Raises:
        ValueError: One line naming ``what``, the path and why (a file, under a file,
            not writable).

    Example:
        >>> check_writable_dir("/dev/null/x", "out_dir")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: out_dir '/dev/null/x' is under '/dev/null', which is a file; ...
    """
    path = Path(path)
    base = _nearest_existing(path.absolute())
    if base == path.absolute() and not base.is_dir():
        raise ValueError(
            f"{what} {str(path)!r} is a file; expected a directory: pass a directory path"
        )
    if not base.is_dir():
        raise ValueError(
            f"{what} {str(path)!r} is under {str(base)!r}, which is a file; expected a "
            "directory path: pass one whose parents are directories"
        )
    try:  # a real probe: permission bits say nothing for root or a read-only filesystem
        fd, probe = tempfile.mkstemp(prefix=temp_prefix("probe"), dir=base)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        shown = "" if base == path.absolute() else f" (its existing parent {str(base)!r})"
        raise ValueError(
            f"{what} {str(path)!r}{shown} is not writable ({exc.strerror}); expected a "
            "directory you can write to: fix its permissions or pass another path"
        ) from None
    return path


def check_writable_file(path: str | os.PathLike[str], what: str) -> Path:
    """Check, without creating anything, that a file can be written at ``path``.

    Raises:
        ValueError: One line naming ``what``, the path and why (a directory, under a file,
            not writable).
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(
            f"{what} {str(path)!r} is a directory; expected a file path: pass e.g. "
            f"{str(path / 'trajectories.jsonl')!r}"
        )
    if path.exists() and not os.access(path, os.W_OK):
        raise ValueError(
            f"{what} {str(path)!r} is not writable: fix its permissions or pass another path"
        )
    check_writable_dir(path.absolute().parent, f"the directory of {what}")
    return path
