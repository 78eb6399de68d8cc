"""``scripts/gpu_check.sh`` runs end to end on CPU with a tiny shape (FSDP2 over a 1-process
gloo group, bf16 compute over fp32 masters). About 25 s on 2 shared cores (mostly imports)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.training.train_helpers import subprocess_env

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_check_script_reports_every_figure_on_cpu():
    cmd = [
        str(ROOT / "scripts" / "gpu_check.sh"),
        *("--shape", "tiny", "--device", "cpu", "--compute-dtype", "bfloat16"),
        *("--prompt-tokens", "48", "--rows", "4", "--rollout-rows", "2", "--rollout-tokens", "8"),
    ]
    env = subprocess_env(PYTHON=sys.executable)
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["device"] == "cpu" and out["compute_dtype"] == "bfloat16"
    assert out["peak_gb"] is None  # measured on CUDA only
    assert out["update_tok_s"] > 0 and out["rollout_tok_s"] > 0
    # fp32 masters: one lr-1e-6 step moves every watched entry that had a gradient
    assert out["fp32_update_entries"] > 1000 and out["fp32_update_changed"] > 0.99
