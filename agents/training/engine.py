"""The training engine: where the policy's weights live, in which precision, and how ranks agree.

Two backends, picked by ``GRPOConfig.backend``:

``ddp``
    Every process holds the whole model, its gradients and AdamW states; the update all-reduces
    the gradients once per optimizer step (ranks may run different numbers of micro-batches).
``fsdp2``
    torch FSDP2 (``fully_shard`` on every decoder layer, then on the root): weights, gradients
    and AdamW states are sharded over the processes; each forward all-gathers a layer, each
    backward reduce-scatters its gradient. Every rank must therefore run the same forward and
    backward passes: :meth:`Engine.balanced_passes` pads the micro-batches with zero-weight
    rows, and :meth:`Engine.generation` gathers the full weights once before rollouts (ranks
    then decode for different numbers of steps without collectives).

Precision, on both: with ``master_dtype: float32`` the trainable weights and AdamW states are
fp32; a bf16 ``compute_dtype`` then runs the forward/backward in bf16 (FSDP2: a
``MixedPrecisionPolicy(param_dtype=bf16, reduce_dtype=fp32)``; one process / DDP: autocast), so
an lr-1e-6 step is not rounded away by bf16 weights.

Checkpoints of the sharded model are torch distributed checkpoints (DCP, one shard per rank)
written by :meth:`Engine.save_sharded`; :meth:`Engine.export` gathers one HF-format model.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from empo_gym.agents.training.process_group import ProcessGroup

log = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
DCP_DIR = "dcp"
"""Sub-directory of a checkpoint holding the DCP shards and the per-rank RNG states."""


def compute_dtype(name: str, device: torch.device) -> torch.dtype:
    """The forward/backward dtype ``name`` means on ``device`` (``auto``: bf16 on CUDA when
    supported, else fp32).

    Example:
        >>> cpu = torch.device("cpu")
        >>> compute_dtype("auto", cpu), compute_dtype("bfloat16", cpu)
        (torch.float32, torch.bfloat16)
    """
    if name == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if name not in _DTYPES:
        raise ValueError(f"compute_dtype={name!r}; expected 'auto' or one of {list(_DTYPES)}")
    return _DTYPES[name]


def load_dtype(cfg: Any, device: torch.device) -> torch.dtype:
    """The dtype the policy is loaded in: fp32 when the config asks for fp32 master weights,
    else the compute dtype (the weights AdamW then updates directly).

    Example:
        >>> from empo_gym.agents.training.config import GRPOConfig
        >>> cfg = GRPOConfig(master_dtype="auto", compute_dtype="bfloat16")
        >>> load_dtype(cfg, torch.device("cpu")), load_dtype(GRPOConfig(), torch.device("cpu"))
        (torch.bfloat16, torch.float32)
    """
    if cfg.master_dtype == "float32":
        return torch.float32
    return compute_dtype(cfg.compute_dtype, device)


def resolve_backend(name: str, world_size: int, device: torch.device) -> str:
    """``ddp`` or ``fsdp2`` (``auto``: FSDP2 with several CUDA processes, else DDP).

    Example:
        >>> gpu, cpu = torch.device("cuda"), torch.device("cpu")
        >>> resolve_backend("auto", 8, gpu), resolve_backend("auto", 2, cpu)
        ('fsdp2', 'ddp')
    """
    if name == "auto":
        return "fsdp2" if world_size > 1 and device.type == "cuda" else "ddp"
    if name not in ("ddp", "fsdp2"):
        raise ValueError(f"backend={name!r}; expected 'auto', 'ddp' or 'fsdp2'")
    return name


def decoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The repeated blocks FSDP2 shards one by one (transformers' ``_no_split_modules``; PEFT
    wrappers are looked through).

    Example:
        >>> decoder_layers(torch.nn.Linear(2, 2))
        []
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    names = set(getattr(base, "_no_split_modules", None) or [])
    return [
        m
        for m in model.modules()
        if type(m).__name__ in names or (not names and type(m).__name__.endswith("DecoderLayer"))
    ]


def frozen_copy(model: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    """A frozen copy of ``model`` whose parameters are ``dtype`` tensors in CPU memory (tied
    weights stay tied): the device never holds two full copies while it is made.

    Example:
        >>> ref = frozen_copy(torch.nn.Linear(2, 2), torch.bfloat16)
        >>> ref.weight.dtype, ref.weight.requires_grad, ref.training
        (torch.bfloat16, False, False)
    """
    memo: dict[int, Any] = {
        id(p): torch.nn.Parameter(p.detach().to("cpu", dtype=dtype, copy=True), requires_grad=False)
        for p in model.parameters()
    }
    return copy.deepcopy(model, memo).eval()


@dataclass
class Engine:
    """How one process trains: backend, world, device and dtypes (see the module docstring).

    Build it with :meth:`from_config`; :meth:`wrap_model` then converts the policy in place
    (before the optimizer is built: AdamW must hold the fp32 / sharded parameters).

    Attributes:
        backend: ``ddp`` or ``fsdp2`` (resolved).
        group: The process group (rank, world size, device, collectives); one process by
            default.
        compute: Forward/backward dtype.
        fp32_master: Keep trainable weights and AdamW states in fp32.
        activation_checkpointing: Recompute layer activations in the backward pass.
        cpu_offload: FSDP2: sharded weights, gradients and AdamW states in CPU memory.
    """

    backend: str = "ddp"
    group: ProcessGroup = field(default_factory=ProcessGroup)
    compute: torch.dtype = torch.float32
    fp32_master: bool = True
    activation_checkpointing: bool = False
    cpu_offload: bool = False

    @classmethod
    def from_config(cls, cfg: Any, group: ProcessGroup | None = None) -> Engine:
        """The engine ``cfg`` asks for in this process of ``group`` (None: one process on the
        CPU; the trainer passes :meth:`ProcessGroup.join`'s).

        Example:
            >>> from empo_gym.agents.training.config import GRPOConfig
            >>> Engine.from_config(GRPOConfig(backend="fsdp2")).backend  # one process: plain
            'ddp'
        """
        group = group if group is not None else ProcessGroup()
        dev = group.device
        backend = resolve_backend(cfg.backend, group.world_size, dev)
        if backend == "fsdp2" and not group.joined:
            backend = "ddp"  # one process without a process group: nothing to shard over
        return cls(
            backend=backend,
            group=group,
            compute=compute_dtype(cfg.compute_dtype, dev),
            fp32_master=cfg.master_dtype == "float32",
            activation_checkpointing=cfg.activation_checkpointing,
            # FSDP2's offload copies shards between host and GPU; on CPU there is nothing to do
            cpu_offload=cfg.cpu_offload and backend == "fsdp2" and dev.type == "cuda",
        )

    # ------------------------------------------------------------------ properties
    @property
    def rank(self) -> int:
        """This process's rank (the group's)."""
        return self.group.rank

    @property
    def world_size(self) -> int:
        """Processes in the run (the group's; 1 without a launcher)."""
        return self.group.world_size

    @property
    def device(self) -> torch.device:
        """Where this process computes (the group's device)."""
        return self.group.device

    @property
    def sharded(self) -> bool:
        """True when the weights are FSDP2 shards (possibly over a 1-process group, e.g. to
        measure FSDP2 on one GPU; without a process group :meth:`from_config` picks DDP)."""
        return self.backend == "fsdp2"

    @property
    def distributed(self) -> bool:
        """True with several processes (either backend)."""
        return self.group.distributed

    @property
    def share_prefix(self) -> bool:
        """Whether the update may run a prompt prefix shared by a micro-batch once.

        Off with activation checkpointing (the prefix's KV cache would be recomputed and
        appended again in the backward pass) and with FSDP2 (the prefix pass runs for some
        micro-batches only: ranks would run different numbers of forward passes).
        """
        return not self.activation_checkpointing and not self.sharded

    # ------------------------------------------------------------------ model
    def wrap_model(self, model: torch.nn.Module) -> torch.nn.Module:
        """Convert the policy in place: fp32 masters, activation checkpointing, FSDP2 shards.

        Returns the same module (FSDP2 changes its class in place), so ``policy.model`` stays
        the trained model.
        """
        if self.fp32_master:
            for p in model.parameters():
                if p.requires_grad and p.dtype != torch.float32:
                    p.data = p.data.float()
        if self.activation_checkpointing:
            enable = getattr(model, "activation_checkpointing_enable", None)
            if enable is None:
                raise ValueError(
                    f"activation_checkpointing=True needs a transformers model; got "
                    f"{type(model).__name__} (set activation_checkpointing: false)"
                )
            # non-reentrant: works with frozen inputs (LoRA) and with FSDP2
            enable(activation_checkpointing_kwargs={"use_reentrant": False})
            log.info("activation checkpointing on: the update's shared-prefix pass is off")
        if self.sharded:
            self._shard(model, trainable=True)
            log.info(
                "FSDP2 over %d processes: shared-prefix pass off (ranks must run the same "
                "forward passes)",
                self.world_size,
            )
        return model

    def wrap_reference(self, ref: torch.nn.Module) -> torch.nn.Module:
        """The frozen KL reference in the compute dtype: on the device, or (FSDP2) sharded
        like the policy (``fully_shard`` moves each shard to the device, so a reference in CPU
        memory, :func:`frozen_copy`, never lands whole on a GPU)."""
        ref.eval()
        for p in ref.parameters():
            p.requires_grad_(False)
        if self.sharded:
            ref.to(dtype=self.compute)
            self._shard(ref, trainable=False)
        else:
            ref.to(device=self.device, dtype=self.compute)
        return ref

    def _shard(self, model: torch.nn.Module, *, trainable: bool) -> None:
        from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, fully_shard

        kwargs: dict[str, Any] = {}
        if trainable and self.fp32_master and self.compute != torch.float32:
            kwargs["mp_policy"] = MixedPrecisionPolicy(
                param_dtype=self.compute, reduce_dtype=torch.float32
            )
        if self.cpu_offload:
            kwargs["offload_policy"] = CPUOffloadPolicy()
        layers = decoder_layers(model)
        if not layers:
            raise ValueError(
                f"backend=fsdp2 found no decoder layers in {type(model).__name__}; expected a "
                "transformers causal LM (set backend: ddp)"
            )
        for layer in layers:
            fully_shard(layer, **kwargs)
        fully_shard(model, **kwargs)

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """bf16 compute over fp32 masters on one process / DDP (FSDP2 casts by itself)."""
        if self.sharded or self.compute == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.compute)

    @contextlib.contextmanager
    def generation(self, model: torch.nn.Module) -> Iterator[None]:
        """Rollouts and tips: FSDP2 gathers every layer once (a collective all ranks enter),
        then decodes without collectives, whatever each rank's number of steps; the shards
        come back on exit."""
        if not self.sharded:
            with self.autocast():
                yield
            return
        mods = _fsdp_modules(model)
        for m in mods:
            m.unshard()
            m.set_reshard_after_forward(False)
        try:
            yield
        finally:
            for m in mods:
                m.reshard()
                m.set_reshard_after_forward(True)

    def gather_for_inference(self, model: torch.nn.Module) -> None:
        """After training: keep the full weights gathered on every rank, so the main process
        can evaluate alone (its forward passes then need no other rank)."""
        if self.sharded:
            for m in _fsdp_modules(model):
                m.unshard()
                m.set_reshard_after_forward(False)

    # ------------------------------------------------------------------ update
    def all_reduce_sum(self, value: float) -> float:
        """``value`` summed over processes (itself with one)."""
        return self.group.sum(value)

    def balanced_passes(self, local: int) -> int:
        """Micro-batches every rank runs: the most any rank has under FSDP2 (the others pad
        with zero-weight rows), else ``local``."""
        if not self.sharded:
            return local
        return self.group.max(local)

    def sync_gradients(self, params: list[torch.Tensor]) -> None:
        """DDP: mean of the gradients over processes, once per optimizer step (ranks hold
        different numbers of turns, so a per-backward all-reduce would deadlock). FSDP2 already
        reduce-scattered them in the backward pass."""
        if not self.distributed or self.sharded:
            return
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        self.group.mean_(p.grad for p in params)

    def clip_grad_norm(self, params: list[torch.Tensor], max_norm: float) -> float:
        """Clip the global gradient norm (over every shard) to ``max_norm``; return it."""
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        if hasattr(norm, "full_tensor"):  # DTensor: the norm of the sharded gradients
            norm = norm.full_tensor()
        return float(norm)

    # ------------------------------------------------------------------ checkpoints
    def save_sharded(
        self, directory: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer
    ) -> None:
        """Every rank writes its shard of weights and AdamW states (DCP) and its RNG states."""
        import torch.distributed.checkpoint as dcp
        from safetensors.torch import save_file
        from torch.distributed.checkpoint.state_dict import get_state_dict

        from empo_gym.agents.training.checkpoint import rng_state

        msd, osd = get_state_dict(model, optimizer)
        dcp.save({"model": msd, "optimizer": osd}, checkpoint_id=str(directory))
        meta, tensors = rng_state()
        save_file(tensors, str(directory / f"rng_rank{self.rank}.safetensors"))
        (directory / f"rng_rank{self.rank}.json").write_text(json.dumps(meta), encoding="utf-8")

    def load_sharded(
        self, directory: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer
    ) -> None:
        """Restore :meth:`save_sharded` into the sharded model and its optimizer (and this
        rank's RNG states, so a resumed run samples like an uninterrupted one)."""
        import torch.distributed.checkpoint as dcp
        from safetensors.torch import load_file
        from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

        from empo_gym.agents.training.checkpoint import set_rng_state

        msd, osd = get_state_dict(model, optimizer)
        state = {"model": msd, "optimizer": osd}
        dcp.load(state, checkpoint_id=str(directory))
        set_state_dict(
            model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"]
        )
        rng = directory / f"rng_rank{self.rank}.json"
        if rng.exists():
            set_rng_state(
                json.loads(rng.read_text(encoding="utf-8")),
                load_file(str(directory / f"rng_rank{self.rank}.safetensors")),
            )

    def full_state_dict(self, model: torch.nn.Module) -> dict[str, torch.Tensor]:
        """The whole model's weights on CPU on rank 0 (empty elsewhere); a collective under
        FSDP2."""
        if not self.sharded:
            return {k: v.detach().cpu() for k, v in model.state_dict().items()}
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        return get_model_state_dict(model, options=options)

    def export(self, model: torch.nn.Module, directory: Path) -> Path | None:
        """Write one HF-format model (``save_pretrained``: config + safetensors) gathered from
        the shards; every rank calls it, rank 0 writes. Returns the directory on rank 0.

        Published with :func:`~empo_gym.atomic_io.atomic_dir`: a kill at any point leaves the
        previous export or the new one, complete."""
        from empo_gym.atomic_io import atomic_dir

        state = self.full_state_dict(model)
        if self.rank != 0:
            return None
        with atomic_dir(directory) as tmp:
            model.save_pretrained(str(tmp), state_dict=state)
        return directory


def _fsdp_modules(model: torch.nn.Module) -> list[Any]:
    from torch.distributed.fsdp import FSDPModule

    return [m for m in model.modules() if isinstance(m, FSDPModule)]


__all__ = [
    "DCP_DIR",
    "Engine",
    "compute_dtype",
    "decoder_layers",
    "frozen_copy",
    "load_dtype",
    "resolve_backend",
]
