"""Weight export for vLLM: a trainer's model written as a checkpoint a vLLM server loads.

:func:`write_hf_weights` writes Hugging Face layout (``config.json`` + safetensors) with a LoRA
adapter merged and tied output embeddings untied: the initial checkpoint a colocated server
starts from, and each version the disk weight sync
(:class:`~empo_gym.agents.llm.vllm_sync.WeightSync`) asks the servers to reload.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

from empo_gym.agents.llm.lora import is_lora
from empo_gym.atomic_io import atomic_dir


def write_hf_weights(
    model: Any,
    directory: str | os.PathLike[str],
    tokenizer: Any = None,
    *,
    state_dict: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` in Hugging Face layout (``config.json`` + safetensors) into ``directory``.

    A LoRA (peft) model is written with its adapter merged into a copy of the base weights, so
    vLLM serves exactly the trained policy. Tied input / output embeddings are written untied
    (``lm_head.weight`` stored, ``tie_word_embeddings: false``): vLLM's in-place
    ``reload_weights`` does not re-tie them and would keep serving the old output layer, so a
    server must be started from such a checkpoint. The directory is published with
    :func:`~empo_gym.atomic_io.atomic_dir`: a reader never sees half of it, and a kill at any
    point leaves the previous copy or the new one.

    Args:
        model: A ``transformers`` causal LM (or a peft model around one).
        directory: Target directory (replaced when it exists).
        tokenizer: Written too when given (a server started from ``directory`` needs it).
        state_dict: The weights to write instead of ``model``'s own (a model sharded by FSDP2:
            the full state gathered from its shards; LoRA models are not supported then).
    """
    if state_dict is not None and is_lora(model):
        raise ValueError(
            "write_hf_weights got a gathered state_dict for a LoRA model; expected a plain "
            "model (vLLM serves merged weights: train full-parameter under FSDP2 with vLLM)"
        )
    target = Path(directory)
    # peft: vLLM loads plain checkpoints (the copy keeps the trainer's adapter training)
    plain = copy.deepcopy(model).merge_and_unload() if is_lora(model) else model
    with atomic_dir(target) as tmp:
        plain.save_pretrained(tmp, safe_serialization=True, state_dict=state_dict)
        _untie_output_embeddings(plain, tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
    return target


def _untie_output_embeddings(model: Any, directory: Path) -> None:
    """Store a tied output layer as its own tensor and mark the config untied."""
    config_path = directory / "config.json"
    config = json.loads(config_path.read_text())
    tied = [c for c in (config, config.get("text_config") or {}) if c.get("tie_word_embeddings")]
    output = model.get_output_embeddings()
    if not tied or output is None:
        return
    from safetensors.torch import load_file, save_file

    name = next(n for n, m in model.named_modules() if m is output) + ".weight"
    tensor = output.weight.detach().to("cpu").contiguous().clone()
    index_path = directory / "model.safetensors.index.json"
    if index_path.is_file():  # sharded: one more shard, named in the index
        index = json.loads(index_path.read_text())
        save_file({name: tensor}, directory / "model-output-embeddings.safetensors")
        index["weight_map"][name] = "model-output-embeddings.safetensors"
        index_path.write_text(json.dumps(index, indent=2))
    else:
        single = directory / "model.safetensors"
        state = load_file(single)
        state[name] = tensor
        save_file(state, single, metadata={"format": "pt"})
    for c in tied:
        c["tie_word_embeddings"] = False
    config_path.write_text(json.dumps(config, indent=2))
