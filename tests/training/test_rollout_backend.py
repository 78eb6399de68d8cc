"""The rollout-backend settings and their wiring into a run (vLLM through a stand-in server)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from empo_gym.agents.llm.rollout import RolloutRunner
from empo_gym.agents.llm.vllm_policy import VLLMPolicy
from empo_gym.agents.llm.vllm_sync import StaleWeightsError
from empo_gym.agents.training.config import GRPOConfig, config_from_dict
from empo_gym.agents.training.empo import EMPOConfig
from empo_gym.agents.training.process_group import ProcessGroup
from empo_gym.agents.training.setup import build_training, with_trainer_logprobs
from empo_gym.agents.training.trainer import TrainingRun
from empo_gym.toy import ToyTextEnv
from tests.llm.vllm_standin import StandInVLLM
from tests.training.test_engine_integration import _byte_policy, _MemberBonus


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"rollout_backend": "sglang"}, r"rollout_backend='sglang' is invalid; expected one of"),
        ({"vllm_urls": []}, r"vllm_urls=\[\] is invalid; expected a non-empty list"),
        ({"vllm_urls": ["localhost:8000"]}, r"vllm_urls=\['localhost:8000'\] is invalid"),
        ({"vllm_tensor_parallel": 0}, r"vllm_tensor_parallel=0 is invalid; expected >= 1"),
        ({"vllm_gpu_memory_utilization": 1.5}, r"vllm_gpu_memory_utilization=1.5 is invalid"),
        ({"weight_sync": "rdma"}, r"weight_sync='rdma' is invalid; expected one of"),
        ({"vllm_colocate": "maybe"}, r"vllm_colocate='maybe'; expected true or false"),
    ],
)
def test_bad_backend_settings_are_rejected_by_name(data, message):
    with pytest.raises(ValueError, match=message):
        config_from_dict(data)


def test_recompute_defaults_to_true_for_vllm_only():
    assert GRPOConfig(rollout_backend="vllm").recompute_logprobs
    assert not GRPOConfig(rollout_backend="local").recompute_logprobs
    assert not GRPOConfig(rollout_backend="vllm", recompute_old_logprobs=False).recompute_logprobs
    assert GRPOConfig(recompute_old_logprobs=True).recompute_logprobs


def test_the_run_wiring_rescores_vllm_rollouts_with_the_trainer():
    def wiring(**kwargs):
        cfg = GRPOConfig(env="toy", **kwargs)
        return build_training(
            cfg, envs=[ToyTextEnv("echo"), ToyTextEnv("echo")], tasks=[1]
        ).rollout_fn

    assert "with_trainer_logprobs" in wiring(rollout_backend="vllm").__qualname__
    assert isinstance(wiring(), RolloutRunner)  # the rollouts themselves: no rescoring wrapper


def _vllm_toy_config(tmp_path, **overrides) -> EMPOConfig:
    """Two iterations on the toy env sampled through vLLM: EMPO² without memory rollouts, so
    the member bonus gives advantages."""
    return EMPOConfig(
        memory_prob=0.0,
        env="toy",
        iterations=2,
        tasks_per_iter=2,
        group_size=2,
        max_steps=2,
        low_prob_threshold=-50.0,
        lr=1e-2,
        micro_batch_size=64,
        checkpoint_every=0,
        output_dir=str(tmp_path),
        rollout_backend="vllm",
        **overrides,
    )


@pytest.mark.parametrize("recompute", [True, False])
def test_a_vllm_run_syncs_after_every_step_and_rescores_with_the_trainer(tmp_path, recompute):
    """Two GRPO iterations sampled by a server whose log-probs are off by 0.01: the server gets
    the weights after each step, and with recomputation the on-policy ratio is exactly 1."""
    torch.manual_seed(0)
    local = _byte_policy()
    cfg = _vllm_toy_config(tmp_path, recompute_old_logprobs=recompute)
    with StandInVLLM(local, logprob_offset=0.01) as server:
        policy = VLLMPolicy(local, [server.url], weights_dir=tmp_path / "w")
        rollout_fn = RolloutRunner(None, [ToyTextEnv("echo") for _ in range(4)], "toy", max_turns=2)
        if cfg.recompute_logprobs:
            rollout_fn = with_trainer_logprobs(rollout_fn)
        run = TrainingRun(
            cfg, policy, rollout_fn, [3, 14], algorithm=_MemberBonus(cfg), resume=False
        )
        rows = [run.step() for _ in range(cfg.iterations)]
        reloads = [b for p, b in server.log if p == "/collective_rpc"]
        served = dict(server.policy.model.named_parameters())
    assert [b["kwargs"]["weights_path"].rsplit("/", 1)[1] for b in reloads] == ["v1", "v2"]
    assert all(r["weight_sync_s"] > 0 and r["steps"] == 1 for r in rows)
    for name, p in local.model.named_parameters():  # the server serves the trained weights
        assert torch.allclose(served[name], p, atol=1e-6), name
    for row in rows:
        if recompute:
            assert row["ratio_mean"] == pytest.approx(1.0, abs=1e-5)
        else:  # the sampler's log-probs are 0.01 higher: ratio exp(-0.01) on every token
            assert row["ratio_mean"] == pytest.approx(torch.tensor(-0.01).exp().item(), abs=1e-4)


def test_server_mode_wiring_checks_the_servers_serve_the_trainers_model(tmp_path):
    from empo_gym.agents.training.setup import vllm_policy

    local = _byte_policy()
    cfg = GRPOConfig(env="toy", rollout_backend="vllm", output_dir=str(tmp_path))
    with StandInVLLM(local) as server:
        policy = vllm_policy(dataclasses.replace(cfg, vllm_urls=[server.url]), local)
        assert isinstance(policy, VLLMPolicy) and not policy.servers  # connected, not started
        assert policy.weights_dir == tmp_path / "vllm_weights"
    other = _byte_policy()
    with torch.no_grad():
        other.model.lm_head.weight.mul_(3.0)
    with StandInVLLM(other) as server, pytest.raises(StaleWeightsError, match=server.url):
        vllm_policy(dataclasses.replace(cfg, vllm_urls=[server.url]), local)


@pytest.fixture
def one_process_group():
    """A 1-process gloo group (FSDP2 shards over it for real), torn down after the test."""
    ProcessGroup.single("cpu")
    try:
        yield
    finally:
        ProcessGroup.leave()


def test_a_vllm_run_under_fsdp2_syncs_the_weights_gathered_from_the_shards(
    tmp_path, one_process_group
):
    """FSDP2 + vLLM: the server reloads the full weights (gathered from the DTensor shards) after
    every step, and the probe (rank 0's forward passes on the unsharded layers) accepts them."""
    torch.manual_seed(0)
    local = _byte_policy()
    cfg = _vllm_toy_config(tmp_path, backend="fsdp2")
    initial = {k: v.detach().clone() for k, v in local.model.state_dict().items()}
    with StandInVLLM(local, logprob_offset=0.0) as server:
        policy = VLLMPolicy(local, [server.url], weights_dir=tmp_path / "w")
        rollout_fn = with_trainer_logprobs(
            RolloutRunner(None, [ToyTextEnv("echo") for _ in range(4)], "toy", max_turns=2)
        )
        run = TrainingRun(
            cfg, policy, rollout_fn, [3, 14], algorithm=_MemberBonus(cfg), resume=False
        )
        assert run.engine.sharded
        rows = [run.step() for _ in range(cfg.iterations)]
        reloads = [b for p, b in server.log if p == "/collective_rpc"]
        served = {k: v.detach().clone() for k, v in server.policy.model.state_dict().items()}
        trained = run.engine.full_state_dict(run.model)
        run.close()
    assert len(reloads) == 2 and all(r["weight_sync_s"] > 0 for r in rows)
    assert set(trained) <= set(served)
    for name, tensor in trained.items():  # the server serves the trained (gathered) weights
        assert torch.allclose(served[name], tensor, atol=1e-6), name
    assert any(not torch.equal(served[n], initial[n]) for n in trained), "no weight changed"
