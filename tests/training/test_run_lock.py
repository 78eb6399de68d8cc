"""One run per output_dir: a second one is refused, a killed run's stale lock is taken over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from empo_gym.agents.training.run_lock import LOCK_FILE, RunDirBusyError, RunLock
from tests.training.train_helpers import subprocess_env


def _holder(run_dir: Path, fork_orphan: bool = False) -> subprocess.Popen[str]:
    """A process holding the lock of ``run_dir`` (with ``fork_orphan``: it forks a child that
    inherits the locked descriptor and outlives it, as a forked env worker would)."""
    code = textwrap.dedent(
        f"""
        import os, sys, time
        from empo_gym.agents.training.run_lock import RunLock
        RunLock({str(run_dir)!r}).acquire()
        if {fork_orphan!r} and os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        print("held", flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=subprocess_env()
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_process_is_refused_while_the_first_runs(tmp_path) -> None:
    holder = _holder(tmp_path / "run")
    try:
        with pytest.raises(RunDirBusyError, match=f"in use by process {holder.pid}"):
            RunLock(tmp_path / "run").acquire()
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("fork_orphan", [False, True], ids=["released", "held-by-orphan"])
def test_a_killed_runs_stale_lock_is_taken_over(tmp_path, fork_orphan) -> None:
    holder = _holder(tmp_path / "run", fork_orphan=fork_orphan)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    logged: list[str] = []
    lock = RunLock(tmp_path / "run", log=logged.append).acquire()
    try:
        assert lock.took_over is not None and lock.took_over["pid"] == holder.pid
        assert len(logged) == 1 and f"process {holder.pid}" in logged[0]
        other = subprocess.run(  # and now it is ours
            [
                sys.executable,
                "-c",
                "from empo_gym.agents.training.run_lock import RunLock; "
                f"RunLock({str(tmp_path / 'run')!r}).acquire()",
            ],
            capture_output=True,
            text=True,
            env=subprocess_env(),
        )
        assert other.returncode != 0 and f"in use by process {os.getpid()}" in other.stderr
    finally:
        lock.release()
        for pid in _orphans(tmp_path / "run"):  # the forked child still sleeps
            os.kill(pid, signal.SIGKILL)
    assert not (tmp_path / "run" / LOCK_FILE).exists()


def _orphans(run_dir: Path) -> list[int]:
    """Forked children of :func:`_holder` for ``run_dir``, re-parented after their parent was
    killed (only this test's: under xdist another worker's holders run at the same time)."""
    import psutil

    return [
        p.pid
        for p in psutil.process_iter(["cmdline"])
        if "os.fork()" in (cmd := " ".join(p.info["cmdline"] or [])) and repr(str(run_dir)) in cmd
    ]


def test_training_run_refuses_a_locked_output_dir(tmp_path) -> None:
    """Two trainers on one output_dir: the second is refused before it reads or writes a file."""
    from empo_gym.agents.training.config import quick_preset
    from empo_gym.agents.training.trainer import TrainingRun
    from tests.training.train_helpers import (
        BANDIT_VOCAB,
        BanditPolicy,
        bandit_rollout,
        make_tiny_model,
    )

    cfg = quick_preset("grpo", "toy", group_size=2, output_dir=str(tmp_path / "run"))
    holder = _holder(tmp_path / "run")
    try:
        with pytest.raises(RunDirBusyError, match=str(holder.pid)):
            TrainingRun(cfg, BanditPolicy(make_tiny_model(0, BANDIT_VOCAB)), bandit_rollout, [0])
        assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [LOCK_FILE]
    finally:
        holder.kill()
        holder.wait()


def test_a_training_run_under_its_callers_lock_does_not_take_it_again(tmp_path) -> None:
    """The learning agent locks the output_dir before its model loads and hands the lock to the
    trainer: the lock is taken once, and the trainer's close leaves it to its owner."""
    from empo_gym.agents.training import run_lock
    from empo_gym.agents.training.config import quick_preset
    from empo_gym.agents.training.trainer import TrainingRun
    from tests.training.train_helpers import (
        BANDIT_VOCAB,
        BanditPolicy,
        bandit_rollout,
        make_tiny_model,
    )

    cfg = quick_preset("grpo", "toy", group_size=2, output_dir=str(tmp_path / "run"))
    policy = BanditPolicy(make_tiny_model(0, BANDIT_VOCAB))
    lock = RunLock(tmp_path / "run").acquire()
    try:
        run = TrainingRun(cfg, policy, bandit_rollout, [0], resume=False, run_lock=lock)
        assert run_lock._held[lock.path][1] == 1  # held once: by the caller
        run.close()
        assert (tmp_path / "run" / LOCK_FILE).exists()  # still the caller's
    finally:
        lock.release()
    assert not (tmp_path / "run" / LOCK_FILE).exists()
    run = TrainingRun(cfg, policy, bandit_rollout, [0], resume=False)  # no lock given: its own
    assert run_lock._held[lock.path][1] == 1
    run.close()
    assert not (tmp_path / "run" / LOCK_FILE).exists()
