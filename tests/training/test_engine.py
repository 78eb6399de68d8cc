"""The training engine on one process: fp32 master weights over bf16 compute, activation
checkpointing, config validation (FSDP2 on 2 processes: test_fsdp.py)."""

from __future__ import annotations

import re

import pytest
import torch

from empo_gym.agents.training.algorithm import UpdateMode
from empo_gym.agents.training.config import GRPOConfig
from empo_gym.agents.training.engine import Engine, decoder_layers
from empo_gym.agents.training.trainer import TrainingRun
from empo_gym.agents.training.update import make_optimizer, policy_update
from tests.training.train_helpers import BanditPolicy, make_traj, make_turn


def _groups(model: torch.nn.Module, prefix: int = 4) -> list:
    """One group of 4 one-turn trajectories with different rewards (non-zero advantages)."""
    shared = [1] + [5 + i % 50 for i in range(prefix)]
    trajs = []
    for m in range(4):
        prompt = [*shared, 60 + m, 7]
        turn = make_turn(model, prompt, [8 + m, 9, 10 + m], reward=float(m % 2))
        trajs.append(make_traj("g", m, [turn]))
    return [trajs]


def _half_tensors(run_or_opt: torch.optim.Optimizer) -> list[str]:
    out = []
    for state in run_or_opt.state.values():
        for name, value in state.items():
            if isinstance(value, torch.Tensor) and value.dtype in (torch.bfloat16, torch.float16):
                out.append(f"{name}:{value.dtype}")
    return out


def test_fp32_masters_leave_no_half_precision_weight_or_optimizer_state(tmp_path, tiny_model):
    """A model loaded in bf16 trains with fp32 trainable weights and AdamW states."""
    cfg = GRPOConfig(
        iterations=1,
        tasks_per_iter=2,
        group_size=4,
        master_dtype="float32",
        compute_dtype="bfloat16",  # CPU autocast: the bf16 compute path of a GPU
        checkpoint_every=0,
        output_dir=str(tmp_path),
    )
    policy = BanditPolicy(tiny_model.to(torch.bfloat16))

    def rollout(policy, tasks, group_size, use_memory):  # one group, rewards 0 and 1
        return _groups(policy.model)[0]

    run = TrainingRun(cfg, policy, rollout, [0, 1], resume=False)
    row = run.step()
    assert row["steps"] == 1.0 and row["skipped_steps"] == 0.0
    trainable = [(n, p.dtype) for n, p in run.model.named_parameters() if p.requires_grad]
    assert trainable and all(dtype == torch.float32 for _, dtype in trainable), trainable
    assert run.optimizer.state, "the optimizer never stepped"
    assert _half_tensors(run.optimizer) == []


def _changed_fraction(model: torch.nn.Module, engine: Engine) -> float:
    """Share of the entries with a non-zero gradient that one lr-1e-6 AdamW step changes."""
    cfg = GRPOConfig(lr=1e-6, weight_decay=0.0, low_prob_masking=False, micro_batch_size=8)
    model = engine.wrap_model(model)
    groups = _groups(model)
    opt = make_optimizer(model, cfg)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    grads: dict[str, torch.Tensor] = {}

    def keep_grads(_opt, _args, _kwargs) -> None:
        for n, p in model.named_parameters():
            if p.grad is not None:
                grads[n] = p.grad.detach().clone()

    opt.register_step_pre_hook(keep_grads)
    out = policy_update(model, opt, groups, UpdateMode.ON_POLICY, cfg, 0, engine=engine)
    assert out["steps"] == 1.0
    moved = total = 0
    for n, p in model.named_parameters():
        has_grad = grads[n] != 0
        total += int(has_grad.sum())
        moved += int(((p.detach() != before[n]) & has_grad).sum())
    assert total > 1000
    return moved / total


