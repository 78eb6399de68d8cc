"""No TextWorldExpress JVM outlives its owner: close(), garbage collection, SIGKILL of Python;
the heap cap reaches the JVM and the largest games run at the heap floor."""

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

from empo_gym.processes import process_running
from empo_gym.twx.env import MIN_HEAP_MB, TWXJVM, TextWorldExpressEnv

pytestmark = pytest.mark.slow


def _wait_gone(pid: int, timeout: float = 15.0) -> bool:
    """Whether ``pid`` is gone (or a zombie) within ``timeout`` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not process_running(pid):
            return True
        time.sleep(0.1)
    return False


def test_jvm_starts_lazily_and_close_stops_it() -> None:
    env = TextWorldExpressEnv("coin")
    assert env._sim is None
    env.reset(seed=0)
    pid = env.simulator.pid
    assert psutil.Process(pid).is_running()
    env.close()
    assert _wait_gone(pid)
    env.close()  # idempotent


def test_one_jvm_serves_every_episode() -> None:
    env = TextWorldExpressEnv("coin")
    try:
        env.reset(seed=0)
        pid = env.simulator.pid
        env.reset(seed=1)
        assert env.simulator.pid == pid
    finally:
        env.close()


def test_heap_cap_is_passed_to_the_jvm() -> None:
    sim = TWXJVM(max_heap_mb=96)
    try:
        assert "-Xmx96m" in psutil.Process(sim.pid).cmdline()
    finally:
        sim.close()
    assert _wait_gone(sim.pid)


def test_garbage_collected_env_stops_its_jvm() -> None:
    env = TextWorldExpressEnv("twc")
    env.reset(seed=0)
    pid = env.simulator.pid
    del env
    gc.collect()
    assert _wait_gone(pid)


def test_jvm_dies_when_python_is_killed() -> None:
    script = textwrap.dedent(
        """
        import time
        from empo_gym.twx.env import TextWorldExpressEnv
        env = TextWorldExpressEnv("coin")
        env.reset(seed=0)
        print(env.simulator.pid, flush=True)
        time.sleep(120)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env={**os.environ}
    )
    try:
        jvm_pid = int(proc.stdout.readline().strip())
        assert psutil.pid_exists(jvm_pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        assert _wait_gone(jvm_pid, timeout=20), "the JVM outlived its killed Python process"
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize(
    ("game", "params"),
    [
        ("cookingworld", {"numLocations": 11, "numIngredients": 5, "numDistractorItems": 10}),
        ("mapreader", {"numLocations": 40, "maxDistanceApart": 8}),
        ("coin", {"numLocations": 11, "numDistractorItems": 10}),
    ],
)
def test_largest_games_run_their_gold_paths_at_the_heap_floor(game: str, params: dict) -> None:
    env = TextWorldExpressEnv(
        game, split="test", oracle_info=True, max_steps=1000, jvm_max_heap_mb=MIN_HEAP_MB, **params
    )
    try:
        for seed in range(5):
            _, info = env.reset(seed=seed)
            for action in info["oracle"]["gold_actions"]:
                *_, term, trunc, info = env.step(action)
                if term or trunc:
                    break
            assert info["success"], (game, info["game_seed"])
    finally:
        env.close()
