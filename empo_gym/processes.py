"""Whether a process is still running: the one liveness rule of empo-gym.

Files that outlive their writer name it by process id: a temp file of :mod:`empo_gym.atomic_io`
(``.NAME.pid<PID>-<HOST>...``) and the run lock of
:mod:`empo_gym.agents.training.run_lock`. A pid alone says too little: a killed process
stays in the process table as a *zombie* until its parent reaps it, and the kernel hands a freed
pid to the next process started. So a process counts as running only when its pid exists, it is
not a zombie, and it started no later than the moment its file proves it existed (its recorded
start time, or a temp file's last status change); a recycled pid belongs to a process started
later. A process of another machine (a folder shared over the network) cannot be checked from
here and counts as running.

Example:
    >>> import os, time
    >>> process_running(os.getpid())
    True
    >>> process_running(os.getpid(), started_by=time.time() - 3600)  # a later process's pid
    False
"""

from __future__ import annotations

import socket
import zlib

import psutil

__all__ = ["HOST", "HOST_TAG", "START_TIME_SLACK_S", "process_running", "start_time"]

#: This machine's name (as the run lock records it).
HOST = socket.gethostname()
#: This machine in 8 hex digits (as temp names carry it).
HOST_TAG = f"{zlib.crc32(HOST.encode()):08x}"
#: Tolerance of start-time comparisons: Linux reports a start time from the boot time in whole
#: seconds plus clock ticks, so one process's start time can read up to a second apart.
START_TIME_SLACK_S = 1.0


def start_time(pid: int | None = None) -> float:
    """The start time (seconds since the epoch) of process ``pid`` (default: this one), as
    :func:`process_running` compares it.

    Example:
        >>> import time
        >>> start_time() <= time.time()
        True
    """
    return psutil.Process(pid).create_time()


def process_running(pid: int, *, started_by: float | None = None, host: str | None = None) -> bool:
    """Whether process ``pid`` is running (a zombie or a recycled pid is not).

    Args:
        pid: The process id.
        started_by: The process must have started no later than this (seconds since the epoch,
            :data:`START_TIME_SLACK_S` allowed): its recorded :func:`start_time`, or the time a
            file it made was last changed. A pid that a later process got counts as dead.
            None: any process with that pid.
        host: The machine the process runs on, as :data:`HOST` or :data:`HOST_TAG` (None:
            this one). Another machine's process cannot be checked and counts as running.

    Example:
        >>> process_running(999999999, host="0000beef")  # another machine: assumed running
        True
    """
    if host is not None and host not in (HOST, HOST_TAG):
        return True
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:  # killed, not yet reaped by its parent
            return False
        return started_by is None or proc.create_time() <= started_by + START_TIME_SLACK_S
    except (psutil.Error, ValueError, OverflowError):  # gone, or not a valid pid
        return False