def test_lr_1e6_step_changes_almost_every_weight_only_with_fp32_masters(model_factory):
    bf16_compute = {"compute": torch.bfloat16}  # one process on the CPU (the default group)
    fp32 = _changed_fraction(model_factory(0).to(torch.bfloat16), Engine(**bf16_compute))
    bf16 = _changed_fraction(
        model_factory(0).to(torch.bfloat16), Engine(fp32_master=False, **bf16_compute)
    )
    assert fp32 > 0.99, f"fp32 masters: only {fp32:.1%} of the weights with a gradient moved"
    # the update AdamW computes (~1e-6) is below half a bf16 ulp of nearly every weight
    assert bf16 < 0.2, f"bf16 weights: {bf16:.1%} moved; expected most updates to round away"


def test_activation_checkpointing_gives_the_same_update(model_factory):
    """The update's result does not depend on recomputing activations (the shared-prefix
    pass, which cannot be recomputed, is off)."""
    cfg = GRPOConfig(lr=1e-3, weight_decay=0.0, low_prob_masking=False, micro_batch_size=8)
    results = []
    for checkpointing in (False, True):
        engine = Engine(activation_checkpointing=checkpointing)
        model = engine.wrap_model(model_factory(0))
        opt = make_optimizer(model, cfg)
        groups = _groups(model, prefix=40)  # >= 32 shared tokens: the prefix pass would run
        out = policy_update(model, opt, groups, UpdateMode.ON_POLICY, cfg, 0, engine=engine)
        results.append((out, torch.cat([p.detach().flatten() for p in model.parameters()])))
        assert model.is_activation_checkpointing == checkpointing
    (plain, w_plain), (ckpt, w_ckpt) = results
    assert plain["update_shared_prefix_tokens"] > 0  # without checkpointing the prefix is shared
    assert ckpt["update_shared_prefix_tokens"] == 0
    assert plain["grad_norm"] == pytest.approx(ckpt["grad_norm"], rel=1e-4)
    torch.testing.assert_close(w_ckpt, w_plain, rtol=1e-5, atol=1e-6)


def test_engine_from_config_without_a_process_group_trains_plainly():
    engine = Engine.from_config(GRPOConfig(backend="fsdp2"))
    assert (engine.backend, engine.world_size, engine.sharded) == ("ddp", 1, False)
    assert engine.compute == torch.float32 and engine.fp32_master


def test_decoder_layers_are_what_fsdp2_shards(tiny_model):
    layers = decoder_layers(tiny_model)
    assert [type(m).__name__ for m in layers] == ["LlamaDecoderLayer"] * 2


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("backend", "deepspeed", "one of ['auto', 'ddp', 'fsdp2']"),
        ("master_dtype", "float16", "one of ['float32', 'auto']"),
        ("compute_dtype", "fp8", "one of ['auto', 'float32', 'bfloat16']"),
    ],
)
def test_engine_keys_are_validated(key, value, expected):
    with pytest.raises(
        ValueError, match=re.escape(f"{key}='{value}' is invalid; expected {expected}")
    ):
        GRPOConfig(**{key: value})


def test_cpu_offload_needs_fsdp2():
    with pytest.raises(ValueError, match="cpu_offload=True is invalid"):
        GRPOConfig(backend="ddp", cpu_offload=True)


def test_reference_is_a_frozen_cpu_copy_in_the_compute_dtype(model_factory):
    from empo_gym.agents.training.setup import reference_model

    model = model_factory(0)
    model.lm_head.weight = model.model.embed_tokens.weight  # tied, as SmolLM2
    cfg = GRPOConfig(kl_coef=0.01, compute_dtype="bfloat16")
    ref = reference_model(cfg, BanditPolicy(model))
    assert {(p.device.type, p.dtype, p.requires_grad) for p in ref.parameters()} == {
        ("cpu", torch.bfloat16, False)
    }
    assert ref.lm_head.weight is ref.model.embed_tokens.weight  # still tied
    with torch.no_grad():
        model.lm_head.weight.add_(1.0)  # the policy trains; the reference must not follow
    assert not torch.equal(ref.lm_head.weight.float(), model.lm_head.weight)
    assert reference_model(GRPOConfig(kl_coef=0.01, lora=True), BanditPolicy(model)) is None
