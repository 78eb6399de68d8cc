"""The one wiring of a GRPO / EMPO² training run: policy, envs, algorithm, rollouts, reference.

:func:`build_training` turns a trainer config into what :func:`~empo_gym.agents.training.
trainer.train` consumes; the learning agents (``empo-gym run --agent grpo|empo``), ``empo-gym
bench train`` and the tests all build their runs here, so they train the same thing.

Example:
    >>> from empo_gym.agents.training.config import quick_preset
    >>> from empo_gym.toy import ToyTextEnv
    >>> cfg = quick_preset("empo", "toy", tasks_per_iter=1, group_size=2)
    >>> setup = build_training(cfg, envs=[ToyTextEnv(), ToyTextEnv()])
    >>> type(setup.algorithm).__name__, len(setup.tasks)
    ('EMPO', 5)
    >>> setup.close()
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym

from empo_gym.agents.llm.rollout import RolloutRunner
from empo_gym.agents.llm.trajectory import Trajectory
from empo_gym.agents.training.algorithm import Algorithm, make_algorithm
from empo_gym.agents.training.config import GRPOConfig
from empo_gym.agents.training.process_group import ProcessGroup
from empo_gym.agents.training.trainer import RolloutFn

__all__ = [
    "TrainingSetup",
    "build_training",
    "make_policy",
    "reference_model",
    "training_sampling",
    "training_tasks",
    "vllm_policy",
    "with_trainer_logprobs",
]

#: Task instances drawn from at least (the paper trains on a few instances per task, e.g. the
#: first 5 ScienceWorld variations).
MIN_TRAIN_INSTANCES = 5


@dataclass
class TrainingSetup:
    """The envs, algorithm, rollout function and tasks of a run (the policy is built apart)."""

    cfg: GRPOConfig
    """The trainer settings the run was built from."""
    envs: list[gym.Env]
    """The training envs, as the algorithm wrapped them (EMPO²: memory wrappers)."""
    rollout_fn: RolloutFn
    """Batched rollouts over :attr:`envs` (the trainer calls it each iteration)."""
    tasks: list[Any]
    """Task instances (``ResetSpec``) the trainer draws ``tasks_per_iter`` from."""
    algorithm: Algorithm
    """The algorithm the trainer calls (:class:`~empo_gym.agents.training.algorithm.GRPO`, or
    :class:`~empo_gym.agents.training.empo.EMPO` with its memory, tips and novelty)."""

    def close(self) -> None:
        """Close the envs (ScienceWorld's JVMs go away)."""
        for env in self.envs:
            env.close()


def make_policy(cfg: GRPOConfig) -> Any:
    """The policy ``cfg`` trains: its model (fp32 when ``cfg`` asks for fp32 master weights),
    LoRA adapter if asked, training sampling, and its rollout backend (``cfg.rollout_backend``:
    the model itself, or vLLM servers)."""
    from empo_gym.agents.llm.models import auto_device
    from empo_gym.agents.llm.transformers_policy import LoraSettings, TransformersPolicy
    from empo_gym.agents.training.engine import load_dtype

    lora = (
        LoraSettings(r=cfg.lora_rank, alpha=cfg.lora_alpha, dropout=cfg.lora_dropout)
        if cfg.lora
        else None
    )
    dtype = load_dtype(cfg, auto_device())
    local = TransformersPolicy(cfg.model, sampling=training_sampling(cfg), lora=lora, dtype=dtype)
    if cfg.rollout_backend == "local":
        return local
    return vllm_policy(cfg, local)


def vllm_policy(cfg: GRPOConfig, local: Any, *, startup_timeout: float = 600.0) -> Any:
    """``local`` sampling on vLLM servers (``cfg.vllm_*``): started here on the training GPUs
    when ``cfg.vllm_colocate`` (by the main process; the others wait for them), else the
    running servers at ``cfg.vllm_urls``. The servers are checked to serve ``local``'s weights.
    """
    from pathlib import Path

    import torch

    from empo_gym.agents.llm.vllm_policy import VLLMPolicy
    from empo_gym.agents.llm.vllm_server import start_servers, wait_for_servers
    from empo_gym.agents.llm.vllm_weights import write_hf_weights

    weights_dir = Path(cfg.vllm_weights_dir or Path(cfg.output_dir) / "vllm_weights")
    main = ProcessGroup.launched().is_main  # before the trainer joins the process group
    gpus = torch.cuda.device_count()
    sleep_mode = cfg.vllm_colocate and gpus > 0  # vLLM's sleep mode exists on GPUs only
    servers = []
    if cfg.vllm_colocate and main:
        initial = write_hf_weights(local.model, weights_dir / "v0", tokenizer=local.tokenizer)
        servers = start_servers(
            initial,
            cfg.vllm_urls,
            log_dir=weights_dir.parent,
            tensor_parallel=cfg.vllm_tensor_parallel,
            gpu_memory_utilization=cfg.vllm_gpu_memory_utilization,
            sleep_mode=sleep_mode,
            nccl=cfg.weight_sync == "nccl",
            gpus=gpus,
            max_model_len=cfg.max_context_tokens + max(cfg.max_response_tokens, 256),
            startup_timeout=startup_timeout,
        )
    else:
        wait_for_servers(cfg.vllm_urls, timeout=startup_timeout)
    policy = VLLMPolicy(
        local,
        cfg.vllm_urls,
        weights_dir=weights_dir,
        weight_sync=cfg.weight_sync,
        servers=servers,
        sleep_mode=sleep_mode and main,  # the main process alone sends the servers to sleep
    )
    if main:
        policy.check_weights(local.model)
    return policy


def reference_model(cfg: GRPOConfig, policy: Any) -> Any | None:
    """A frozen copy of the initial weights for the KL term (None without KL or with LoRA,
    where the adapter-free base model is the reference), in the compute dtype and in CPU
    memory: the trainer's engine moves it to the device or, under FSDP2, shards it like the
    policy (never two full copies on one GPU)."""
    if cfg.kl_coef <= 0 or cfg.lora:
        return None
    from empo_gym.agents.llm.models import auto_device
    from empo_gym.agents.training.engine import compute_dtype, frozen_copy

    return frozen_copy(policy.model, compute_dtype(cfg.compute_dtype, auto_device()))


def training_tasks(cfg: GRPOConfig) -> list[Any]:
    """Reset specs of the task instances the run trains on (one seed each, from ``cfg.seed``)."""
    from empo_gym.agents.llm.rollout import ResetSpec

    n = max(cfg.tasks_per_iter, MIN_TRAIN_INSTANCES)
    return [ResetSpec(seed=cfg.seed + i) for i in range(n)]


def _make_envs(cfg: GRPOConfig) -> list[gym.Env]:
    from empo_gym.registry import get_env_info

    info = get_env_info(cfg.env)
    kwargs = {**info.env_kwargs(cfg.task, "train"), "max_steps": cfg.max_steps}
    return [gym.make(info.gym_id, **kwargs) for _ in range(cfg.tasks_per_iter * cfg.group_size)]


def build_training(
    cfg: GRPOConfig,
    *,
    envs: Sequence[gym.Env] | None = None,
    tasks: Sequence[Any] | None = None,
    tip_writer: Any | None = None,
) -> TrainingSetup:
    """Wire a run of ``cfg``: envs of ``cfg.env`` / ``cfg.task`` (train split), the algorithm
    ``cfg`` configures (it wraps the envs: EMPO²'s memory), the batched rollout function, the
    task instances.

    Args:
        cfg: Trainer settings (``env``, ``task``, ``max_steps``, ``tasks_per_iter`` x
            ``group_size`` envs, memory settings, ...).
        envs: Envs to train on instead of ``tasks_per_iter * group_size`` new ones of
            ``cfg.env`` (e.g. a test's toy envs; ``cfg.env`` still picks prompt and parsing).
        tasks: Task instances instead of :func:`training_tasks`.
        tip_writer: EMPO²: a :class:`~empo_gym.memory.TipWriter` instead of the policy.
    """
    env_list = list(envs) if envs is not None else _make_envs(cfg)
    algorithm = make_algorithm(cfg, tip_writer=tip_writer)
    env_list = algorithm.wrap_envs(env_list)
    rollout_fn: RolloutFn = RolloutRunner(
        None,  # the trainer passes its policy with each call
        env_list,
        cfg.env,
        prompt_style=cfg.prompt_style,
        action_format=cfg.action_format,
        max_turns=cfg.max_steps,
        sampling=training_sampling(cfg),
        prompt_kwargs={"max_history": cfg.prompt_history},
        max_context_tokens=cfg.max_context_tokens,
    )
    if cfg.recompute_logprobs:
        rollout_fn = with_trainer_logprobs(rollout_fn)
    return TrainingSetup(
        cfg=cfg,
        envs=env_list,
        rollout_fn=rollout_fn,
        tasks=list(tasks) if tasks is not None else training_tasks(cfg),
        algorithm=algorithm,
    )


def with_trainer_logprobs(rollout_fn: RolloutFn) -> RolloutFn:
    """``rollout_fn`` whose turns carry the trainer's log-probs of the sampled tokens (under
    the prompt they were sampled with, tips included) instead of the sampler's: the update's
    ratios and low-probability mask then compare the trainer with itself, not with vLLM's
    numerics."""

    def rollout(
        policy: Any, tasks: Sequence[Any], group_size: int, use_memory: bool
    ) -> list[Trajectory]:
        trajectories = rollout_fn(policy, tasks, group_size, use_memory)
        turns = [t for traj in trajectories for t in traj.turns if t.response_ids]
        if turns:
            scored = policy.logprobs([t.prompt_ids for t in turns], [t.response_ids for t in turns])
            for turn, logprobs in zip(turns, scored, strict=True):
                turn.logprobs = list(logprobs)
        return trajectories

    return rollout


def training_sampling(cfg: GRPOConfig) -> Any:
    """Sampling of the training rollouts (temperature, response budget, seed)."""
    from empo_gym.agents.llm.policy import SamplingConfig

    return SamplingConfig(
        temperature=cfg.temperature, max_new_tokens=cfg.max_response_tokens, seed=cfg.seed
    )
