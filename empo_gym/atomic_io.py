"""Atomic writes of files and directories: a temp in the target's folder, then a rename.

A reader sees the old file or the new one, never a half-written one; a failed write leaves the
old file untouched and no temp file behind. Every results, memory, checkpoint and plot file of
empo-gym is written through here (:func:`atomic_path`), and every directory it publishes --
checkpoints, exported models, vLLM weights, the model, reader and WebShop caches -- through
:func:`atomic_dir`.

Directories. :func:`atomic_dir` fills a new temp directory beside the target, then swaps it in
with no moment where neither the old nor the new copy exists: on Linux one ``renameat2``
``RENAME_EXCHANGE`` swaps the two names atomically (the old copy, now under the temp name, is
deleted after). Where the kernel or filesystem cannot exchange, the old copy is renamed aside
(a ``.prev`` temp) and the new one renamed in; a kill between the two renames leaves the target
missing and the old copy aside, and the next sweep of that folder (every publish there) or
:func:`restore_dirs` (the checkpoint readers) moves it back. :func:`remove_dir` deletes a
directory with one rename first, so a kill never leaves a half-deleted copy under the real name.

Temps. A write killed outright (``kill -9``) cannot clean up after itself, so every temp file
or directory made here carries its writer's process id and machine
(``.NAME.pid<PID>-<HOST>.<random><suffix>``), its suffix names its family
(:data:`TEMP_FAMILIES`), and the next writer in that folder on that machine removes those of
writers no longer running (:func:`sweep_dead_temps`; liveness by
:func:`empo_gym.processes.process_running`: zombies and recycled pids are dead). No other module
makes temp names in a user's folder (a test checks). Files and directories get the permissions
the umask allows (like ``open``), not the 0600 / 0700 of :mod:`tempfile`.

Example:
    >>> import json, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.json"
    >>> _ = write_json_atomic(p, {"a": 1})
    >>> json.loads(p.read_text())
    {'a': 1}
    >>> with atomic_dir(p.parent / "model") as tmp:
    ...     _ = (tmp / "weights.bin").write_bytes(b"new")
    >>> (p.parent / "model" / "weights.bin").read_bytes()
    b'new'
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import json
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from empo_gym.processes import HOST_TAG, process_running

__all__ = [
    "HOST_TAG",
    "PUBLISH_POINTS",
    "TEMP_FAMILIES",
    "atomic_dir",
    "atomic_path",
    "check_writable_dir",
    "check_writable_file",
    "find_temps",
    "follow_umask",
    "make_temp_dir",
    "remove_dir",
    "restore_dirs",
    "sweep_dead_temps",
    "temp_prefix",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_text_atomic",
]

#: Every family of temp names made here: family -> (suffix, what it holds). A dead writer's
#: temp is removed by :func:`sweep_dead_temps`, except an ``aside`` copy whose directory is
#: missing: that one is moved back. (``write`` temps may end in the caller's suffix instead,
#: e.g. ``.png``, as some writers infer the format from it.)
TEMP_FAMILIES: dict[str, tuple[str, str]] = {
    "write": (".tmp", "a file being written (atomic_path)"),
    "build": (
        ".tmp",
        "a directory being filled (atomic_dir, make_temp_dir), or the old copy "
        "an exchange put in its place",
    ),
    "probe": (".probe", "an empty file proving a folder writable (check_writable_dir)"),
    "delete": (".old", "a directory being deleted (remove_dir)"),
    "aside": (".prev", "the old copy of a directory being replaced without an atomic exchange"),
}
_ASIDE_SUFFIX = TEMP_FAMILIES["aside"][0]
#: A temp name made here: ``.NAME.pid<PID>-<HOST>.<random from tempfile><suffix>``.
_TEMP_NAME = re.compile(
    r"^\.(?P<name>.+)\.pid(?P<pid>\d+)-(?P<host>[0-9a-f]{8})\.[A-Za-z0-9_]{8}(?P<suffix>\.[^.]+)?$"
)
#: The points of :func:`atomic_dir` where a kill leaves a different state on disk, in order
#: (``swapped`` with an atomic exchange; ``aside`` and ``placed`` without one). Tests kill a
#: publisher at each one through :func:`_reached`.
PUBLISH_POINTS = ("started", "filled", "swapped", "aside", "placed")
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


def _make_temp(
    parent: str | os.PathLike[str],
    name: str,
    family: str,
    *,
    suffix: str | None = None,
    pid: int | None = None,
) -> Path:
    """Make (and return) a new temp of ``family`` (a key of :data:`TEMP_FAMILIES`) for
    ``name`` in ``parent``, with the permissions the umask allows: the one place temp names
    are made (``pid``: another writer's, for tests; ``suffix``: a ``write`` temp's format)."""
    if family not in TEMP_FAMILIES:
        raise ValueError(f"unknown temp family {family!r}; expected one of {list(TEMP_FAMILIES)}")
    if suffix is not None and family != "write":
        raise ValueError(f"only 'write' temps take a suffix, got {suffix!r} for {family!r}")
    prefix, end = temp_prefix(name, pid), suffix or TEMP_FAMILIES[family][0]
    if family in ("build", "delete", "aside"):
        path = Path(tempfile.mkdtemp(prefix=prefix, suffix=end, dir=parent))
        os.chmod(path, 0o777 & ~_umask())
        return path
    fd, made = tempfile.mkstemp(prefix=prefix, suffix=end, dir=parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
    finally:
        os.close(fd)
    return Path(made)


def sweep_dead_temps(directory: str | os.PathLike[str]) -> list[Path]:
    """Clean up what writers no longer running left in ``directory``: remove their temp files
    and directories, and move back an old copy a killed replace had put aside while its
    directory is missing (:func:`atomic_dir` without an atomic exchange; see
    :func:`restore_dirs`).

    Only names made by this module (they carry the writer's pid) are touched; a live writer's
    temp (this process's or another's) stays. A writer counts as running by
    :func:`~empo_gym.processes.process_running` with the temp's last change as the latest
    start: a zombie, or a pid a later process got, is dead.

    Returns:
        The paths removed or moved back.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> dead = d / (temp_prefix("x.json", pid=999999999) + "abcd1234.tmp")
        >>> _ = dead.write_text("torn")
        >>> _ = (d / (temp_prefix("y.json") + "abcd1234.tmp")).write_text("mine, writing")
        >>> sweep_dead_temps(d) == [dead]
        True
    """
    return _sweep(directory, remove=True)


def restore_dirs(directory: str | os.PathLike[str]) -> list[Path]:
    """Move back into place the old copies that killed replaces had put aside in
    ``directory`` while their directories are missing; delete nothing (what a reader calls
    before it looks: only :func:`atomic_dir` without an atomic exchange leaves such a copy).

    Returns:
        The aside copies moved back.
    """
    return _sweep(directory, remove=False)


def _sweep(directory: str | os.PathLike[str], *, remove: bool) -> list[Path]:
    swept = []
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return swept
    for name in names:
        match = _TEMP_NAME.match(name)
        if match is None or match.group("host") != HOST_TAG:
            continue  # not a temp, or another machine's: its pid means nothing here
        aside = match.group("suffix") == _ASIDE_SUFFIX
        if not (remove or aside):
            continue
        pid, path = int(match.group("pid")), Path(directory) / name
        try:
            changed = os.lstat(path).st_ctime
        except OSError:
            continue  # gone meanwhile
        if pid == os.getpid() or process_running(pid, started_by=changed):
            continue
        if aside and path.is_dir() and not path.is_symlink():
            try:  # a killed replace's old copy: back in place while its directory is missing
                _rename_noreplace(path, Path(directory) / match.group("name"))
                swept.append(path)
                continue
            except FileExistsError:
                pass  # the directory is there: this copy is an old one
            except OSError:
                continue  # cannot move it now: keep it for a later sweep
        if not remove:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                path.unlink()
        swept.append(path)
    return swept


def find_temps(directory: str | os.PathLike[str], name: str) -> list[Path]:
    """The temps made for ``name`` in ``directory``, by any writer on any machine (sorted): to
    find a temp directory another process made, e.g. the one all ranks write their shards to.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> made = make_temp_dir(d, "dcp-000001")
        >>> find_temps(d, "dcp-000001") == [made]
        True
    """
    found = []
    with contextlib.suppress(OSError):
        for entry in sorted(os.listdir(directory)):
            match = _TEMP_NAME.match(entry)
            if match is not None and match.group("name") == name:
                found.append(Path(directory) / entry)
    return found


def follow_umask(path: str | os.PathLike[str]) -> None:
    """Give ``path`` (and everything under a directory) the mode the umask allows: libraries
    that write 0600 files (safetensors does) then match files written with ``open``."""
    mask = _umask()
    root = Path(path)
    for p in [root, *(root.rglob("*") if root.is_dir() else ())]:
        if not p.is_symlink():
            os.chmod(p, (0o777 if p.is_dir() else 0o666) & ~mask)


def make_temp_dir(parent: str | os.PathLike[str], name: str) -> Path:
    """A new directory in ``parent`` named for ``name`` and this process (swept once it dies),
    with the permissions the umask allows, after sweeping what dead writers left in ``parent``:
    a scratch folder, or one a writer moves into place itself (prefer :func:`atomic_dir`)."""
    sweep_dead_temps(parent)
    return _make_temp(parent, name, "build")


# --------------------------------------------------------------------------- renames
_RENAME_NOREPLACE, _RENAME_EXCHANGE, _AT_FDCWD = 1, 2, -100
#: Whether :func:`atomic_dir` may try ``renameat2`` (tests switch it off to exercise the
#: rename-aside fallback).
_use_renameat2 = True


@functools.cache
def _libc_renameat2() -> Any:
    """The C library's ``renameat2`` (Linux, glibc >= 2.28), or None."""
    try:
        call = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError, TypeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return call


def _renameat2(src: Path, dst: Path, flags: int) -> bool:
    """``renameat2(src, dst, flags)``; False when this system or filesystem lacks it."""
    call = _libc_renameat2() if _use_renameat2 else None
    if call is None:
        return False
    if call(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False  # e.g. a filesystem without exchange support
    raise OSError(code, os.strerror(code), str(dst))


def _rename_noreplace(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst``; ``FileExistsError`` when ``dst`` exists."""
    try:
        if _renameat2(src, dst, _RENAME_NOREPLACE):
            return
    except OSError as exc:
        if exc.errno == errno.EEXIST:
            raise FileExistsError(errno.EEXIST, "already exists", str(dst)) from None
        raise
    if os.path.lexists(dst):  # without renameat2: checked, then renamed (a tiny race)
        raise FileExistsError(errno.EEXIST, "already exists", str(dst))
    try:
        os.rename(src, dst)
    except OSError as exc:
        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise FileExistsError(errno.EEXIST, "already exists", str(dst)) from None
        raise


def _reached(point: str) -> None:
    """Called at each of :data:`PUBLISH_POINTS`; does nothing (tests replace it to kill the
    process there)."""


def _replace_dir(new: Path, target: Path) -> None:
    """Put directory ``new`` at ``target``, replacing an existing copy (deleted after): one
    atomic exchange, else rename aside, rename in (the module docstring says why)."""
    try:
        _rename_noreplace(new, target)
        return
    except FileExistsError:
        pass
    if _renameat2(new, target, _RENAME_EXCHANGE):
        _reached("swapped")
        shutil.rmtree(new, ignore_errors=True)  # the old copy now (a kill here: swept)
        return
    aside = _make_temp(target.parent, target.name, "aside")
    try:
        os.replace(target, aside)  # onto the empty placeholder
    except BaseException:
        with contextlib.suppress(OSError):
            aside.rmdir()
        raise
    _reached("aside")
    try:
        os.rename(new, target)
    except BaseException:
        os.rename(aside, target)
        raise
    _reached("placed")
    remove_dir(aside)


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike[str], *, exclusive: bool = False) -> Iterator[Path]:
    """Yield a new empty directory to fill; on success it takes ``target``'s place, on error
    it is removed.

    The directory is made beside ``target`` (whose parent is created when missing) after
    sweeping what killed writers left there; its files get the permissions the umask allows.
    Replacing an existing ``target`` leaves no moment where neither the old nor the new copy
    is there (with ``renameat2``; without, a kill between the two renames leaves the old copy
    aside, and the next sweep or :func:`restore_dirs` moves it back); the old copy is deleted
    after.

    Args:
        target: The directory to (re)place.
        exclusive: Never replace an existing ``target``: publishing raises
            ``FileExistsError`` instead (the new copy is removed), so the first of concurrent
            writers of a cache wins.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp()) / "cache"
        >>> with atomic_dir(d, exclusive=True) as tmp:
        ...     _ = (tmp / "meta.json").write_text("{}")
        >>> with atomic_dir(d, exclusive=True) as tmp:  # doctest: +ELLIPSIS
        ...     pass
        Traceback (most recent call last):
        ...
        FileExistsError: ...
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_dead_temps(target.parent)
    tmp = _make_temp(target.parent, target.name, "build")
    try:
        _reached("started")
        yield tmp
        follow_umask(tmp)  # e.g. safetensors writes 0600
        _reached("filled")
        if exclusive:
            _rename_noreplace(tmp, target)
        else:
            _replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def remove_dir(path: str | os.PathLike[str]) -> None:
    """Delete directory ``path`` (nothing when it is missing): one rename to a temp name
    first, so a kill while its files are deleted leaves a temp (swept), never a half-deleted
    copy under the real name."""
    path = Path(path)
    if not path.is_dir() or path.is_symlink():
        return
    grave = _make_temp(path.parent, path.name, "delete")
    os.replace(path, grave)  # onto the empty placeholder: one atomic rename
    shutil.rmtree(grave, ignore_errors=True)


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
    tmp = _make_temp(path.parent, path.name, "write", suffix=suffix)
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
        os.unlink(_make_temp(base, "probe", "probe"))
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
