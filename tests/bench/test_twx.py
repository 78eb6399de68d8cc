"""``empo-gym bench twx``: the figures it reports (short run on the real JVM)."""

from __future__ import annotations

import pytest

from empo_gym.bench.twx import run_twx_bench

pytestmark = pytest.mark.slow


def test_bench_reports_ratio_rss_and_start_cost() -> None:
    lines: list[str] = []
    metrics = run_twx_bench(game="twc", steps=60, rounds=1, log=lines.append)
    assert metrics["bench"] == "twx" and metrics["game"] == "twc"
    assert 0 < metrics["wrapper_overhead_ratio"] < 10
    assert metrics["jvm_rss_mb_capped"] > 0 and metrics["jvm_heap_cap_mb"] == 128
    assert metrics["jvm_start_ms"] > metrics["reset_ms"] > 0
    assert any("round 1/1" in line for line in lines)
