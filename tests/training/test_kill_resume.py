"""A run SIGKILLed mid-iteration loses no memory entries and no finished checkpoint, and its
resume ends exactly where an uninterrupted run ends.

``kill_train.py`` trains EMPO² (every iteration a memory rollout, a checkpoint every iteration,
a real ``EMPO`` over a hashing ``MemoryStore``) in a subprocess. At iteration index
:data:`K` it stops at a kill point, writes a marker file and sleeps; the test then kills it with
SIGKILL (no handler, no ``finally`` runs), inspects what is on disk and re-runs the same script,
which resumes. An uninterrupted run of the same script in another directory is the reference.

Kill points (``kill_train.STAGES``):

* ``rollout``: in the middle of iteration K's rollouts;
* ``checkpoint``: inside the write of checkpoint K+1 (memory already in the temporary dir);
* ``metrics``: when iteration K's metrics line is appended (the trainer has already
  published checkpoint K+1 then);
* ``torn``: the same, with half of the line written: a kill inside the append.

The metrics row travels inside each checkpoint (a kill between publishing the checkpoint and
appending the line loses nothing), a torn last line is dropped, and the novelty counts are
checkpointed with the store.
All subprocesses (about 6 s each, mostly imports) run two at a time: ~25 s on 2 idle cores.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tests.training import kill_train as kt
from tests.training.train_helpers import subprocess_env

pytestmark = pytest.mark.slow

SCRIPT = Path(kt.__file__).resolve()
K = 2
"""Iteration index the kill points block in (K iterations completed before it)."""
N = kt.ITERATIONS
PER_ITER = kt.ENTRIES_PER_ITERATION
TIMING = re.compile(r"(_s|memory_share)$")
"""Metrics keys that are wall-clock timings (everything else is deterministic)."""
MID_ITERATION = ("rollout", "checkpoint")
"""Kill points before checkpoint K+1 is published (the others may come after it)."""


# --- subprocesses ---------------------------------------------------------------------------


class Script:
    """One launch of kill_train.py with its stdout / stderr in files (no pipe can fill up)."""

    live: list[Script] = []
    """Every launch of this module (the fixture and a timed-out test stop those still running)."""
    stopped = False
    """Set by a timed-out test: the launches still queued fail at once instead of running."""

    def __init__(self, out_dir: Path, *args: str) -> None:
        assert not Script.stopped, "not launched: an earlier test of this module timed out"
        self.out_dir = out_dir
        logs = out_dir.parent / "logs"
        logs.mkdir(exist_ok=True)
        n = len(list(logs.glob(f"{out_dir.name}.*.err")))
        self.stdout_path = logs / f"{out_dir.name}.{n}.out"
        self.stderr_path = logs / f"{out_dir.name}.{n}.err"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(SCRIPT), str(out_dir), *args],
                cwd=kt.ROOT,
                env=subprocess_env(),
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        Script.live.append(self)

    def logs(self) -> str:
        out = self.stdout_path.read_text(errors="replace")[-2000:]
        err = self.stderr_path.read_text(errors="replace")[-6000:]
        return f"\n--- {self.out_dir.name} stdout:\n{out}\n--- stderr:\n{err}"

    def wait(self) -> dict[str, Any]:
        """Wait for a clean exit; return the summary line the script prints."""
        rc = self.proc.wait()  # a hang: pytest-timeout fails the test, which stops every launch
        assert rc == 0, f"kill_train.py exited {rc}{self.logs()}"
        return json.loads(self.stdout_path.read_text().strip().splitlines()[-1])

    def kill_at_marker(self, marker: Path) -> None:
        """Wait for the kill point's marker, then SIGKILL the process."""
        while not marker.exists():
            rc = self.proc.poll()
            assert rc is None, f"exited {rc} before reaching its kill point{self.logs()}"
            time.sleep(0.05)
        os.kill(self.proc.pid, signal.SIGKILL)
        rc = self.proc.wait(timeout=30)
        assert rc == -signal.SIGKILL, f"expected death by SIGKILL, got {rc}{self.logs()}"


