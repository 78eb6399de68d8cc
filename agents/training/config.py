"""Hyperparameters of the GRPO and EMPO² trainers: one dataclass each, loaded from YAML.

:class:`GRPOConfig` is here; EMPO²'s :class:`~empo_gym.agents.training.empo.EMPOConfig` extends
it beside the rest of the method (:mod:`empo_gym.agents.training.empo`).

Defaults are the paper's (ScienceWorld recipe); :func:`paper_preset` applies the per-env
differences and :func:`quick_preset` the CPU settings of ``empo-gym run`` (the values of both
live in :mod:`empo_gym.agents.training.presets`). Every value is
validated when the dataclass is built, so a bad YAML file fails before any model loads.

YAML layout (every key optional; unknown keys are rejected)::

    agent: empo          # grpo | empo (picks the dataclass)
    preset: quick        # default | paper | quick (the base the other keys override)
    lr: 1.0e-5
    group_size: 4
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from empo_gym.agents.llm.vllm_sync import WEIGHT_SYNC_MODES
from empo_gym.agents.training.presets import preset_base
from empo_gym.registry import ACTION_FORMATS, PROMPT_STYLES
from empo_gym.yaml_config import check_fields, from_dict, read_yaml

AGENTS = ("grpo", "empo")
BACKENDS = ("auto", "ddp", "fsdp2")
MASTER_DTYPES = ("float32", "auto")
COMPUTE_DTYPES = ("auto", "float32", "bfloat16")
#: Who samples the rollouts (``GRPOConfig.rollout_backend``).
ROLLOUT_BACKENDS = ("local", "vllm")


@dataclass
class GRPOConfig:
    """GRPO trainer settings (defaults: the paper's ScienceWorld recipe)."""

    # --- run ---------------------------------------------------------------------------------
    model: str = "smollm2-135m-instruct"
    """Policy model: an alias, a Hugging Face id or a local path / GGUF file."""
    env: str = "scienceworld"
    """Env short name (``scienceworld``, ``webshop``, ...)."""
    task: str | None = None
    """Task name within the env (ScienceWorld trains each task separately); None = env default."""
    seed: int = 0
    """Seed of python, numpy and torch RNGs and of the mode draws."""
    iterations: int = 200
    """Training iterations (each = ``tasks_per_iter`` x ``group_size`` rollouts + updates)."""
    output_dir: str = "runs/train"
    """Directory of metrics.jsonl, checkpoints/ and the final model."""
    checkpoint_every: int = 10
    """Save a checkpoint every this many iterations (0 = only at the end)."""
    keep_checkpoints: int = 2
    """How many most recent checkpoints to keep on disk."""

    # --- rollouts ----------------------------------------------------------------------------
    tasks_per_iter: int = 16
    """B: task instances sampled per iteration."""
    group_size: int = 8
    """N: rollouts per task instance (a GRPO group; all start from the same state)."""
    max_steps: int = 30
    """Environment steps per episode."""
    max_response_tokens: int = 32
    """Generated tokens per step (ScienceWorld: the action only)."""
    max_context_tokens: int = 4500
    """Longest prompt in tokens (older history is truncated by the prompt builder)."""
    prompt_history: int = 4
    """Steps of history shown in training and evaluation prompts (every prompt token is paid
    again in the update, so fewer than the inference agents' default)."""
    prompt_style: str | None = None
    """Prompt style of training and evaluation (None: the env profile's; one of
    ``empo_gym.registry.PROMPT_STYLES``)."""
    action_format: str | None = None
    """How answers are read (None: the env profile's; one of
    ``empo_gym.registry.ACTION_FORMATS``)."""
    temperature: float = 1.0
    """Sampling temperature during training (log-probabilities are scored at it too)."""
    eval_temperature: float = 0.4
    """Sampling temperature at evaluation (no memory)."""
    eval_episodes: int = 20
    """Evaluation episodes after training (ScienceWorld: 20 unseen test variations)."""

    # --- objective ---------------------------------------------------------------------------
    clip_low: float = 0.2
    """PPO clip below: ratio >= 1 - clip_low."""
    clip_high: float = 0.3
    """PPO clip above: ratio <= 1 + clip_high (asymmetric, "clip-higher")."""
    dual_clip: float = 10.0
    """Dual-clip constant c for negative advantages (loss bounded by -A * c)."""
    kl_coef: float = 0.0
    """Weight of the k3 KL to the initial (reference) policy: 0 ScienceWorld, 0.01 WebShop."""
    low_prob_masking: bool = True
    """Mask out turns containing a token with old log-prob below ``low_prob_threshold``."""
    low_prob_threshold: float = -5.0
    """Old log-probability below which a token masks its whole turn."""
    adv_eps: float = 1e-6
    """Added to the group std when normalising returns."""

    # --- engine ------------------------------------------------------------------------------
    backend: str = "auto"
    """How the weights are held across processes: ``ddp`` (a full replica per process, one
    gradient all-reduce per optimizer step), ``fsdp2`` (torch FSDP2: weights, gradients and
    optimizer states sharded over the processes) or ``auto`` (``fsdp2`` with several CUDA
    processes, else ``ddp``). One process is plain training with either."""
    master_dtype: str = "float32"
    """Dtype of the trainable weights and AdamW states: ``float32`` (fp32 master weights whatever
    the compute dtype: small updates such as lr 1e-6 do not round away) or ``auto`` (the model's
    load dtype: bf16 on CUDA, i.e. AdamW updates bf16 weights)."""
    compute_dtype: str = "auto"
    """Dtype of forward/backward: ``float32``, ``bfloat16`` or ``auto`` (bf16 on CUDA when
    supported, else fp32). With fp32 masters: FSDP2's mixed-precision policy (fp32 gradient
    reduction) or autocast on one process / DDP."""
    activation_checkpointing: bool = False
    """Recompute each decoder layer's activations in the backward pass instead of storing them
    (memory: one layer's activations plus each layer's input). Switches the update's
    shared-prompt-prefix pass off (its KV cache cannot be recomputed)."""
    cpu_offload: bool = False
    """FSDP2 only: keep the sharded fp32 weights, gradients and AdamW states in CPU memory
    (CUDA only; slower, frees most of the GPU for activations)."""

    # --- optimisation ------------------------------------------------------------------------
    lr: float = 1e-6
    """AdamW learning rate."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    adam_betas: tuple[float, float] = (0.9, 0.999)
    """AdamW betas."""
    adam_eps: float = 1e-8
    """AdamW epsilon."""
    max_grad_norm: float = 1.0
    """Gradient-norm clip before each optimizer step."""
    ppo_epochs: int = 1
    """Passes over an iteration's turns."""
    mini_batches: int = 1
    """Optimizer steps per pass (the turns are split into this many mini-batches)."""
    micro_batch_size: int = 8
    """Turns per forward/backward (gradient accumulation inside a mini-batch)."""
    skip_zero_advantage: bool = True
    """Skip the forward/backward of turns whose advantage is 0 when ``kl_coef == 0`` (their
    gradient is exactly 0, so the update is unchanged). False forwards every turn, as verl does;
    ``empo-gym bench train`` uses False so GRPO and EMPO² do equal update work."""
    lora: bool = False
    """Train a LoRA adapter instead of all weights."""
    lora_rank: int = 8
    """LoRA rank r."""
    lora_alpha: float = 16.0
    """LoRA scaling alpha."""
    lora_dropout: float = 0.0
    """LoRA dropout."""

    # --- rollout backend ---------------------------------------------------------------------
    rollout_backend: str = "local"
    """Who samples the rollouts: ``local`` (the trainer's own model, the project's HF decoding
    loop) or ``vllm`` (vLLM servers; prompts are still encoded, and log-probs for the update
    still computed, by the trainer)."""
    vllm_urls: list[str] = dataclasses.field(default_factory=lambda: ["http://127.0.0.1:8000"])
    """vLLM server roots; each trajectory sticks to one. Server mode: servers you started on
    their own GPUs. Colocated: the trainer starts one server per URL (loopback ports)."""
    vllm_colocate: bool = False
    """Start the vLLM servers from the trainer on the training GPUs, with sleep mode (they
    sleep during each update); False = connect to running servers (server mode)."""
    vllm_tensor_parallel: int = 1
    """Tensor-parallel GPUs per vLLM server (colocated: server i takes GPUs i*tp..(i+1)*tp-1)."""
    vllm_gpu_memory_utilization: float = 0.5
    """Share of each GPU's memory a colocated vLLM server may take (weights + KV cache)."""
    vllm_weights_dir: str | None = None
    """Directory the disk weight sync writes to, readable by every server; None =
    ``<output_dir>/vllm_weights``."""
    weight_sync: str = "disk"
    """How new weights reach vLLM after each optimizer step: ``disk`` (safetensors + the
    servers' ``reload_weights``) or ``nccl`` (vLLM's NCCL weight transfer; GPUs, and the
    ``vllm`` package in the trainer's environment)."""
    recompute_old_logprobs: bool | None = None
    """Score the sampled tokens with the trainer before the update and use those as the old
    log-probs (the sampler's numerics differ from the trainer's); None = True for ``vllm``,
    False for ``local`` (whose sampler is the trainer)."""

    @property
    def agent(self) -> str:
        """``grpo`` or ``empo``."""
        return "grpo"

    def __post_init__(self) -> None:
        check_fields(self)
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first field whose value is out of range."""
        _require(self, "iterations", self.iterations >= 0, ">= 0")
        _require(self, "checkpoint_every", self.checkpoint_every >= 0, ">= 0 (0 = only at end)")
        _require(self, "keep_checkpoints", self.keep_checkpoints >= 1, ">= 1")
        _require(self, "tasks_per_iter", self.tasks_per_iter >= 1, ">= 1")
        _require(self, "group_size", self.group_size >= 2, ">= 2 (GRPO needs a group baseline)")
        _require(self, "max_steps", self.max_steps >= 1, ">= 1")
        _require(self, "max_response_tokens", self.max_response_tokens >= 1, ">= 1")
        _require(self, "max_context_tokens", self.max_context_tokens >= 1, ">= 1")
        _require(self, "prompt_history", self.prompt_history >= 0, ">= 0")
        _require(
            self,
            "prompt_style",
            self.prompt_style is None or self.prompt_style in PROMPT_STYLES,
            f"None or one of {list(PROMPT_STYLES)}",
        )
        _require(
            self,
            "action_format",
            self.action_format is None or self.action_format in ACTION_FORMATS,
            f"None or one of {list(ACTION_FORMATS)}",
        )
        _require(self, "temperature", self.temperature > 0, "> 0 (training samples)")
        _require(self, "eval_temperature", self.eval_temperature >= 0, ">= 0 (0 = greedy)")
        _require(self, "eval_episodes", self.eval_episodes >= 0, ">= 0")
        _require(self, "clip_low", 0 <= self.clip_low < 1, "in [0, 1)")
        _require(self, "clip_high", self.clip_high >= 0, ">= 0")
        _require(self, "dual_clip", self.dual_clip > 1, "> 1")
        _require(self, "kl_coef", self.kl_coef >= 0, ">= 0")
        _require(self, "adv_eps", self.adv_eps > 0, "> 0")
        _require(self, "backend", self.backend in BACKENDS, f"one of {list(BACKENDS)}")
        _require(
            self,
            "master_dtype",
            self.master_dtype in MASTER_DTYPES,
            f"one of {list(MASTER_DTYPES)}",
        )
        _require(
            self,
            "compute_dtype",
            self.compute_dtype in COMPUTE_DTYPES,
            f"one of {list(COMPUTE_DTYPES)}",
        )
        _require(
            self,
            "cpu_offload",
            not self.cpu_offload or self.backend in ("fsdp2", "auto"),
            "false unless backend is fsdp2 (only FSDP2 offloads)",
        )
        _require(self, "lr", self.lr > 0, "> 0")
        _require(self, "weight_decay", self.weight_decay >= 0, ">= 0")
        _require(
            self,
            "adam_betas",
            len(self.adam_betas) == 2 and all(0 <= b < 1 for b in self.adam_betas),
            "two values in [0, 1)",
        )
        _require(self, "adam_eps", self.adam_eps > 0, "> 0")
        _require(self, "max_grad_norm", self.max_grad_norm > 0, "> 0")
        _require(self, "ppo_epochs", self.ppo_epochs >= 1, ">= 1")
        _require(self, "mini_batches", self.mini_batches >= 1, ">= 1")
        _require(self, "micro_batch_size", self.micro_batch_size >= 1, ">= 1")
        _require(self, "lora_rank", self.lora_rank >= 1, ">= 1")
        _require(self, "lora_alpha", self.lora_alpha > 0, "> 0")
        _require(self, "lora_dropout", 0 <= self.lora_dropout < 1, "in [0, 1)")
        _require(
            self,
            "rollout_backend",
            self.rollout_backend in ROLLOUT_BACKENDS,
            f"one of {list(ROLLOUT_BACKENDS)}",
        )
        _require(
            self,
            "vllm_urls",
            bool(self.vllm_urls)
            and all(str(u).startswith(("http://", "https://")) for u in self.vllm_urls),
            "a non-empty list of http(s) URLs such as ['http://127.0.0.1:8000']",
        )
        _require(self, "vllm_tensor_parallel", self.vllm_tensor_parallel >= 1, ">= 1")
        _require(
            self,
            "vllm_gpu_memory_utilization",
            0 < self.vllm_gpu_memory_utilization <= 1,
            "a share of GPU memory in (0, 1]",
        )
        _require(
            self,
            "weight_sync",
            self.weight_sync in WEIGHT_SYNC_MODES,
            f"one of {list(WEIGHT_SYNC_MODES)}",
        )
        _require(
            self,
            "lora",
            not (self.lora and self.backend == "fsdp2" and self.rollout_backend == "vllm"),
            "false with backend fsdp2 and rollout_backend vllm (vLLM serves merged weights, "
            "gathered from the shards for full-parameter training only)",
        )

    @property
    def recompute_logprobs(self) -> bool:
        """Whether the old log-probs are re-scored by the trainer (``recompute_old_logprobs``
        resolved: None means True for the vLLM backend).

        Example:
            >>> GRPOConfig(rollout_backend="vllm").recompute_logprobs
            True
            >>> GRPOConfig().recompute_logprobs
            False
        """
        if self.recompute_old_logprobs is not None:
            return self.recompute_old_logprobs
        return self.rollout_backend == "vllm"

    @property
    def intrinsic_return_scale(self) -> float:
        """Weight of ``Turn.intrinsic_reward`` in the return the update normalises: 0 (GRPO has
        no intrinsic reward; EMPO²'s config says its own).

        Example:
            >>> GRPOConfig().intrinsic_return_scale
            0.0
        """
        return 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field plus ``agent`` (for metrics and leaderboard entries).

        Example:
            >>> GRPOConfig().to_dict()["agent"], config_class("empo")().to_dict()["memory_prob"]
            ('grpo', 0.25)
        """
        out = {"agent": self.agent}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


def config_class(agent: str) -> type[GRPOConfig]:
    """The dataclass of ``agent`` (``grpo`` or ``empo``).

    Example:
        >>> config_class("empo").__name__
        'EMPOConfig'
    """
    if agent not in AGENTS:
        raise ValueError(f"agent={agent!r}; expected one of {list(AGENTS)}")
    if agent == "empo":
        from empo_gym.agents.training.empo import EMPOConfig  # empo.py builds on this module

        return EMPOConfig
    return GRPOConfig


def paper_preset(agent: str, env: str = "scienceworld", **overrides: Any) -> GRPOConfig:
    """The paper's settings for ``agent`` on ``env`` (needs 8 x A100-class GPUs), plus overrides.

    Example:
        >>> paper_preset("grpo", "webshop").kl_coef
        0.01
    """
    return config_from_dict({"preset": "paper", "env": env, **overrides}, agent=agent)


def quick_preset(agent: str, env: str = "scienceworld", **overrides: Any) -> GRPOConfig:
    """The CPU quick settings for ``agent`` on ``env`` (SmolLM2-135M), plus overrides.

    Example:
        >>> quick_preset("empo").group_size
        4
    """
    return config_from_dict({"preset": "quick", "env": env, **overrides}, agent=agent)


def config_from_dict(
    data: dict[str, Any], agent: str | None = None, source: str = "<config>"
) -> GRPOConfig:
    """Build a config from a mapping (the YAML layout of this module's docstring).

    Args:
        data: ``agent`` / ``preset`` keys plus field overrides.
        agent: Overrides ``data["agent"]`` when given (e.g. from ``--agent``).
        source: Where ``data`` came from (prefixes every error).

    Raises:
        ValueError: Unknown key, bad preset / agent, wrong type or out-of-range value; the
            message names the key and the value.

    Example:
        >>> config_from_dict({"agent": "empo", "preset": "quick", "group_size": 3}).group_size
        3
    """
    if not isinstance(data, dict):
        raise ValueError(
            f"{source}: config must be a mapping of keys to values, got {type(data).__name__}"
        )
    data = dict(data)
    agent = str(agent or data.pop("agent", "grpo"))
    data.pop("agent", None)
    preset = data.pop("preset", "default")
    cls = config_class(agent)
    base = preset_base(preset, agent, str(data.get("env", "scienceworld")))
    return from_dict(cls, {**base, **data}, source, owner=f"agent {agent!r}")


def load_config(path: str | Path, agent: str | None = None) -> GRPOConfig:
    """Load and validate a YAML config (unknown keys rejected) before anything heavy happens.

    Args:
        path: YAML file (see the module docstring for its layout).
        agent: Overrides the file's ``agent`` key.

    Raises:
        ValueError: Unreadable file, invalid YAML or an invalid key / value (named).
    """
    return config_from_dict(read_yaml(path), agent=agent, source=str(path))


def _require(cfg: GRPOConfig, name: str, ok: bool, expected: str) -> None:
    if not ok:
        raise ValueError(f"{name}={getattr(cfg, name)!r} is invalid; expected {expected}")


__all__ = [
    "AGENTS",
    "BACKENDS",
    "COMPUTE_DTYPES",
    "GRPOConfig",
    "MASTER_DTYPES",
    "config_class",
    "config_from_dict",
    "load_config",
    "paper_preset",
    "quick_preset",
]
