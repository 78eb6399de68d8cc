"""The rollout benchmark on the tiny model (shape of the result, not speed)."""

from __future__ import annotations

import json

import pytest

from empo_gym.bench.rollout import SyntheticTextEnv, run_rollout_bench


def test_bench_reports_the_required_keys(tiny_policy):
    lines = []
    result = run_rollout_bench(
        policy=tiny_policy, group_size=3, turns=2, max_new_tokens=4, log=lines.append
    )
    for key in (
        "batched_tok_s",
        "sequential_tok_s",
        "batched_vs_sequential_ratio",
        "generate_ceiling_ratio",
    ):
        assert result[key] is not None and result[key] > 0
    assert result["batch_sizes"] == [3, 3]
    assert result["group_size"] == 3 and lines
    json.dumps(result)


def test_bench_rejects_unknown_env(tiny_policy):
    with pytest.raises(ValueError, match="expected 'synthetic' or 'scienceworld'"):
        run_rollout_bench(policy=tiny_policy, env="nope", log=lambda s: None)


def test_synthetic_env_is_deterministic():
    a, b = SyntheticTextEnv(3), SyntheticTextEnv(3)
    assert a.reset(seed=5) == b.reset(seed=5)
    assert a.step("go to kitchen")[0] == b.step("go to kitchen")[0]


@pytest.mark.slow
def test_bench_with_default_model(smol_policy):
    import torch

    threads = torch.get_num_threads()
    try:  # one thread: much faster than two on a busy shared CPU
        result = run_rollout_bench(
            policy=smol_policy,
            group_size=4,
            turns=1,
            max_new_tokens=8,
            threads=1,
            log=lambda s: None,
        )
    finally:
        torch.set_num_threads(threads)
    assert result["batched_tok_s"] > 0 and result["generate_ceiling_ratio"] > 0
