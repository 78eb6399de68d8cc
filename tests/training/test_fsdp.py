"""FSDP2 training on 2 gloo processes equals 1-process training; its DCP checkpoints resume
bit-identically.

One ``torchrun`` launch of ``fsdp_train.py`` trains every case of ``fsdp_train.CASES`` with
``backend: fsdp2`` (real ``fully_shard`` on CPU: accelerate's FSDP plugin would fall back to DDP
there) and exports each final model; the same cases are trained here in one process as the
reference. ``unequal`` cases give the ranks different numbers of turns, so without the engine's
balanced micro-batches FSDP2's collectives would deadlock (the launch then times out). fp32
weights throughout (no mixed-precision policy on CPU), so only summation order differs.
About 40 s on 2 shared cores (the launch) + 5 s (the references).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.training import fsdp_train as ft
from tests.training.train_helpers import subprocess_env

pytestmark = pytest.mark.slow

SCRIPT = Path(ft.__file__).resolve()
REL_TOL = 1e-5


def _launch(out: Path, *args: str) -> subprocess.Popen:
    """``torchrun`` of fsdp_train.py on 2 processes, in its own session (killed as a group);
    output in files (no pipe can fill up while the test waits)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    n = len(list(out.glob("launch*.err")))
    with (out / f"launch{n}.out").open("wb") as so, (out / f"launch{n}.err").open("wb") as se:
        return subprocess.Popen(
            [*cmd, str(SCRIPT), str(out), *args],
            cwd=ft.ROOT,
            env=subprocess_env(HF_HOME=str(out / "hf")),
            stdout=so,
            stderr=se,
            start_new_session=True,
        )


def _logs(out: Path) -> str:
    errs = sorted(out.glob("launch*.err"))
    return errs[-1].read_text(errors="replace")[-8000:] if errs else ""


def _wait(proc: subprocess.Popen, out: Path) -> None:
    try:
        rc = proc.wait()
    except pytest.fail.Exception as timeout:  # pytest-timeout: stop the launch, show its logs
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail(f"torchrun hung: {timeout}\n{_logs(out)}")
    assert rc == 0, f"torchrun exited {rc}\n{_logs(out)}"


@pytest.fixture(scope="module")
def launched(tmp_path_factory) -> Path:
    """Run the 2-process FSDP2 launch once; return its output directory."""
    out = tmp_path_factory.mktemp("fsdp")
    _wait(_launch(out), out)
    return out


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> dict[str, tuple[dict[str, torch.Tensor], list[dict]]]:
    """Every case trained in this process: ``{case: (weights, history)}``."""
    out = tmp_path_factory.mktemp("single")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        results = {}
        for case in ft.CASES:
            policy, result = ft.run_case(case, out / case)
            results[case] = (ft.trained_weights(policy), result.history)
        return results
    finally:
        torch.set_num_threads(before)