def _kill_then_resume(base: Path, stage: str, backend: str) -> dict[str, Any]:
    """Kill a run at ``stage``, snapshot what the kill left, re-run the script (resume)."""
    out, marker = base / stage, base / f"{stage}.marker"
    args = ("--kill-at", str(K), "--stage", stage, "--marker", str(marker), "--backend", backend)
    Script(out, *args).kill_at_marker(marker)
    assert marker.read_text().split() == [stage, str(K)]
    snapshot = base / f"{stage}-killed"
    shutil.copytree(out, snapshot)  # the resume changes ``out``
    found: dict[str, Any] = {"killed": snapshot, "resume": Script(out, "--backend", backend)}
    try:
        found["summary"] = found["resume"].wait()
    except AssertionError as exc:
        found["error"] = str(exc)
    return found


@pytest.fixture(scope="module", params=["ddp", "fsdp2"])
def runs(request, tmp_path_factory) -> Iterator[dict[str, Future]]:
    """All launches, two at a time: the reference run and one kill-and-resume per stage, with
    each backend (``fsdp2``: real FSDP2 shards over a 1-process gloo group, DCP checkpoints)."""
    backend = request.param
    Script.stopped = False
    base = tmp_path_factory.mktemp(f"kill_resume_{backend}")
    pool = ThreadPoolExecutor(max_workers=2)
    futures: dict[str, Future] = {}

    def reference() -> dict[str, Any]:
        return {"summary": Script(base / "ref", "--backend", backend).wait(), "dir": base / "ref"}

    futures["ref"] = pool.submit(reference)
    for stage in kt.STAGES:
        futures[stage] = pool.submit(_kill_then_resume, base, stage, backend)
    try:
        yield futures
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        _stop_live()


# --- reading what a run left on disk --------------------------------------------------------
def _ckpt_root(run_dir: Path) -> Path:
    return run_dir / "checkpoints"


def _weights(ckpt: Path) -> dict[str, torch.Tensor]:
    """A checkpoint's weights: model.safetensors, or (FSDP2) the DCP shards read without a
    process group."""
    from safetensors.torch import load_file

    if not (ckpt / "dcp").is_dir():
        return load_file(str(ckpt / "model.safetensors"))
    import torch.distributed.checkpoint as dcp

    from tests.training.train_helpers import BANDIT_VOCAB, make_tiny_model

    template = {
        k: torch.empty_like(v) for k, v in make_tiny_model(1, BANDIT_VOCAB).state_dict().items()
    }
    dcp.load({"model": template}, checkpoint_id=str(ckpt / "dcp"), no_dist=True)
    return template


def _memory(ckpt: Path) -> tuple[list[dict], dict[str, Any]]:
    """Entries (oldest first) and per-partition key embeddings of a checkpoint's memory file."""
    from empo_gym.agents.training.empo import STORE_FILE
    from empo_gym.memory import MemoryStore

    store = MemoryStore.load(ckpt / STORE_FILE)
    return [e.to_json() for e in store.entries()], {
        s: store.embeddings(s) for s in store.partitions()
    }


def _same_memory(a: Path, b: Path) -> bool:
    (ea, va), (eb, vb) = _memory(a), _memory(b)
    return ea == eb and va.keys() == vb.keys() and all(np.array_equal(va[s], vb[s]) for s in va)


def _rows(run_dir: Path, *, torn_tail: bool = False) -> list[dict[str, Any]]:
    """The metrics rows; every line complete (``torn_tail``: but for an unparsable last one)."""
    lines = (run_dir / "metrics.jsonl").read_text().split("\n")
    tail = lines.pop()  # "" when the file ends with a newline
    if torn_tail:
        assert tail, "expected a half-written last metrics line"
        with pytest.raises(json.JSONDecodeError):
            json.loads(tail)
    else:
        assert tail == "", f"last metrics line is incomplete: {tail[:200]!r}"
    return [json.loads(line) for line in lines]


def _last_checkpoint(stage: str, killed: Path) -> int:
    """Iterations held by the newest checkpoint a kill at ``stage`` leaves finished."""
    if stage in MID_ITERATION:
        return K
    # the metrics line may be written before or after the checkpoint: either is correct
    name = (_ckpt_root(killed) / "latest").read_text().strip()
    assert name in (f"iter_{K:06d}", f"iter_{K + 1:06d}"), name
    return int(name.removeprefix("iter_"))


def _deterministic(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if not TIMING.search(k)}


def _iterations_in(entries: list[dict]) -> list[int]:
    """Iteration each memory entry was written in (from its unique state key)."""
    return [int(re.match(r"iteration (\d+) ", e["key"]).group(1)) for e in entries]


