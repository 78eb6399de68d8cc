"""The per-GPU memory estimate of ``empo-gym plan``: hand-computed cases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from empo_gym.agents.training.config import GRPOConfig
from empo_gym.tools.plan import (
    GB,
    RUNTIME_OVERHEAD_GB,
    ModelShape,
    load_plan_config,
    model_shape,
    plan_memory,
)

BASELINES = Path(__file__).resolve().parents[2] / "baselines"
# a toy shape whose numbers are easy by hand: h 4, i 8, 2 layers, 2 heads (head dim 2),
# 1 kv head (kv dim 2), vocab 10, untied, no biases
TOY = ModelShape(
    vocab_size=10, hidden_size=4, intermediate_size=8, num_layers=2, num_heads=2, num_kv_heads=1
)
# per layer: q 16 + k 8 + v 8 + o 16 + mlp 3*4*8=96 + norms 8 = 152; embeddings 2*40 = 80;
# final norm 4 -> 2*152 + 80 + 4 = 388
TOY_PARAMS = 388


def _rows(plan) -> dict[str, tuple[float, float]]:
    return {name: (u * GB, r * GB) for name, u, r in plan.rows}


def test_parameter_counts_match_the_published_models():
    assert TOY.layer_params == 152 and TOY.num_params == TOY_PARAMS
    assert model_shape("Qwen/Qwen2.5-7B-Instruct").num_params == 7_615_616_512
    assert model_shape("qwen2.5-1.5b").num_params == 1_543_714_304
    assert model_shape("HuggingFaceTB/SmolLM2-135M-Instruct").num_params == 134_515_008


def test_ddp_fp32_masters_without_checkpointing_by_hand():
    cfg = GRPOConfig(
        backend="ddp",
        master_dtype="float32",
        compute_dtype="bfloat16",
        micro_batch_size=2,
        max_context_tokens=90,
        max_response_tokens=10,
        tasks_per_iter=3,
        group_size=2,
    )
    plan = plan_memory(cfg, gpus=2, gpu_mem_gb=80, shape=TOY)
    rows = _rows(plan)
    n = TOY_PARAMS
    assert rows["weights (fp32 masters, /1)"] == pytest.approx((4 * n, 4 * n))
    assert rows["gradients"] == pytest.approx((4 * n, 0))
    assert rows["AdamW states (2)"] == pytest.approx((8 * n, 8 * n))
    assert rows["autocast bf16 weight copies"] == pytest.approx((2 * n, 0))
    # 2 rows x 100 tokens x 2 layers x 2 bytes x (8*4 + 2*2 + 4*8 = 68)
    assert rows["activations"] == pytest.approx((2 * 100 * 2 * 2 * 68, 0))
    # 2 rows x 10 response tokens x vocab 10 x (2 + 8) bytes
    assert rows["response logits"] == pytest.approx((2 * 10 * 10 * 10, 0))
    # ceil(3 tasks / 2 GPUs) = 2 tasks x 2 rollouts = 4 rows x 100 tokens x (k+v) 2 x 2 layers
    # x kv dim 2 x 2 bytes; a DDP replica decodes from its own weights (nothing gathered)
    assert "local rollouts: gathered bf16 weights" not in rows
    assert rows["local rollouts: KV cache (4 rows)"] == pytest.approx((0, 4 * 100 * 2 * 2 * 2 * 2))
    overhead = RUNTIME_OVERHEAD_GB * GB
    assert plan.update_gb * GB == pytest.approx(18 * n + 54_400 + 2000 + overhead)
    assert plan.load_gb * GB == pytest.approx(4 * n + overhead)
    assert plan.fits


def test_fsdp2_shards_states_checkpoints_activations_and_the_reference():
    cfg = GRPOConfig(
        backend="fsdp2",
        compute_dtype="bfloat16",
        activation_checkpointing=True,
        kl_coef=0.01,
        micro_batch_size=1,
        max_context_tokens=90,
        max_response_tokens=10,
    )
    rows = _rows(plan_memory(cfg, gpus=4, gpu_mem_gb=80, shape=TOY))
    n = TOY_PARAMS
    assert rows["weights (fp32 masters, /4)"][0] == pytest.approx(4 * n / 4)
    assert rows["AdamW states (2)"][0] == pytest.approx(8 * n / 4)
    # two gathered layers (prefetch) + embeddings, bf16
    assert rows["gathered compute weights (2 layers + embeddings)"][0] == pytest.approx(
        (2 * 152 + 80) * 2
    )
    # each layer's input (h bf16) + one layer's full activations, per token
    assert rows["activations (checkpointed)"][0] == pytest.approx(100 * (2 * 4 * 2 + 2 * 68))
    assert rows["KL reference (bf16, /4)"] == pytest.approx((2 * n / 4, 2 * n / 4))


def test_cpu_offload_and_colocated_vllm():
    cfg = GRPOConfig(backend="fsdp2", cpu_offload=True)
    cfg.rollout_backend, cfg.vllm_colocate, cfg.vllm_gpu_memory_utilization = "vllm", True, 0.5
    plan = plan_memory(cfg, gpus=8, gpu_mem_gb=40, shape=TOY)
    rows = _rows(plan)
    assert rows["AdamW states (2)"] == (0, 0) and rows["gradients"] == (0, 0)
    assert plan.cpu_gb * GB == pytest.approx(16 * TOY_PARAMS / 8)
    assert rows["colocated vLLM (asleep in the update)"] == pytest.approx((0, 20 * GB))


def test_qwen_7b_with_the_old_settings_does_not_fit_and_the_paper_recipe_does():
    old = GRPOConfig(model="Qwen/Qwen2.5-7B-Instruct", backend="ddp", compute_dtype="bfloat16")
    plan = plan_memory(old, gpus=8, gpu_mem_gb=80)
    assert not plan.fits and any("activation_checkpointing: true" in n for n in plan.notes)
    # ~122 GB of fp32 weights, gradients and AdamW states on every GPU
    assert (
        121
        < sum(u for name, u, _ in plan.rows if name.split()[0] in ("weights", "gradients", "AdamW"))
        < 123
    )
    paper = load_plan_config(BASELINES / "grpo_webshop_paper.yaml")
    assert (paper.backend, paper.activation_checkpointing, paper.micro_batch_size) == (
        "fsdp2",
        True,
        1,
    )
    assert plan_memory(paper, gpus=8, gpu_mem_gb=80).fits


def test_model_shape_reads_a_local_config_json(tmp_path):
    config = {
        "model_type": "llama",
        "vocab_size": 10,
        "hidden_size": 4,
        "intermediate_size": 8,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert model_shape(str(tmp_path)) == TOY


def test_unknown_model_and_bad_sizes_are_errors():
    with pytest.raises(ValueError, match="shape unknown; expected a directory with config.json"):
        model_shape("org/mystery-model")
    with pytest.raises(ValueError, match="gpus=0; expected >= 1"):
        plan_memory(GRPOConfig(), gpus=0, gpu_mem_gb=80, shape=TOY)
