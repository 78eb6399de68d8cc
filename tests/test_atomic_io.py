"""Atomic writes: the old file survives a failed write and no temp file is left behind."""

from __future__ import annotations

import pytest

from empo_gym.atomic_io import atomic_path, temp_prefix, write_json_atomic, write_text_atomic


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path) -> None:
    target = tmp_path / "sub" / "f.txt"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert sorted(p.name for p in target.parent.iterdir()) == ["f.txt"]


def test_json_round_trip(tmp_path) -> None:
    write_json_atomic(tmp_path / "x.json", {"é": [1, 2]}, ensure_ascii=False)
    assert (tmp_path / "x.json").read_text(encoding="utf-8") == '{"é": [1, 2]}'


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_killed_writers_temp_file_is_swept_by_the_next_writer(tmp_path) -> None:
    """kill -9 during a write leaves its temp file; the next write in that folder removes it
    (the writer's pid is in the name) but keeps a live writer's."""
    import os
    import signal
    import subprocess
    import sys

    big = tmp_path / "big.bin"
    code = (
        "import sys, time\n"
        "from empo_gym.atomic_io import atomic_path\n"
        f"with atomic_path({str(big)!r}) as tmp:\n"
        "    tmp.write_bytes(b'x' * 1_000_000)\n"
        "    print('writing', flush=True)\n"
        "    time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
    leftover = [p for p in tmp_path.iterdir() if p.name.startswith(".big.bin.")]
    assert len(leftover) == 1 and leftover[0].name.startswith(temp_prefix("big.bin", proc.pid))
    write_text_atomic(tmp_path / "other.txt", "while it is alive")
    assert leftover[0].exists()  # a live writer's temp file stays
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert leftover[0].exists()  # killed: nothing cleaned up
    stale_dir = tmp_path / (temp_prefix("iter_000002", _dead_pid()) + "abcd_123.tmp")
    stale_dir.mkdir()  # a killed checkpoint save's directory
    elsewhere = tmp_path / f".r.json.pid{_dead_pid()}-0000beef.abcd_123.tmp"
    elsewhere.write_text("another machine's writer (shared folder): its pid means nothing here")
    write_text_atomic(tmp_path / "other.txt", "next write")
    assert sorted(p.name for p in tmp_path.iterdir()) == [elsewhere.name, "other.txt"]


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_files_follow_the_umask(tmp_path, umask) -> None:
    import os

    from empo_gym.atomic_io import make_temp_dir

    old = os.umask(umask)
    try:
        path = write_text_atomic(tmp_path / "f.json", "{}")
        directory = make_temp_dir(tmp_path, "ckpt")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    assert directory.stat().st_mode & 0o777 == 0o777 & ~umask


def test_exclusive_write_never_replaces(tmp_path) -> None:
    target = tmp_path / "r.json"
    write_text_atomic(target, "first", exclusive=True)
    with pytest.raises(FileExistsError):
        write_text_atomic(target, "second", exclusive=True)
    assert target.read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: (d / "f").write_text("x") and d / "f", "is a file"),
        (lambda d: (d / "f").write_text("x") and d / "f" / "sub", "which is a file"),
        (lambda d: __import__("pathlib").Path("/proc/self/new"), "is not writable"),
    ],
)
def test_check_writable_dir_names_the_problem_and_creates_nothing(tmp_path, make, message):
    from empo_gym.atomic_io import check_writable_dir

    path = make(tmp_path)
    before = sorted(tmp_path.iterdir())
    with pytest.raises(ValueError, match=message):
        check_writable_dir(path, "out_dir")
    assert sorted(tmp_path.iterdir()) == before
    check_writable_dir(tmp_path / "new" / "deeper", "out_dir")
    assert not (tmp_path / "new").exists()


def test_results_memory_files_and_checkpoints_follow_the_umask(tmp_path) -> None:
    """They were 0600 (tempfile's mode); now what ``open`` would give: 0644 under umask 022."""
    import os
    import stat

    from empo_gym import leaderboard as lb
    from empo_gym.agents.scripted.random_agent import RandomAgent
    from empo_gym.agents.training.checkpoint import save_checkpoint
    from empo_gym.harness import evaluate
    from empo_gym.memory import MemoryEntry, MemoryStore
    from tests.training.train_helpers import make_tiny_model

    old = os.umask(0o022)
    try:
        result = evaluate(RandomAgent(seed=0), "guess", episodes=1)
        row = lb.write_entry(lb.entry_from_result(result, agent=RandomAgent()), tmp_path / "lb")
        store = MemoryStore("hashing")
        store.add([MemoryEntry("tip", key="state", score=1.0, partition="s")])
        memory = store.save(tmp_path / "m.memory.safetensors")
        ckpt = save_checkpoint(tmp_path / "ckpts", 1, make_tiny_model(0))
    finally:
        os.umask(old)
    files = [row, memory, ckpt / "model.safetensors", ckpt / "state.json", ckpt.parent / "latest"]
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    assert stat.S_IMODE(ckpt.stat().st_mode) == 0o755
