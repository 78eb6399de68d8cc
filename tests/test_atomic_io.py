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


# --------------------------------------------------------------------------- directories
@pytest.fixture(params=["exchange", "fallback"])
def replace_mode(request, monkeypatch) -> str:
    """Both ways atomic_dir replaces a directory: renameat2 exchange, and rename aside + in."""
    from empo_gym import atomic_io

    if request.param == "fallback":
        monkeypatch.setattr(atomic_io, "_use_renameat2", False)
    return request.param


def test_atomic_dir_publishes_replaces_and_cleans_up(tmp_path, replace_mode) -> None:
    from empo_gym.atomic_io import atomic_dir

    target = tmp_path / "model"
    for text in ("old", "new"):
        with atomic_dir(target) as tmp:
            assert tmp.parent == tmp_path and tmp.name.startswith(temp_prefix("model"))
            (tmp / "w.bin").write_text(text)
    assert (target / "w.bin").read_text() == "new"
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "w.bin").write_text("half")
        raise RuntimeError("failed mid-write")
    assert (target / "w.bin").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_exclusive_atomic_dir_keeps_the_first_copy(tmp_path, replace_mode) -> None:
    from empo_gym.atomic_io import atomic_dir

    target = tmp_path / "cache"
    with atomic_dir(target, exclusive=True) as tmp:
        (tmp / "meta.json").write_text("first")
    with pytest.raises(FileExistsError), atomic_dir(target, exclusive=True) as tmp:
        (tmp / "meta.json").write_text("second")
    assert (target / "meta.json").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]


def test_remove_dir_renames_first(tmp_path, monkeypatch) -> None:
    """A kill while the files are deleted leaves a swept temp, not a half-deleted target."""
    import os
    import shutil
    import subprocess
    import sys

    from empo_gym.atomic_io import remove_dir, sweep_dead_temps

    (tmp_path / "iter_000001").mkdir()
    (tmp_path / "iter_000001" / "state.json").write_text("{}")
    seen = []
    monkeypatch.setattr(shutil, "rmtree", lambda path, **kw: seen.append(path))  # "killed"
    remove_dir(tmp_path / "iter_000001")
    monkeypatch.undo()
    assert not (tmp_path / "iter_000001").exists()
    assert [p.name for p in tmp_path.iterdir()] == [seen[0].name]
    assert seen[0].name.startswith(temp_prefix("iter_000001")) and seen[0].name.endswith(".old")
    remove_dir(tmp_path / "missing")  # nothing to do
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    seen[0].rename(tmp_path / seen[0].name.replace(f".pid{os.getpid()}-", f".pid{dead.pid}-"))
    assert len(sweep_dead_temps(tmp_path)) == 1 and not list(tmp_path.iterdir())


def test_sigkill_at_each_point_of_a_directory_publish(tmp_path) -> None:
    """Killed at every point of atomic_dir (both ways of replacing): the old or the new copy is
    there -- with renameat2 at every moment; without, restored by the next sweep."""
    from tests.publish_kill import check

    check("toy", tmp_path)


def test_the_sweep_covers_every_temp_family(tmp_path) -> None:
    """Each family of TEMP_FAMILIES, left by a dead writer, is removed by the next sweep (an
    old copy put aside is moved back while its directory is missing)."""
    import subprocess
    import sys

    from empo_gym.atomic_io import TEMP_FAMILIES, _make_temp, sweep_dead_temps

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for present in (False, True):
        folder = tmp_path / f"target-present-{present}"
        folder.mkdir()
        if present:
            (folder / "x").mkdir()
        made = {fam: _make_temp(folder, "x", fam, pid=dead.pid) for fam in TEMP_FAMILIES}
        for family, path in made.items():
            assert path.name.startswith(temp_prefix("x", dead.pid)), family
            assert path.name.endswith(TEMP_FAMILIES[family][0]), family
            if path.is_dir():
                (path / "f").write_text(family)
        assert sorted(sweep_dead_temps(folder)) == sorted(made.values())
        assert [p.name for p in folder.iterdir()] == ["x"]
        if not present:  # the aside copy came back
            assert (folder / "x" / "f").read_text() == "aside"


def _temp_makers(tree: object) -> list[str]:
    """Calls in a module's AST that make temp names in a given folder, and string constants
    that look like hand-made temp names (``.tmp``, ``.partial``, ``.dcp-``)."""
    import ast
    import re

    assert isinstance(tree, ast.AST)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            makes = {"mkdtemp", "mkstemp", "mktemp", "NamedTemporaryFile", "TemporaryDirectory"}
            if name in makes and any(k.arg == "dir" for k in node.keywords):
                found.append(f"line {node.lineno}: {name}(dir=...)")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and re.search(r"\.(tmp|partial)\b|\.dcp-", node.value)
        ):
            found.append(f"line {node.lineno}: {node.value!r}")
    return found


def test_no_module_makes_temp_names_of_its_own() -> None:
    """Every temp in a user's folder is made by atomic_io (so the sweep knows its family); the
    module itself makes them in one function (_make_temp) of the families it sweeps."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    sources = [root / "cli.py"] + [
        p for top in ("empo_gym", "agents", "leaderboard") for p in (root / top).rglob("*.py")
    ]
    offenders = {}
    for path in sources:
        if path.name == "atomic_io.py" and path.parent.name == "empo_gym":
            continue
        found = _temp_makers(ast.parse(path.read_text(encoding="utf-8")))
        if found:
            offenders[str(path.relative_to(root))] = found
    assert offenders == {}, "make temps through empo_gym.atomic_io (atomic_dir, make_temp_dir)"
    module = ast.parse((root / "empo_gym" / "atomic_io.py").read_text(encoding="utf-8"))
    makers = [
        (func.name, call.func.attr)
        for func in ast.walk(module)
        if isinstance(func, ast.FunctionDef)
        for call in ast.walk(func)
        if isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and isinstance(call.func.value, ast.Name)
        and call.func.value.id == "tempfile"
        and call.func.attr != "gettempdir"
    ]
    assert {name for name, _ in makers} == {"_make_temp"}, makers