def _exported(run_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    files = sorted((run_dir / "model").glob("*.safetensors"))
    assert len(files) == 1, f"expected one exported weights file, got {files}"
    return load_file(str(files[0]))


def _vec(params: dict[str, torch.Tensor], keys: list[str]) -> torch.Tensor:
    return torch.cat([params[k].flatten().double() for k in keys])


def _initial(case: str) -> dict[str, torch.Tensor]:
    return ft.trained_weights(ft.make_policy(case))


@pytest.mark.parametrize("case", ft.CASES)
def test_fsdp2_matches_the_single_process_run(launched, single, case):
    ref, history = single[case]
    got = _exported(launched / case / "run")
    # the export keeps the model's own names: the same keys as the unsharded model's
    assert sorted(got) == sorted(ref)
    keys = sorted(ref)
    init = _initial(case)
    moved = float((_vec(ref, keys) - _vec(init, keys)).norm())
    assert moved > 1e-3, f"the reference barely trained ({moved})"
    rel = float((_vec(got, keys) - _vec(ref, keys)).norm()) / moved
    assert rel < REL_TOL, f"FSDP2 weights differ from the 1-process run: rel {rel:.3g}"
    infos = [json.loads((launched / case / f"rank{r}.json").read_text()) for r in (0, 1)]
    for info in infos:
        assert (info["world"], info["backend"]) == (2, "gloo")
        assert [h["steps"] for h in info["history"]] == [1.0] * ft.ITERATIONS
    # the pre-clip gradient norm is global (over every shard and rank)
    norms = [h["grad_norm"] for h in infos[0]["history"]]
    assert norms == pytest.approx([h["grad_norm"] for h in history], rel=1e-4)
    turns = [[h["turns"] for h in info["history"]] for info in infos]
    if case.startswith("unequal"):  # precondition: ranks held different numbers of turns
        assert all(a != b for a, b in zip(*turns, strict=True)), turns
    else:
        assert turns[0] == turns[1]


def test_dcp_checkpoint_resumes_bit_identically(launched):
    infos = [json.loads((launched / "resumed" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [i["resumed_from"] for i in infos] == [2, 2]
    ckpt = launched / "resumed" / "checkpoints" / "iter_000002"
    assert (ckpt / "dcp" / ".metadata").exists() and not (ckpt / "model.safetensors").exists()
    resumed = _exported(launched / "resumed")
    straight = _exported(launched / ft.RESUME_CASE / "run")
    different = [k for k in straight if not torch.equal(straight[k], resumed[k])]
    assert not different, f"resumed run differs from the uninterrupted one: {different[:5]}"
    # and the iteration after the resume logged the same metrics as the uninterrupted run
    rows = [
        json.loads(line)
        for line in (launched / "resumed" / "metrics.jsonl").read_text().splitlines()
    ]
    ref_rows = [
        json.loads(line)
        for line in (launched / ft.RESUME_CASE / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["loss"] for r in rows] == [r["loss"] for r in ref_rows]


def test_sigkill_inside_a_sharded_checkpoint_write_then_resume(launched, tmp_path):
    """Kill both ranks while rank 0 publishes checkpoint 3 (its DCP shards already in the
    temporary directory): checkpoint 2 stays the latest, and the resumed run ends bit for bit
    where the uninterrupted one does."""
    marker = tmp_path / "marker"
    proc = _launch(tmp_path, "3", str(marker))
    try:
        while not marker.exists():
            assert proc.poll() is None, (
                f"exited {proc.returncode} before its kill point\n{_logs(tmp_path)}"
            )
            time.sleep(0.05)
    except pytest.fail.Exception as timeout:  # pytest-timeout: stop the launch, show its logs
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"no kill point: {timeout}\n{_logs(tmp_path)}")
    _kill_launch(proc)
    ckpts = tmp_path / "killed" / "checkpoints"
    assert (ckpts / "latest").read_text().strip() == "iter_000002"
    assert not (ckpts / "iter_000003").exists()
    assert list(ckpts.glob(".iter_000003.*/dcp/.metadata")), "shards were not staged"
    _wait(_launch(tmp_path, "0"), tmp_path)  # the same command again: resume
    infos = [json.loads((tmp_path / "killed" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [i["resumed_from"] for i in infos] == [2, 2]
    assert not list(ckpts.glob(".iter_*")) and not list(ckpts.glob(".dcp-*"))
    resumed = _exported(tmp_path / "killed")
    straight = _exported(launched / ft.RESUME_CASE / "run")
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)


def _kill_launch(proc: subprocess.Popen) -> None:
    """SIGKILL torchrun and its ranks (torchrun starts each rank in a session of its own, so
    killing torchrun's process group alone leaves them running), and wait until all are gone."""
    import psutil

    ranks = psutil.Process(proc.pid).children(recursive=True)
    os.killpg(proc.pid, signal.SIGKILL)
    for p in ranks:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    proc.wait(timeout=30)

    def running(p: psutil.Process) -> bool:  # a zombie has exited, only not been reaped
        try:
            return p.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    deadline = time.monotonic() + 60
    while any(running(p) for p in ranks):
        assert time.monotonic() < deadline, "ranks still run 60 s after SIGKILL"
        time.sleep(0.1)
