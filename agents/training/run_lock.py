"""One training run per output directory: an exclusive lock with stale-lock takeover.

Two runs writing one ``output_dir`` would duplicate every metrics row and interleave their
checkpoints, so a run holds ``<output_dir>/.run.lock`` while it works. The file is locked with
:class:`filelock.FileLock` (the kernel drops it when the process dies) and records its owner's
process id and start time. A second run finds the lock held and, when the recorded owner is
still running, is refused with an error naming it. A lock left behind by a killed run is taken
over: either the kernel already released it, or it is still held by an orphan that inherited
the descriptor (a forked worker) while the recorded owner is gone -- then the file is replaced.

Example:
    >>> import tempfile
    >>> run_dir = tempfile.mkdtemp()
    >>> with RunLock(run_dir):
    ...     with RunLock(run_dir):  # re-entrant: the same process may nest
    ...         pass
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from empo_gym.processes import HOST, process_running, start_time

__all__ = ["LOCK_FILE", "RunDirBusyError", "RunLock"]

#: Name of the lock file inside the output directory.
LOCK_FILE = ".run.lock"

_held: dict[Path, tuple[FileLock, int]] = {}  # this process's locks: path -> (lock, depth)
_held_guard = threading.Lock()


class RunDirBusyError(RuntimeError):
    """Another live process holds the output directory's run lock."""


def _owner_record() -> dict[str, Any]:
    return {"pid": os.getpid(), "create_time": start_time(), "host": HOST}


def _read_owner(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("pid"), int) else None


def _alive(owner: dict[str, Any]) -> bool:
    """Whether the recorded owner still runs (another host's owner is assumed alive)."""
    try:
        started = owner.get("create_time")
        started_by = None if started is None else float(started)
    except (TypeError, ValueError):
        return False
    return process_running(owner["pid"], started_by=started_by, host=owner.get("host"))


class RunLock:
    """Hold ``<directory>/.run.lock`` for one run (a context manager, or acquire / release).

    Args:
        directory: The run's output directory (created when missing).
        log: Where to say that a stale lock was taken over.

    Raises:
        RunDirBusyError: On acquire, when a live process (named in the message) holds it.
    """

    def __init__(self, directory: str | os.PathLike[str], log: Any = print) -> None:
        self.directory = Path(directory)
        self.path = (self.directory / LOCK_FILE).absolute()
        self.log = log
        self.took_over: dict[str, Any] | None = None
        """The dead owner whose stale lock this one replaced, if any."""

    def acquire(self) -> RunLock:
        """Take the lock (re-entrant within one process)."""
        with _held_guard:
            if self.path in _held:
                lock, depth = _held[self.path]
                _held[self.path] = (lock, depth + 1)
                return self
            self.directory.mkdir(parents=True, exist_ok=True)
            stale: dict[str, Any] | None = None  # a dead owner whose file was replaced
            for attempt in range(2):
                lock = FileLock(self.path, timeout=0)
                try:
                    lock.acquire()
                    break
                except Timeout:
                    owner = _read_owner(self.path)
                    if owner is None or _alive(owner) or attempt:
                        who = (
                            f"process {owner['pid']} on {owner.get('host', '?')}"
                            if owner
                            else "another process"
                        )
                        raise RunDirBusyError(
                            f"output_dir {str(self.directory)!r} is in use by {who} (lock "
                            f"{self.path}); expected one run per directory: wait for that run "
                            "to end or set another output_dir"
                        ) from None
                    # held by an orphan of a dead owner (e.g. a forked worker): replace the file
                    stale = owner
                    with contextlib.suppress(OSError):
                        self.path.unlink()
            previous = stale or _read_owner(self.path)
            if previous is not None and previous.get("pid") != os.getpid():
                self.took_over = previous
                self.log(
                    f"took over the stale run lock of process {previous['pid']} in "
                    f"{self.directory} (that process is no longer running)"
                )
            self.path.write_text(json.dumps(_owner_record()) + "\n", encoding="utf-8")
            _held[self.path] = (lock, 1)
        return self

    def release(self) -> None:
        """Give the lock back (the file goes when the outermost holder releases)."""
        with _held_guard:
            if self.path not in _held:
                return
            lock, depth = _held.pop(self.path)
            if depth > 1:
                _held[self.path] = (lock, depth - 1)
                return
            with contextlib.suppress(OSError):
                self.path.unlink()
            lock.release()

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
