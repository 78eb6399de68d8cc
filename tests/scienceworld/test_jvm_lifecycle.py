"""No ScienceWorld JVM outlives its owner: close(), garbage collection, SIGKILL of Python."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from empo_gym.scienceworld.env import ScienceWorldEnv
from empo_gym.scienceworld.jvm import ScienceWorldJVM, jvm_options

pytestmark = pytest.mark.slow


def _wait_gone(pid: int, timeout: float = 15.0) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not psutil.pid_exists(pid):
            return True
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


def test_jvm_starts_lazily_and_close_stops_it() -> None:
    env = ScienceWorldEnv(task="find-plant")
    assert env._sim is None  # constructing the env starts no JVM
    env.reset(seed=0)
    pid = env.simulator.pid
    assert psutil.Process(pid).is_running()
    env.close()
    assert _wait_gone(pid)
    env.close()  # idempotent


def test_heap_cap_is_passed_to_the_jvm() -> None:
    sim = ScienceWorldJVM(max_heap_mb=192)
    try:
        cmdline = psutil.Process(sim.pid).cmdline()
        assert "-Xmx192m" in cmdline
    finally:
        sim.close()
    assert _wait_gone(sim.pid)


def test_bad_heap_setting_is_rejected_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="below the floor of 192 MB"):
        jvm_options(8)


def test_garbage_collected_env_stops_its_jvm() -> None:
    env = ScienceWorldEnv(task="find-plant")
    env.reset(seed=0)
    pid = env.simulator.pid
    del env
    gc.collect()
    assert _wait_gone(pid)


def test_jvm_dies_when_python_is_killed() -> None:
    script = textwrap.dedent(
        """
        import sys, time
        from empo_gym.scienceworld.env import ScienceWorldEnv
        env = ScienceWorldEnv(task="find-plant")
        env.reset(seed=0)
        print(env.simulator.pid, flush=True)
        time.sleep(120)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    try:
        line = proc.stdout.readline()
        jvm_pid = int(line.strip())
        assert psutil.pid_exists(jvm_pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        assert _wait_gone(jvm_pid, timeout=20), "the JVM outlived its killed Python process"
    finally:
        if proc.poll() is None:
            proc.kill()
