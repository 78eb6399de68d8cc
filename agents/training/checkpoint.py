"""Atomic, pickle-free training checkpoints: weights, optimizer, RNG states, iteration counter.

Layout of one checkpoint (``<root>/iter_000010/``)::

    model.safetensors          full weights (shared/tied tensors handled), or
    adapter.safetensors        LoRA adapter weights + adapter_config.json (PEFT models)
    optimizer.safetensors      optimizer state tensors, keyed "state/<param index>/<name>"
    optimizer.json             param groups and non-tensor state
    rng.safetensors            torch CPU (and CUDA) generator states
    dcp/                       instead of the model / optimizer files: the FSDP2 shards (torch
                               distributed checkpoint) and each rank's RNG states
    state.json                 iteration, python / numpy / trainer RNG states, caller extras

The directory is published with :func:`empo_gym.atomic_io.atomic_dir` (written under a temporary
name, then swapped in: a re-saved iteration is never missing); the ``<root>/latest`` pointer is
replaced atomically afterwards, so an interrupted save leaves the previous checkpoint intact and
``latest`` never names a partial one. Readers first restore a copy a killed re-save had put
aside (:func:`~empo_gym.atomic_io.restore_dirs`).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, load_model, save_file, save_model

from empo_gym.agents.llm.lora import is_lora
from empo_gym.atomic_io import atomic_dir, remove_dir, restore_dirs, write_text_atomic

FORMAT_VERSION = 1
LATEST = "latest"
_PREFIX = "iter_"


@dataclass
class CheckpointState:
    """What :func:`load_checkpoint` restores besides the tensors.

    Attributes:
        iteration: Iteration counter saved with the checkpoint (iterations completed).
        extra: The JSON-serialisable ``extra`` dict given to :func:`save_checkpoint`.
        path: Directory the checkpoint was read from.
    """

    iteration: int
    extra: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")


def _optimizer_to_files(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, entry in sd["state"].items():
        for name, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state/{pid}/{name}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[name] = value
    groups = [
        {k: list(v) if isinstance(v, tuple) else v for k, v in group.items()}
        for group in sd["param_groups"]
    ]
    return tensors, {"param_groups": groups, "scalars": scalars}


def _optimizer_from_files(tensors: dict[str, torch.Tensor], meta: dict) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        _, pid, name = key.split("/", 2)
        state.setdefault(int(pid), {})[name] = value
    for pid, entry in meta["scalars"].items():
        state.setdefault(int(pid), {}).update(entry)
    groups = [
        {k: tuple(v) if isinstance(v, list) and k != "params" else v for k, v in group.items()}
        for group in meta["param_groups"]
    ]
    return {"state": state, "param_groups": groups}


def rng_state(trainer_rng: random.Random | None = None) -> tuple[dict, dict[str, torch.Tensor]]:
    """Capture python, numpy, torch (CPU/CUDA) and an optional trainer RNG as JSON + tensors.

    Example:
        >>> meta, tensors = rng_state(random.Random(1))
        >>> sorted(meta), "torch_cpu" in tensors
        (['numpy', 'python', 'trainer'], True)
    """
    name, keys, pos, has_gauss, cached = np.random.get_state()
    meta: dict[str, Any] = {
        "python": _py_state_to_json(random.getstate()),
        "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "trainer": _py_state_to_json(trainer_rng.getstate()) if trainer_rng else None,
    }
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda_{i}"] = s
    return meta, tensors


def set_rng_state(
    meta: dict, tensors: dict[str, torch.Tensor], trainer_rng: random.Random | None = None
) -> None:
    """Restore what :func:`rng_state` captured (global generators, and ``trainer_rng`` in place).

    Example:
        >>> meta, tensors = rng_state(); a = random.random()
        >>> set_rng_state(meta, tensors); a == random.random()
        True
    """
    random.setstate(_py_state_from_json(meta["python"]))
    name, keys, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(tensors["torch_cpu"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("torch_cuda_")]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    if trainer_rng is not None and meta.get("trainer") is not None:
        trainer_rng.setstate(_py_state_from_json(meta["trainer"]))


def _py_state_to_json(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _py_state_from_json(data: list) -> tuple:
    version, internal, gauss = data
    return (version, tuple(internal), gauss)


def checkpoint_dir(root: str | Path, iteration: int) -> Path:
    """Directory of the checkpoint of ``iteration`` under ``root``.

    Example:
        >>> checkpoint_dir("runs/x/checkpoints", 7).name
        'iter_000007'
    """
    return Path(root) / f"{_PREFIX}{iteration:06d}"


def save_checkpoint(
    root: str | Path,
    iteration: int,
    model: torch.nn.Module | None,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    trainer_rng: random.Random | None = None,
    extra: dict[str, Any] | None = None,
    write_extra: Callable[[Path], None] | None = None,
    keep: int | None = None,
) -> Path:
    """Write a checkpoint of ``iteration`` atomically and point ``<root>/latest`` at it.

    Args:
        root: Checkpoints directory (created if needed).
        iteration: Number of completed iterations.
        model: The policy; a PEFT model saves its adapter only. None when ``write_extra``
            writes the weights (FSDP2's sharded checkpoint).
        optimizer: Optimizer whose state is saved (tensors as safetensors, the rest as JSON).
        trainer_rng: The trainer's own ``random.Random`` (e.g. mode draws).
        extra: JSON-serialisable data (metrics so far, config, ...) returned on load.
        write_extra: Called with the temporary checkpoint directory before it is published,
            to add files of other components (e.g. the memory store) to the same atomic write.
        keep: Delete older ``iter_*`` checkpoints beyond the newest ``keep``.

    Returns:
        The checkpoint directory.
    """
    root = Path(root)
    final = checkpoint_dir(root, iteration)
    with atomic_dir(final) as tmp:  # re-saving an iteration (after a resume) replaces it
        files = []
        if model is None:
            pass
        elif is_lora(model):
            from peft import get_peft_model_state_dict

            adapter = {
                k: v.detach().cpu().contiguous()
                for k, v in get_peft_model_state_dict(model).items()
            }
            save_file(adapter, str(tmp / "adapter.safetensors"))
            model.peft_config[model.active_adapter].save_pretrained(str(tmp))
            files += ["adapter.safetensors", "adapter_config.json"]
        else:
            save_model(model, str(tmp / "model.safetensors"))
            files.append("model.safetensors")
        if optimizer is not None:
            tensors, meta = _optimizer_to_files(optimizer)
            save_file(tensors, str(tmp / "optimizer.safetensors"))
            _write_json(tmp / "optimizer.json", meta)
            files += ["optimizer.safetensors", "optimizer.json"]
        rng_meta, rng_tensors = rng_state(trainer_rng)
        save_file(rng_tensors, str(tmp / "rng.safetensors"))
        files.append("rng.safetensors")
        if write_extra is not None:
            write_extra(tmp)
        state = {
            "format_version": FORMAT_VERSION,
            "iteration": int(iteration),
            "rng": rng_meta,
            "extra": extra or {},
            "files": files,
        }
        _write_json(tmp / "state.json", state)  # written last: its presence marks completeness
    write_text_atomic(root / LATEST, final.name + "\n")
    if keep is not None:
        for old_ckpt in list_checkpoints(root)[:-keep]:
            if old_ckpt != final:
                remove_dir(old_ckpt)  # renamed away first: never listed half-deleted
    return final


def list_checkpoints(root: str | Path) -> list[Path]:
    """Complete checkpoints under ``root`` (those with a state.json), oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    restore_dirs(root)  # a copy a killed re-save had put aside comes back (nothing deleted)
    found = [
        p for p in root.iterdir() if p.name.startswith(_PREFIX) and (p / "state.json").exists()
    ]
    return sorted(found, key=lambda p: p.name)


def latest_checkpoint(root: str | Path) -> Path | None:
    """The checkpoint ``<root>/latest`` names, else the newest complete one, else None."""
    root = Path(root)
    restore_dirs(root)
    pointer = root / LATEST
    if pointer.exists():
        candidate = root / pointer.read_text(encoding="utf-8").strip()
        if (candidate / "state.json").exists():
            return candidate
    found = list_checkpoints(root)
    return found[-1] if found else None


def load_newest_intact(
    root: str | Path,
    load: Callable[[Path], CheckpointState],
    *,
    log: Callable[[str], None] = print,
) -> CheckpointState | None:
    """Resume from the newest checkpoint under ``root`` that loads, skipping corrupt ones.

    The one ``latest`` names is tried first, then the others from newest to oldest; each one
    that fails to load (a damaged weights file, unparsable ``state.json``, ...) is reported
    through ``log`` with the reason, and the next older one is tried.

    Args:
        root: Checkpoints directory.
        load: Loads one checkpoint directory in place and returns its state (e.g.
            :func:`load_checkpoint` plus other components' files such as the memory store); any
            exception marks that checkpoint corrupt (a later successful load overwrites what a
            failed attempt left).
        log: Where the skipped checkpoints are reported.

    Returns:
        The loaded state, or None when ``root`` holds no checkpoint.

    Raises:
        ValueError: Checkpoints exist but none loads (the message lists each one's reason).
    """
    candidates = list(reversed(list_checkpoints(root)))
    latest = latest_checkpoint(root)
    if latest is not None:
        candidates = [latest, *(c for c in candidates if c != latest)]
    failures = []
    for path in candidates:
        try:
            state = load(path)
        except Exception as exc:  # any damage: try the previous checkpoint
            reason = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
            failures.append(f"{path.name} ({reason})")
            log(f"skipping checkpoint {path} (corrupt: {reason}); trying the previous one")
            continue
        return state
    if failures:
        raise ValueError(
            f"no intact checkpoint in {root}: {'; '.join(failures)}; expected at least one "
            "that loads: delete the damaged ones (or the run directory) to start over"
        )
    return None


def load_checkpoint(
    path: str | Path,
    model: torch.nn.Module | None,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    trainer_rng: random.Random | None = None,
    restore_rng: bool = True,
) -> CheckpointState:
    """Load a checkpoint written by :func:`save_checkpoint` into ``model`` / ``optimizer``.

    Args:
        path: A checkpoint directory, or a checkpoints root (its latest checkpoint is used).
        model: Model of the same architecture (same PEFT setup when an adapter was saved);
            None reads no weights (a sharded checkpoint is loaded by the engine).
        optimizer: Optimizer over the same parameters, in the same order.
        trainer_rng: Restored in place when given.
        restore_rng: Also restore the global python / numpy / torch generators.

    Raises:
        FileNotFoundError: No complete checkpoint at ``path``.
        ValueError: The checkpoint does not match ``model`` (adapter vs full weights).
    """
    path = Path(path)
    if not (path / "state.json").exists():
        found = latest_checkpoint(path)
        if found is None:
            raise FileNotFoundError(f"no complete checkpoint (state.json) in {path}")
        path = found
    state = json.loads((path / "state.json").read_text(encoding="utf-8"))
    if state.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path}: checkpoint format {state.get('format_version')!r}; expected {FORMAT_VERSION}"
        )
    if model is None:
        pass
    elif (path / "adapter.safetensors").exists():
        if not is_lora(model):
            raise ValueError(f"{path} holds a LoRA adapter; expected a PEFT model to load it into")
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(model, load_file(str(path / "adapter.safetensors")))
    else:
        if is_lora(model):
            raise ValueError(f"{path} holds full weights; expected a plain model, got a PEFT one")
        load_model(model, str(path / "model.safetensors"))
    if optimizer is not None:
        if not (path / "optimizer.safetensors").exists():
            raise FileNotFoundError(f"{path} has no optimizer state (saved without optimizer)")
        meta = json.loads((path / "optimizer.json").read_text(encoding="utf-8"))
        tensors = load_file(str(path / "optimizer.safetensors"))
        optimizer.load_state_dict(_optimizer_from_files(tensors, meta))
    if restore_rng:
        set_rng_state(state["rng"], load_file(str(path / "rng.safetensors")), trainer_rng)
    elif trainer_rng is not None and state["rng"].get("trainer") is not None:
        trainer_rng.setstate(_py_state_from_json(state["rng"]["trainer"]))
    return CheckpointState(iteration=int(state["iteration"]), extra=state["extra"], path=path)