def _stop_live() -> None:
    """Kill the launches still running (only the processes this module started); no new ones."""
    Script.stopped = True
    for script in Script.live:
        if script.proc.poll() is None:
            script.proc.kill()
            script.proc.wait(timeout=30)


def _result(runs: dict[str, Future], name: str) -> dict[str, Any]:
    try:
        return runs[name].result()
    except pytest.fail.Exception as timeout:  # pytest-timeout: stop every launch (the other
        _stop_live()  # tests then fail at once, not after their own timeouts), show the logs
        pytest.fail(f"{timeout}\n" + "".join(script.logs() for script in Script.live))


# --- the tests ------------------------------------------------------------------------------
def test_reference_run_writes_every_iteration(runs):
    ref = _result(runs, "ref")
    assert ref["summary"] == {
        "resumed_from": 0,
        "iterations": N,
        "history": list(range(N)),
        "memory_size": N * PER_ITER,
    }
    ckpts = _ckpt_root(ref["dir"])
    fsdp2 = ref["dir"].parent.name.startswith("kill_resume_fsdp2")
    assert (ckpts / "iter_000001" / "dcp").is_dir() == fsdp2  # FSDP2 writes DCP shards
    assert (ref["dir"] / "model" / "config.json").exists() == fsdp2  # and exports one model
    assert sorted(p.name for p in ckpts.iterdir()) == [
        *(f"iter_{i:06d}" for i in range(1, N + 1)),
        "latest",
    ]
    rows = _rows(ref["dir"])
    assert [r["iteration"] for r in rows] == list(range(N))
    assert [r["memory_size"] for r in rows] == [PER_ITER * (i + 1) for i in range(N)]
    assert {r["rollout_mode"] for r in rows} == {"memory"}
    assert {r["update_mode"] for r in rows} == {"off_policy", "on_policy_tips"}
    # training really moves the weights (an update that silently does nothing would make the
    # weight comparisons below vacuous)
    first, last = _weights(ckpts / "iter_000001"), _weights(ckpts / f"iter_{N:06d}")
    assert any(not torch.equal(first[k], last[k]) for k in first)


@pytest.mark.parametrize("stage", kt.STAGES)
def test_kill_leaves_only_complete_checkpoints(runs, stage):
    """(1) + (2): every listed checkpoint is complete and loads; ``latest`` names the newest
    finished one; its memory holds exactly the entries of the iterations it covers."""
    from empo_gym.agents.training.checkpoint import (
        latest_checkpoint,
        list_checkpoints,
        load_checkpoint,
    )
    from empo_gym.agents.training.empo import EMPO
    from empo_gym.agents.training.update import make_optimizer
    from empo_gym.memory import MemoryStore
    from tests.training.train_helpers import BANDIT_VOCAB, make_tiny_model

    found, ref = _result(runs, stage), _result(runs, "ref")
    root, ref_root = _ckpt_root(found["killed"]), _ckpt_root(ref["dir"])
    last = _last_checkpoint(stage, found["killed"])
    names = sorted(p.name for p in root.iterdir())
    complete = [f"iter_{i:06d}" for i in range(1, last + 1)]
    assert [p.name for p in list_checkpoints(root)] == complete, names
    assert (root / "latest").read_text().strip() == complete[-1]
    assert latest_checkpoint(root) == root / complete[-1]
    leftovers = [n for n in names if n not in (*complete, "latest")]
    if stage == "checkpoint":  # killed inside save_checkpoint: its temporary dir, unpublished
        assert len(leftovers) == 1 and leftovers[0].startswith(
            f".iter_{last + 1:06d}.pid"
        )  # its temp dir
        partial = root / leftovers[0]
        assert (partial / "memory.safetensors").exists()
        assert not (partial / "state.json").exists()
    else:
        assert leftovers == [], names

    cfg = kt.make_config(found["killed"], novelty=False)
    for i, name in enumerate(complete, start=1):
        ckpt = root / name
        model = make_tiny_model(1, BANDIT_VOCAB)  # other init: loading must overwrite it
        sharded = (ckpt / "dcp").is_dir()  # FSDP2: the weights are DCP shards
        state = load_checkpoint(
            ckpt,
            None if sharded else model,
            None if sharded else make_optimizer(model, cfg),
            trainer_rng=random.Random(),
            restore_rng=False,
        )
        assert state.iteration == i
        ref_ckpt = ref_root / name
        saved = _weights(ref_ckpt)
        loaded = _weights(ckpt) if sharded else dict(model.named_parameters())
        assert all(torch.equal(loaded[n], saved[n]) for n in saved), name
        hooks = EMPO(cfg, store=MemoryStore("hashing"))  # cfg: no novelty
        hooks.load(ckpt)
        assert hooks.size() == i * PER_ITER, f"{name}: {hooks.size()} memory entries"
        entries, _ = _memory(ckpt)
        # exactly PER_ITER entries of each of the first i iterations, none of a later one
        written = sorted(_iterations_in(entries))
        assert written == [j for j in range(i) for _ in range(PER_ITER)], name
        assert _same_memory(ckpt, ref_ckpt), f"{name}: memory differs from the reference"


