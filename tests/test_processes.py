"""The one liveness rule: a zombie or a recycled pid is dead, for the run lock and the sweep."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil
import pytest

from empo_gym.processes import HOST, HOST_TAG, process_running, start_time


@pytest.fixture
def zombie():
    """A child that has exited but is not reaped yet (a zombie); reaped afterwards."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while psutil.Process(proc.pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the child did not exit"
        time.sleep(0.01)
    yield proc.pid
    proc.wait()


def test_a_zombie_is_dead(zombie) -> None:
    assert psutil.pid_exists(zombie)  # what the temp sweep asked before: "alive"
    assert not process_running(zombie)


def test_a_recycled_pid_is_dead() -> None:
    """A pid whose process started after the recorded start (or the file's last change)
    belongs to another process."""
    me = os.getpid()
    assert process_running(me) and process_running(me, started_by=start_time())
    assert process_running(me, started_by=time.time())  # started before now
    assert not process_running(me, started_by=start_time() - 60)


def test_gone_and_other_machines() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not process_running(proc.pid)
    assert process_running(proc.pid, host="another-machine")  # cannot be checked: assumed
    assert not process_running(proc.pid, host=HOST) and not process_running(proc.pid, host=HOST_TAG)


def test_the_sweep_removes_a_zombie_writers_temp(tmp_path, zombie) -> None:
    from empo_gym.atomic_io import sweep_dead_temps, temp_prefix

    torn = tmp_path / (temp_prefix("x.json", zombie) + "abcd1234.tmp")
    torn.write_text("torn")
    assert sweep_dead_temps(tmp_path) == [torn]


def test_the_sweep_asks_with_the_temps_last_change(tmp_path, monkeypatch) -> None:
    """A temp older than the process now holding its pid is a dead writer's (recycled pid)."""
    from empo_gym import atomic_io

    live = psutil.Process().ppid()  # a live process other than this one
    temp = tmp_path / (atomic_io.temp_prefix("x.json", live) + "abcd1234.tmp")
    temp.write_text("writing")
    asked = []

    def running(pid: int, *, started_by: float | None = None) -> bool:
        asked.append((pid, started_by))
        return process_running(pid, started_by=started_by)

    monkeypatch.setattr(atomic_io, "process_running", running)
    assert atomic_io.sweep_dead_temps(tmp_path) == []  # its writer started before it was made
    assert asked == [(live, temp.stat().st_ctime)]


def test_the_run_lock_takes_over_a_zombie_or_recycled_owner(tmp_path, zombie) -> None:
    """The run lock's owner check is the same rule (its stale-lock path when the kernel still
    holds the lock is covered by test_run_lock; here the rule it asks)."""
    from empo_gym.agents.training.run_lock import _alive

    assert not _alive({"pid": zombie, "create_time": time.time(), "host": HOST})
    me = {"pid": os.getpid(), "create_time": start_time(), "host": HOST}
    assert _alive(me)
    assert not _alive({**me, "create_time": start_time() - 60})  # pid reused by this process
    assert _alive({**me, "pid": 1, "host": "another-machine"})
