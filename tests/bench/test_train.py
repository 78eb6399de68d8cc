"""``empo-gym bench train``: GRPO and EMPO² iterations side by side on the bandit of the trainer
tests, and ``--rollout-backend vllm`` over a stand-in vLLM server (tiny model)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from empo_gym.agents.llm.transformers_policy import TransformersPolicy
from empo_gym.agents.llm.vllm_weights import write_hf_weights
from empo_gym.agents.training.config import GRPOConfig
from empo_gym.agents.training.empo import EMPOConfig
from empo_gym.bench.train import compare_iteration_cost, run_backend_bench
from empo_gym.cli import app
from tests.llm.vllm_standin import StandInVLLM
from tests.training.test_engine_integration import _byte_policy
from tests.training.train_helpers import (
    BANDIT_VOCAB,
    BanditPolicy,
    ListMemory,
    bandit_rollout,
    make_tiny_model,
)

# the bandit settings of tests/training/test_trainer.py
TASKS = [0, 1, 2, 3]
COMMON = dict(
    tasks_per_iter=4,
    group_size=8,
    lr=1e-2,
    weight_decay=0.0,
    micro_batch_size=32,
    checkpoint_every=0,
)


def test_bench_compares_equal_settings():
    common = dict(COMMON, iterations=4, skip_zero_advantage=False)
    lines: list[str] = []
    out = compare_iteration_cost(
        GRPOConfig(**common),
        EMPOConfig(**common),
        lambda: BanditPolicy(make_tiny_model(0, BANDIT_VOCAB)),
        bandit_rollout,
        TASKS,
        lambda: ListMemory(EMPOConfig(**common)),
        log=lines.append,
    )
    for key in (
        "grpo_s_per_iter",
        "empo_s_per_iter",
        "empo_vs_grpo_iteration_ratio",
        "paired_ratio_median",
        "empo_vs_grpo_ratio_skipping_zero_adv",
        "memory_share_of_iteration",
        "update_tok_s",
        "update_forward_tok_s",
    ):
        assert out[key] > 0, key
    assert out["iterations"] == 3 and sum(out["empo_modes"].values()) == 4
    # side by side: the runs alternate, and which one goes first alternates too
    order = [line.split()[4].rstrip(":") for line in lines]
    assert order == ["grpo", "empo", "empo", "grpo", "grpo", "empo", "empo", "grpo"]
    with pytest.raises(ValueError, match="unequal settings: group_size is 8 for GRPO, 4"):
        compare_iteration_cost(
            GRPOConfig(**common),
            EMPOConfig(**dict(common, group_size=4)),
            lambda: None,
            bandit_rollout,
            TASKS,
        )


@pytest.mark.slow  # two tiny-model training runs, ~20 s
def test_backend_bench_reports_both_backends_and_the_sync_time(tmp_path):
    policy = _byte_policy()
    model_dir = write_hf_weights(policy.model, tmp_path / "m", policy.tokenizer)
    with StandInVLLM(TransformersPolicy(str(model_dir))) as server:
        out = run_backend_bench(
            "doors",
            iterations=2,
            warmup=1,
            model=str(model_dir),
            vllm_urls=[server.url],
            overrides={"tasks_per_iter": 1, "group_size": 2, "max_steps": 5},
            log=lambda line: None,
        )
        reloads = [p for p, _ in server.log if p == "/collective_rpc"]
    assert out["iterations"] == 1 and out["vllm_servers"] == "given"
    assert out["local_s_per_iter"] > 0 and out["vllm_s_per_iter"] > 0
    assert len(out["weight_sync_s"]) == 2 == len(reloads)  # one sync per iteration
    assert out["weight_sync_s_median"] > 0


@pytest.mark.parametrize("value", ["sglang", "LOCAL"])
def test_cli_rejects_an_unknown_rollout_backend(value):
    res = CliRunner().invoke(app, ["bench", "train", "--rollout-backend", value])
    assert res.exit_code != 0
    assert f"--rollout-backend {value!r}; expected 'local' or 'vllm'" in res.output


@pytest.mark.slow  # two tiny-model training runs through the CLI, ~10 s
def test_cli_bench_train_vllm_prints_json_last_line(tmp_path):
    import json

    policy = _byte_policy()
    model_dir = write_hf_weights(policy.model, tmp_path / "m", policy.tokenizer)
    with StandInVLLM(TransformersPolicy(str(model_dir))) as server:
        res = CliRunner().invoke(
            app,
            [
                "bench", "train", "--rollout-backend", "vllm", "--vllm-url", server.url,
                "--model", str(model_dir), "--env", "doors", "--iterations", "2",
                "--warmup", "1", "--tasks-per-iter", "1", "--group-size", "2",
                "--max-steps", "5",
            ],
        )  # fmt: skip
    assert res.exit_code == 0, res.output
    metrics = json.loads(res.stdout.strip().splitlines()[-1])
    assert metrics["vllm_servers"] == "given" and len(metrics["weight_sync_s"]) == 2
    assert metrics["local_s_per_iter"] > 0 and metrics["vllm_s_per_iter"] > 0