@pytest.mark.parametrize("stage", kt.STAGES)
def test_kill_leaves_complete_metrics_lines(runs, stage):
    """(3): K whole lines (iterations 0..K-1), the reference's lines but for timings; after a
    kill inside the append (``torn``) also the half line the process really wrote."""
    found, ref = _result(runs, stage), _result(runs, "ref")
    rows = _rows(found["killed"], torn_tail=stage == "torn")
    assert [r["iteration"] for r in rows] == list(range(K))
    ref_rows = _rows(ref["dir"])
    assert [_deterministic(r) for r in rows] == [_deterministic(r) for r in ref_rows[:K]]


@pytest.mark.parametrize("stage", kt.STAGES)
def test_resume_matches_the_uninterrupted_run(runs, stage):
    """(4): the resumed run finishes all iterations with bit-identical weights and memory."""
    found, ref = _result(runs, stage), _result(runs, "ref")
    assert "error" not in found, found.get("error")
    start = _last_checkpoint(stage, found["killed"])
    assert found["summary"] == {
        "resumed_from": start,
        "iterations": N,
        "history": list(range(start, N)),
        "memory_size": N * PER_ITER,
    }, found["resume"].logs()
    root, ref_root = _ckpt_root(found["resume"].out_dir), _ckpt_root(ref["dir"])
    assert (root / "latest").read_text().strip() == f"iter_{N:06d}"
    for i in range(1, N + 1):  # the kept checkpoints and the re-done ones
        name = f"iter_{i:06d}"
        a, b = _weights(root / name), _weights(ref_root / name)
        assert a.keys() == b.keys()
        differ = [k for k in a if not torch.equal(a[k], b[k])]
        assert not differ, f"{name}: weights differ from the uninterrupted run: {differ[:4]}"
        assert _same_memory(root / name, ref_root / name), f"{name}: memory differs"
    # the metrics lines that exist agree with the uninterrupted run's
    ref_rows = {r["iteration"]: _deterministic(r) for r in _rows(ref["dir"])}
    for row in _rows(found["resume"].out_dir):
        assert _deterministic(row) == ref_rows[row["iteration"]], row["iteration"]


@pytest.mark.parametrize("stage", kt.STAGES)
def test_resumed_metrics_hold_every_iteration_once(runs, stage):
    found = _result(runs, stage)
    assert "error" not in found, found.get("error")
    iterations = [r["iteration"] for r in _rows(found["resume"].out_dir)]
    assert iterations == list(range(N))


def test_resume_with_novelty_matches_the_uninterrupted_run(tmp_path):
    """EMPOAgent's setup (intrinsic reward on); the kill simulated in-process (``stop_after``):
    what a resume restores does not depend on how the process died."""
    ref = kt.run(tmp_path / "ref", novelty=True)
    killed = kt.run(tmp_path / "run", novelty=True, stop_after=K)
    resumed = kt.run(tmp_path / "run", novelty=True)
    assert (ref["iterations"], killed["iterations"]) == (N, K)
    assert resumed["resumed_from"] == K and resumed["iterations"] == N
    intrinsic = [[r["intrinsic"] for r in _rows(tmp_path / d)] for d in ("ref", "run")]
    assert intrinsic[0] == intrinsic[1]
    last = f"checkpoints/iter_{N:06d}"
    a, b = _weights(tmp_path / "ref" / last), _weights(tmp_path / "run" / last)
    assert all(torch.equal(a[k], b[k]) for k in a)
