"""``train`` under ``accelerate launch`` with 2 CPU processes (gloo), against a 1-process run.

One launch of ``distributed_train.py`` trains two cases on 2 ranks (one task per rank and
iteration, deterministic fake rollouts); the same cases are trained in this process as the
single-process reference. ``equal``: both ranks hold the same number of response tokens.
``unequal``: they do not; the update normalises every rank's loss by the global token count,
so the averaged gradient is still the global token mean.

Why ``--multi_gpu`` and not ``--cpu``: accelerate 1.x runs ``--cpu --num_processes 2`` as ONE
process unless an MPI hostfile is given; ``--multi_gpu`` goes through torchrun, and the
trainer's ``Accelerator(cpu=True)`` (no CUDA here) then joins a MULTI_CPU gloo group.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.training import distributed_train as dt
from tests.training.train_helpers import subprocess_env

pytestmark = pytest.mark.slow

SCRIPT = Path(dt.__file__).resolve()
# Rounding differs between 1 and 2 processes (other summation order); Adam turns that into
# ~1e-5 relative differences. The normalisation bug gives ~0.5.
REL_TOL = 1e-2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def launched(tmp_path_factory) -> Path:
    """Run the 2-process launch once; return its output directory."""
    out = tmp_path_factory.mktemp("distributed")
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes=2",
        "--num_machines=1",
        "--mixed_precision=no",
        "--dynamo_backend=no",
        f"--main_process_port={_free_port()}",
        str(SCRIPT),
        str(out),
    ]
    # own session: on a timeout (pytest-timeout) the launcher AND its workers are killed
    proc = subprocess.Popen(
        cmd,
        cwd=dt.ROOT,
        env=subprocess_env(HF_HOME=str(out / "hf")),  # no user accelerate config
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate()
    except pytest.fail.Exception as timeout:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(
            f"accelerate launch hung: {timeout} (deadlock in a collective?)\n"
            f"stdout:\n{stdout[-4000:]}\nstderr:\n{stderr[-8000:]}"
        )
    assert proc.returncode == 0, (
        f"accelerate launch exited {proc.returncode}\n"
        f"stdout:\n{stdout[-4000:]}\nstderr:\n{stderr[-8000:]}"
    )
    return out


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> dict[str, tuple[dict[str, torch.Tensor], list[dict]]]:
    """The same cases trained in this process: ``{case: (params, history)}``."""
    out = tmp_path_factory.mktemp("single")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        results = {}
        for case in dt.CASES:
            model, history = dt.run_case(case, out / case)
            results[case] = (dt.flat_params(model), history)
        return results
    finally:
        torch.set_num_threads(before)


def _rank(out: Path, case: str, rank: int) -> tuple[dict[str, torch.Tensor], dict]:
    from safetensors.torch import load_file

    params = load_file(str(out / case / f"rank{rank}.safetensors"))
    info = json.loads((out / case / f"rank{rank}.json").read_text())
    return params, info


def _vec(params: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([params[k].flatten().double() for k in sorted(params)])


def _rel_diff(a: dict, b: dict, init: dict) -> float:
    """|a - b| relative to how far b moved from ``init``."""
    return float((_vec(a) - _vec(b)).norm() / (_vec(b) - _vec(init)).norm())


def _tiny_init() -> torch.nn.Module:
    from tests.training.train_helpers import make_tiny_model

    return make_tiny_model(0)


@pytest.mark.parametrize("case", dt.CASES)
def test_both_ranks_end_with_identical_changed_weights(launched, case):
    (p0, i0), (p1, i1) = _rank(launched, case, 0), _rank(launched, case, 1)
    for info in (i0, i1):  # really 2 processes in one gloo group, not 2 single runs
        assert (info["world"], info["distributed_type"], info["backend"]) == (
            2,
            "MULTI_CPU",
            "gloo",
        )
        assert [h["steps"] for h in info["history"]] == [1.0] * dt.ITERATIONS
        assert all(h["skipped_steps"] == 0 for h in info["history"])
    assert p0.keys() == p1.keys()
    # all-reduced gradients are bitwise equal on both ranks, so the weights must be too
    different = [k for k in p0 if not torch.equal(p0[k], p1[k])]
    assert not different, f"ranks diverged (gradients not synchronised): {different[:5]}"
    # the ranks trained on different tasks: identical grad norms only after the all-reduce
    assert [h["grad_norm"] for h in i0["history"]] == [h["grad_norm"] for h in i1["history"]]
    init = dt.flat_params(_tiny_init())
    moved = float((_vec(p0) - _vec(init)).norm())
    assert moved > 0.1, f"weights barely changed ({moved})"


def test_equal_token_counts_match_the_single_process_run(launched, single):
    params, history = single["equal"]
    (p0, i0), (_, i1) = _rank(launched, "equal", 0), _rank(launched, "equal", 1)
    # precondition of the equivalence: each rank holds half of the global mini-batch
    for h0, h1, h in zip(i0["history"], i1["history"], history, strict=True):
        assert h0["tokens"] == h1["tokens"] == h["tokens"] / 2
    rel = _rel_diff(p0, params, dt.flat_params(_tiny_init()))
    assert rel < REL_TOL, f"2-process weights differ from the 1-process run: rel {rel:.3g}"
    # Adam hides a gradient scale error (e.g. summed instead of averaged gradients) from the
    # weights; the pre-clip gradient norm shows it
    norms = [h["grad_norm"] for h in i0["history"]]
    assert norms == pytest.approx([h["grad_norm"] for h in history], rel=1e-4)


def test_unequal_token_counts_match_the_single_process_run(launched, single):
    params, history = single["unequal"]
    (p0, i0), (_, i1) = _rank(launched, "unequal", 0), _rank(launched, "unequal", 1)
    # precondition: the ranks really held different token counts in every iteration
    for h0, h1, h in zip(i0["history"], i1["history"], history, strict=True):
        assert h0["tokens"] != h1["tokens"] and h0["tokens"] + h1["tokens"] == h["tokens"]
    rel = _rel_diff(p0, params, dt.flat_params(_tiny_init()))
    assert rel < REL_TOL, f"2-process weights differ from the 1-process run: rel {rel:.3g}"


def test_only_rank_zero_writes_metrics_and_checkpoints(launched):
    run = launched / "equal" / "run"  # shared by both ranks
    assert sorted(p.name for p in run.iterdir()) == ["checkpoints", "config.json", "metrics.jsonl"]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    # a second writer would append its own rows
    assert [r["iteration"] for r in rows] == list(range(dt.ITERATIONS))
    ckpts = run / "checkpoints"
    # no temp-dir leftovers of two processes racing on one checkpoint
    assert sorted(p.name for p in ckpts.iterdir()) == ["iter_000002", "iter_000003", "latest"]
    from safetensors.torch import load_file

    saved = load_file(str(ckpts / "iter_000003" / "model.safetensors"))
    final, _ = _rank(launched, "equal", 0)
    assert all(torch.equal(saved[k], final[k]) for k in final)
    # per-rank output dirs: rank 1 must not even create its own
    assert (launched / "unequal" / "run0" / "metrics.jsonl").exists()
    assert not (launched / "unequal" / "run1").exists()


def test_process_group_collectives_over_two_ranks(launched):
    """The trainer's one handle on the process group, joined under ``accelerate launch``: every
    collective gives both ranks the same answer, computed from both ranks' inputs."""
    answers = [json.loads((launched / f"group_rank{r}.json").read_text()) for r in (0, 1)]
    for rank, got in enumerate(answers):
        assert (got["rank"], got["world"], got["is_main"]) == (rank, 2, rank == 0)
        assert got["device"].startswith("cpu")  # accelerate's MULTI_CPU device: cpu:0
        assert got["mean"] == [0.5, 2.0]  # (0, 1) and (1, 3)
        assert got["sum"] == 2.0 and got["max"] == 4
        assert got["gather"] == [10, 11]
        assert got["broadcast"] == [1.0, 1.0, 1.0]  # rank 0's tensor everywhere
        assert got["mean_"] == [0.5, 5.0]
    assert [a["share"] for a in answers] == [[0, 2, 4], [1, 3, 5]]
