"""``empo-gym bench train --rollout-backend vllm`` over a stand-in vLLM server (tiny model)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from empo_gym.agents.llm.transformers_policy import TransformersPolicy
from empo_gym.agents.llm.vllm_policy import write_hf_weights
from empo_gym.bench.train import run_backend_bench
from empo_gym.cli import app
from tests.llm.vllm_standin import StandInVLLM
from tests.training.test_engine_integration import _byte_policy


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
