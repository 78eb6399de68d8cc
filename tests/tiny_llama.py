"""A tiny randomly initialised Llama for tests that need a real transformers causal LM."""

from __future__ import annotations

from typing import Any

import torch


def tiny_llama(vocab_size: int, seed: int = 0, **config: Any) -> torch.nn.Module:
    """A 2-layer Llama (hidden 32, 4 heads, pad id 0) in eval mode; ``config`` overrides fields.

    Example:
        >>> tiny_llama(50, hidden_size=16).config.hidden_size
        16
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    settings: dict[str, Any] = {
        "vocab_size": vocab_size,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 128,
        "pad_token_id": 0,
        **config,
    }
    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(**settings))
    model.eval()
    return model
