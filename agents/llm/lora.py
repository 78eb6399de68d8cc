"""LoRA (peft) adapters: their settings and the one test of whether a model carries them.

A LoRA model checkpoints its adapter only, serves as its own KL reference with the adapter
disabled, and reaches vLLM as merged weights; each of those callers asks :func:`is_lora`.

Example:
    >>> import torch
    >>> is_lora(torch.nn.Linear(2, 2))
    False
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LoraSettings", "is_lora"]


@dataclass
class LoraSettings:
    """LoRA adapter settings (peft).

    Attributes:
        r: Rank.
        alpha: Scaling numerator.
        dropout: Dropout on the adapter input.
        target_modules: Module names the adapters attach to.
        path: Load a saved adapter from this directory instead of initialising a new one.
    """

    r: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"]
    )
    path: str | None = None


def is_lora(model: Any) -> bool:
    """Whether ``model`` is a peft model (LoRA adapters around a base model).

    FSDP2 shards a model by changing its class to a subclass, so a sharded peft model still
    counts; a wrapper that hides the model (DDP) does not: pass the unwrapped model.
    """
    # no model is a PeftModel unless peft was imported: plain runs need not load it (~1 s)
    peft_model = getattr(sys.modules.get("peft"), "PeftModel", None)
    return peft_model is not None and isinstance(model, peft_model)
