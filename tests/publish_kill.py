"""SIGKILL a directory publisher at each point of its publish; report what is left on disk.

Run as ``python -m tests.publish_kill PUBLISHER OUT`` (PUBLISHER: ``toy``, ``export`` or
``weights``). For each way :func:`empo_gym.atomic_io.atomic_dir` replaces a directory
(``exchange``: one ``renameat2`` swap; ``fallback``: rename aside, rename in) and each of its
:data:`~empo_gym.atomic_io.PUBLISH_POINTS` that way passes, this process publishes the *old*
copy into ``OUT/<mode>-<point>/target``, then forks a child that publishes the *new* copy and
SIGKILLs itself at that point. Afterwards it records what the target holds (digest of its files,
None when missing), then what it holds after a reader's :func:`~empo_gym.atomic_io.restore_dirs`,
after the next publisher's :func:`~empo_gym.atomic_io.sweep_dead_temps`, and after the next
publish of the new copy, and what else is left in the folder. One JSON line on stdout:
``{"old": digest, "new": digest, "cases": [...]}``.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from empo_gym import atomic_io

#: The points each way of replacing passes, in order.
MODE_POINTS = {
    "exchange": ("started", "filled", "swapped"),
    "fallback": ("started", "filled", "aside", "placed"),
}
#: The copy the target must hold once a reader swept, by kill point.
EXPECTED = {"started": "old", "filled": "old", "swapped": "new", "aside": "old", "placed": "new"}


def digest(directory: Path) -> str | None:
    """A digest of every file's relative path and bytes under ``directory`` (None: missing)."""
    if not directory.is_dir():
        return None
    h = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(directory)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def publishers(kind: str) -> tuple[Callable[[Path], Any], Callable[[Path], Any]]:
    """``(publish old copy, publish new copy)`` of ``kind``, each given the target directory."""
    if kind == "toy":

        def toy(text: str) -> Callable[[Path], None]:
            def publish(target: Path) -> None:
                with atomic_io.atomic_dir(target) as tmp:
                    for i in range(3):
                        (tmp / f"part{i}.txt").write_text(f"{text} {i}")

            return publish

        return toy("old"), toy("new")
    import torch

    from tests.tiny_llama import tiny_llama

    torch.set_num_threads(1)  # forked children: no thread pool to inherit
    old, new = tiny_llama(64, 0), tiny_llama(64, 1)
    if kind == "export":
        from empo_gym.agents.training.engine import Engine

        engine = Engine()
        return (lambda t: engine.export(old, t)), (lambda t: engine.export(new, t))
    if kind == "weights":
        from empo_gym.agents.llm.vllm_weights import write_hf_weights

        return (lambda t: write_hf_weights(old, t)), (lambda t: write_hf_weights(new, t))
    raise ValueError(f"unknown publisher {kind!r}; expected toy, export or weights")


def kill_at(point: str, publish: Callable[[Path], Any], target: Path, mode: str) -> int:
    """Publish in a forked child that SIGKILLs itself at ``point``; its exit signal (0: none)."""
    pid = os.fork()
    if pid == 0:  # the child: never returns
        try:
            atomic_io._use_renameat2 = mode == "exchange"

            def reached(at: str) -> None:
                if at == point:
                    os.kill(os.getpid(), signal.SIGKILL)

            atomic_io._reached = reached
            publish(target)
        finally:
            os._exit(3)  # the point was not reached
    _, status = os.waitpid(pid, 0)
    return os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0


def main(kind: str, out: Path) -> dict[str, Any]:
    """Every (mode, point) case of ``kind`` under ``out``; the report printed as JSON."""
    publish_old, publish_new = publishers(kind)
    publish_old(out / "ref-old" / "target")
    publish_new(out / "ref-new" / "target")
    report: dict[str, Any] = {
        "old": digest(out / "ref-old" / "target"),
        "new": digest(out / "ref-new" / "target"),
        "cases": [],
    }
    for mode, points in MODE_POINTS.items():
        for point in points:
            folder = out / f"{mode}-{point}"
            target = folder / "target"
            publish_old(target)
            case: dict[str, Any] = {"mode": mode, "point": point}
            case["signal"] = kill_at(point, publish_new, target, mode)
            case["before"] = digest(target)  # before anything ran after the kill
            case["temps"] = sorted(p.name for p in folder.iterdir() if p.name != "target")
            atomic_io.restore_dirs(folder)  # what a reader does first (deletes nothing)
            case["after_restore"] = digest(target)
            atomic_io.sweep_dead_temps(folder)  # what the next publisher does first
            case["after_sweep"] = digest(target)
            case["left_after_sweep"] = sorted(p.name for p in folder.iterdir())
            publish_new(target)
            case["after_publish"] = digest(target)
            case["left_after_publish"] = sorted(p.name for p in folder.iterdir())
            report["cases"].append(case)
    return report


def check(kind: str, out: Path) -> list[dict[str, Any]]:
    """Run this module for ``kind`` in a fresh process and assert every case (for tests): the
    kill landed; right after it the target is the old or the new complete copy (with an
    exchange always; without one, missing only between the two renames); after a reader's
    restore and the next sweep it is the expected copy and nothing else is left; the next
    publish works."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.publish_kill", kind, str(out)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    old, new = report["old"], report["new"]
    assert old is not None and new is not None and old != new
    cases = report["cases"]
    assert [(c["mode"], c["point"]) for c in cases] == [
        (mode, point) for mode, points in MODE_POINTS.items() for point in points
    ]
    for case in cases:
        name = f"{kind}, {case['mode']}, killed at {case['point']!r}: {case}"
        expected = report[EXPECTED[case["point"]]]
        assert case["signal"] == signal.SIGKILL, name
        before = None if case["point"] == "aside" else expected
        assert case["before"] == before, name
        assert case["after_restore"] == expected, name
        assert case["after_sweep"] == expected, name
        assert case["left_after_sweep"] == ["target"], name
        assert case["after_publish"] == new, name
        assert case["left_after_publish"] == ["target"], name
    return cases


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], Path(sys.argv[2]))))
