"""Per-GPU memory of a training config before launching it (``empo-gym plan``).

The estimate follows what the engine (:mod:`empo_gym.agents.training.engine`) allocates, in two
phases that never overlap:

update
    fp32 master weights, gradients and AdamW's two states (sharded over the GPUs under FSDP2,
    in CPU memory with ``cpu_offload``), the bf16 copy the forward runs on (FSDP2: two gathered
    decoder layers plus the root's embeddings; DDP with fp32 masters: autocast's cast weights),
    the activations of one micro-batch (``micro_batch_size`` rows of ``max_context_tokens +
    max_response_tokens`` tokens; with activation checkpointing each layer's input plus one
    layer's activations), the response logits, and the KL reference in the compute dtype.
rollout
    the persistent states (masters, AdamW states, reference) plus either the local backend's
    gathered bf16 weights and KV cache of this GPU's rollouts, or a colocated vLLM server's
    share (``vllm_gpu_memory_utilization`` of the GPU); vLLM servers on their own GPUs cost
    the training GPUs nothing.
load
    before sharding, every process holds the whole model in the master dtype.

Activations per token and decoder layer (bf16, attention without the L x L score matrix, as
SDPA / flash attention): ``2 * (8 h + 2 kv + 4 i)`` bytes (norm inputs, q / k / v, attention
output, MLP input, gate, up, activation, product), e.g. 211 KB for Qwen2.5-7B, 5.9 MB per
token over its 28 layers. A CUDA context and allocator slack of :data:`RUNTIME_OVERHEAD_GB`
is added to every phase. Model shapes come from a local ``config.json`` (a model directory) or
:data:`KNOWN_SHAPES`, so nothing is downloaded.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GB = 1e9
RUNTIME_OVERHEAD_GB = 2.0
"""CUDA context, NCCL buffers and allocator fragmentation per GPU."""


@dataclass(frozen=True)
class ModelShape:
    """The dimensions of a decoder-only transformer that memory depends on."""

    vocab_size: int
    """Vocabulary (embedding rows, logits width)."""
    hidden_size: int
    """Residual width h."""
    intermediate_size: int
    """MLP width i (gated MLP: gate, up and down projections)."""
    num_layers: int
    """Decoder layers L."""
    num_heads: int
    """Query heads."""
    num_kv_heads: int
    """Key / value heads (grouped-query attention)."""
    tied_embeddings: bool = False
    """The output head reuses the input embedding matrix."""
    qkv_bias: bool = False
    """q / k / v projections have biases (Qwen2)."""

    @property
    def kv_dim(self) -> int:
        """Width of the keys (and of the values): heads x head dim."""
        return self.num_kv_heads * (self.hidden_size // self.num_heads)

    @property
    def layer_params(self) -> int:
        """Parameters of one decoder layer.

        Example:
            >>> ModelShape(10, 4, 8, 1, 2, 1).layer_params  # q,o 16+16; k,v 8+8; mlp 96; norms 8
            152
        """
        h, kv = self.hidden_size, self.kv_dim
        attention = 2 * h * h + 2 * h * kv + ((h + 2 * kv) if self.qkv_bias else 0)
        return attention + 3 * h * self.intermediate_size + 2 * h

    @property
    def embedding_params(self) -> int:
        """Input embedding plus (untied) output head."""
        return self.vocab_size * self.hidden_size * (1 if self.tied_embeddings else 2)

    @property
    def num_params(self) -> int:
        """All parameters (final norm included).

        Example:
            >>> KNOWN_SHAPES["smollm2-135m"].num_params, KNOWN_SHAPES["qwen2.5-7b"].num_params
            (134515008, 7615616512)
        """
        return self.num_layers * self.layer_params + self.embedding_params + self.hidden_size

    def lora_params(self, rank: int) -> int:
        """Parameters of LoRA adapters of rank ``rank`` on q, k, v and o of every layer."""
        h, kv = self.hidden_size, self.kv_dim
        return self.num_layers * rank * (2 * h + 2 * (h + kv) + 2 * h)

    def activation_bytes_per_token_layer(self, dtype_bytes: int = 2) -> int:
        """Bytes one token keeps for the backward pass in one decoder layer (module docstring).

        Example:
            >>> KNOWN_SHAPES["qwen2.5-7b"].activation_bytes_per_token_layer()
            210944
        """
        h, kv, i = self.hidden_size, self.kv_dim, self.intermediate_size
        return dtype_bytes * (8 * h + 2 * kv + 4 * i)


def _qwen(v: int, h: int, i: int, n: int, heads: int, kv: int, tied: bool) -> ModelShape:
    return ModelShape(v, h, i, n, heads, kv, tied_embeddings=tied, qkv_bias=True)


def _smol(h: int, i: int, n: int, heads: int, kv: int) -> ModelShape:
    return ModelShape(49152, h, i, n, heads, kv, tied_embeddings=True)


#: Shapes of common policy models (their config.json), by lower-case name without the org and
#: the ``-instruct`` suffix.
KNOWN_SHAPES: dict[str, ModelShape] = {
    "qwen2.5-0.5b": _qwen(151936, 896, 4864, 24, 14, 2, True),
    "qwen2.5-1.5b": _qwen(151936, 1536, 8960, 28, 12, 2, True),
    "qwen2.5-3b": _qwen(151936, 2048, 11008, 36, 16, 2, True),
    "qwen2.5-7b": _qwen(152064, 3584, 18944, 28, 28, 4, False),
    "qwen2.5-14b": _qwen(152064, 5120, 13824, 48, 40, 8, False),
    "qwen2.5-32b": _qwen(152064, 5120, 27648, 64, 40, 8, False),
    "smollm2-135m": _smol(576, 1536, 30, 9, 3),
    "smollm2-360m": _smol(960, 2560, 32, 15, 5),
    "smollm2-1.7b": _smol(2048, 8192, 24, 32, 32),
}


def shape_from_config(config: dict[str, Any]) -> ModelShape:
    """A shape from a transformers ``config.json`` mapping.

    Example:
        >>> shape_from_config({"vocab_size": 10, "hidden_size": 4, "intermediate_size": 8,
        ...     "num_hidden_layers": 1, "num_attention_heads": 2}).num_kv_heads
        2
    """
    try:
        heads = int(config["num_attention_heads"])
        return ModelShape(
            vocab_size=int(config["vocab_size"]),
            hidden_size=int(config["hidden_size"]),
            intermediate_size=int(config["intermediate_size"]),
            num_layers=int(config["num_hidden_layers"]),
            num_heads=heads,
            num_kv_heads=int(config.get("num_key_value_heads") or heads),
            tied_embeddings=bool(config.get("tie_word_embeddings", False)),
            qkv_bias=str(config.get("model_type", "")).startswith("qwen2"),
        )
    except KeyError as exc:
        raise ValueError(
            f"config.json lacks {exc.args[0]!r}; expected a decoder-only transformers config"
        ) from None


def model_shape(model: str) -> ModelShape:
    """The shape of ``model``: a directory with config.json, else a :data:`KNOWN_SHAPES` name.

    Example:
        >>> model_shape("Qwen/Qwen2.5-7B-Instruct").num_layers
        28
    """
    path = Path(model).expanduser()
    if (path / "config.json").is_file():
        return shape_from_config(json.loads((path / "config.json").read_text(encoding="utf-8")))
    key = model.lower().rstrip("/").split("/")[-1].removesuffix("-instruct")
    if key in KNOWN_SHAPES:
        return KNOWN_SHAPES[key]
    raise ValueError(
        f"model={model!r}: shape unknown; expected a directory with config.json or one of "
        f"{sorted(KNOWN_SHAPES)} (an org prefix and an -Instruct suffix are fine)"
    )


def load_plan_config(path: str | Path, agent: str | None = None, env: str | None = None) -> Any:
    """The trainer config a YAML file describes: a run config (its ``agent:`` mapping, as in
    ``baselines/``) or a bare trainer config. The env is ``env``, else the file's ``env`` key,
    else an env name among the file name's ``_``-separated parts, else ScienceWorld; the
    algorithm is ``agent``, else the file's ``agent`` key, else the file name's first part.

    Raises:
        ValueError: Unreadable file or an invalid key / value (named).
    """
    from empo_gym.agents.training.config import AGENTS, config_from_dict
    from empo_gym.registry import env_names
    from empo_gym.yaml_config import read_yaml

    path = Path(path)
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of keys to values")
    if isinstance(data.get("agent"), dict):
        data = dict(data["agent"])
    parts = path.stem.split("_")
    env = env or data.pop("env", None) or next((p for p in parts if p in env_names()), None)
    algo = agent or (data.get("agent") if isinstance(data.get("agent"), str) else None)
    algo = algo or (parts[0] if parts[0] in AGENTS else "grpo")
    return config_from_dict({**data, "env": env or "scienceworld"}, agent=algo, source=str(path))


@dataclass
class MemoryPlan:
    """Per-GPU memory of one config, by component and phase (GB)."""

    shape: ModelShape
    gpus: int
    gpu_mem_gb: float
    backend: str
    """``ddp`` or ``fsdp2`` (``auto`` resolved: FSDP2 on several GPUs)."""
    rows: list[tuple[str, float, float]] = field(default_factory=list)
    """(component, update-phase GB, rollout-phase GB)."""
    cpu_gb: float = 0.0
    """Host memory per GPU holding offloaded states (``cpu_offload``)."""
    load_gb: float = 0.0
    """Each process loads the whole model in the master dtype onto its GPU before FSDP2
    shards it (plus the runtime overhead)."""
    notes: list[str] = field(default_factory=list)

    @property
    def update_gb(self) -> float:
        """Peak of the update phase."""
        return sum(r[1] for r in self.rows)

    @property
    def rollout_gb(self) -> float:
        """Peak of the rollout phase."""
        return sum(r[2] for r in self.rows)

    @property
    def peak_gb(self) -> float:
        """The largest phase (loading included)."""
        return max(self.update_gb, self.rollout_gb, self.load_gb)

    @property
    def fits(self) -> bool:
        """Whether the peak fits into one GPU."""
        return self.peak_gb <= self.gpu_mem_gb


def plan_memory(
    cfg: Any, gpus: int, gpu_mem_gb: float, shape: ModelShape | None = None
) -> MemoryPlan:
    """Estimate the per-GPU memory of training ``cfg`` on ``gpus`` GPUs of ``gpu_mem_gb`` GB.

    Args:
        cfg: A trainer config (:class:`~empo_gym.agents.training.config.GRPOConfig`).
        gpus: Training processes (one GPU each).
        gpu_mem_gb: Memory of one GPU in GB (1e9 bytes).
        shape: The model's shape; None = :func:`model_shape` of ``cfg.model``.

    Raises:
        ValueError: ``gpus`` < 1, ``gpu_mem_gb`` <= 0, or the model's shape is unknown.
    """
    if gpus < 1:
        raise ValueError(f"gpus={gpus}; expected >= 1")
    if gpu_mem_gb <= 0:
        raise ValueError(f"gpu_mem_gb={gpu_mem_gb}; expected > 0 (e.g. 80)")
    shape = shape or model_shape(cfg.model)
    backend = cfg.backend if cfg.backend != "auto" else ("fsdp2" if gpus > 1 else "ddp")
    shards = gpus if backend == "fsdp2" else 1
    cb = 4 if cfg.compute_dtype == "float32" else 2  # auto = bf16 on a GPU
    mb = 4 if cfg.master_dtype == "float32" else cb
    n = shape.num_params
    trainable = shape.lora_params(cfg.lora_rank) if cfg.lora else n
    offload = cfg.cpu_offload and backend == "fsdp2"
    plan = MemoryPlan(shape, gpus, gpu_mem_gb, backend)

    def add(name: str, update: float, rollout: float) -> None:
        plan.rows.append((name, update / GB, rollout / GB))

    plan.load_gb = (n * mb + RUNTIME_OVERHEAD_GB * GB) / GB
    masters = n * mb / shards
    grads = trainable * mb / shards
    optimizer = 2 * trainable * mb / shards
    if offload:
        plan.cpu_gb = (masters + grads + optimizer) / GB
        masters = grads = optimizer = 0.0
        plan.notes.append(f"cpu_offload: {plan.cpu_gb:.1f} GB of host memory per GPU")
    add(f"weights ({'fp32 masters' if mb == 4 else 'bf16'}, /{shards})", masters, masters)
    add("gradients", grads, 0.0)
    add("AdamW states (2)", optimizer, optimizer)
    if backend == "fsdp2":
        gathered = (2 * shape.layer_params + shape.embedding_params) * cb
        add("gathered compute weights (2 layers + embeddings)", gathered, 0.0)
    elif mb != cb:
        add("autocast bf16 weight copies", n * cb, 0.0)

    rows, tokens = cfg.micro_batch_size, cfg.max_context_tokens + cfg.max_response_tokens
    per_layer = shape.activation_bytes_per_token_layer(cb)
    if cfg.activation_checkpointing:
        acts = rows * tokens * (shape.num_layers * shape.hidden_size * cb + per_layer)
        add("activations (checkpointed)", acts, 0.0)
    else:
        add("activations", rows * tokens * shape.num_layers * per_layer, 0.0)
    # logits at the response positions only, their fp32 log-softmax and its gradient
    add("response logits", rows * cfg.max_response_tokens * shape.vocab_size * (cb + 8), 0.0)
    if cfg.kl_coef > 0 and not cfg.lora:
        ref = n * cb / shards
        add(f"KL reference (bf16, /{shards})", ref, ref)

    if getattr(cfg, "rollout_backend", "local") == "vllm":
        if getattr(cfg, "vllm_colocate", False):
            share = gpu_mem_gb * GB * getattr(cfg, "vllm_gpu_memory_utilization", 0.5)
            add("colocated vLLM (asleep in the update)", 0.0, share)
        else:
            plan.notes.append("vLLM servers on their own GPUs: nothing on the training GPUs")
    else:
        rollouts = math.ceil(cfg.tasks_per_iter / gpus) * cfg.group_size
        if backend == "fsdp2":  # DDP decodes from its own replica (autocast casts per op)
            add("local rollouts: gathered bf16 weights", 0.0, n * cb)
        kv = rollouts * tokens * 2 * shape.num_layers * shape.kv_dim * cb
        add(f"local rollouts: KV cache ({rollouts} rows)", 0.0, kv)
    add("CUDA context + allocator slack", RUNTIME_OVERHEAD_GB * GB, RUNTIME_OVERHEAD_GB * GB)
    if not plan.fits:
        hints = []
        if not cfg.activation_checkpointing:
            hints.append("activation_checkpointing: true")
        if backend != "fsdp2" and gpus > 1:
            hints.append("backend: fsdp2")
        if backend == "fsdp2" and not cfg.cpu_offload:
            hints.append("cpu_offload: true")
        if cfg.micro_batch_size > 1:
            hints.append("micro_batch_size: 1")
        if hints:
            plan.notes.append("try " + ", ".join(hints))
    return plan


def format_plan(plan: MemoryPlan, title: str = "") -> Any:
    """A rich table of ``plan`` (component rows, both phases, the verdict in the caption)."""
    from rich.table import Table

    s = plan.shape
    head = (
        f"{title or 'plan'}: {s.num_params / 1e9:.2f} B params, {plan.backend} on "
        f"{plan.gpus} x {plan.gpu_mem_gb:g} GB"
    )
    table = Table(title=head)
    table.add_column("per GPU (GB)")
    table.add_column("update", justify="right")
    table.add_column("rollout", justify="right")
    for name, update, rollout in plan.rows:
        table.add_row(name, f"{update:.1f}", f"{rollout:.1f}")
    table.add_row("total", f"{plan.update_gb:.1f}", f"{plan.rollout_gb:.1f}", style="bold")
    verdict = "fits" if plan.fits else "DOES NOT FIT"
    table.caption = (
        f"{verdict}: peak {plan.peak_gb:.1f} of {plan.gpu_mem_gb:g} GB (loading the whole "
        f"model: {plan.load_gb:.1f} GB)" + "".join(f"; {note}" for note in plan.notes)
    )
    return table


__all__ = [
    "KNOWN_SHAPES",
    "MemoryPlan",
    "ModelShape",
    "format_plan",
    "load_plan_config",
    "model_shape",
    "plan_memory",
    "shape_from_config",
]
