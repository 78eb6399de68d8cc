"""Per-token log-probabilities of responses under prompts (the quantity every ratio needs)."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import torch

_LOGITS_TO_KEEP: dict[type, bool] = {}


def pack_prompt_response(
    prompt_ids: Sequence[Sequence[int]],
    response_ids: Sequence[Sequence[int]],
    pad_id: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Right-pad ``prompt + response`` rows into one batch.

    Returns:
        input_ids [B, L], attention_mask [B, L], response_mask [B, L] (1 on response tokens),
        and ``L``.
    """
    if len(prompt_ids) != len(response_ids):
        raise ValueError(
            f"got {len(prompt_ids)} prompts but {len(response_ids)} responses; expected one each"
        )
    rows = [list(p) + list(r) for p, r in zip(prompt_ids, response_ids, strict=True)]
    length = max(len(r) for r in rows)
    batch = len(rows)
    input_ids = torch.full((batch, length), pad_id, dtype=torch.long)
    attention = torch.zeros((batch, length), dtype=torch.long)
    response_mask = torch.zeros((batch, length), dtype=torch.float32)
    for i, (p, r) in enumerate(zip(prompt_ids, response_ids, strict=True)):
        n = len(p) + len(r)
        input_ids[i, :n] = torch.tensor(rows[i], dtype=torch.long)
        attention[i, :n] = 1
        response_mask[i, len(p) : n] = 1.0
    return input_ids, attention, response_mask, length


def accepts_logits_to_keep(model: torch.nn.Module) -> bool:
    """Whether ``model``'s forward takes ``logits_to_keep`` (transformers causal LMs; PEFT
    wrappers are looked through).

    Example:
        >>> accepts_logits_to_keep(torch.nn.Linear(2, 2))
        False
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    key = type(base)
    if key not in _LOGITS_TO_KEEP:
        try:
            params = inspect.signature(base.forward).parameters
        except (TypeError, ValueError):
            params = {}
        _LOGITS_TO_KEEP[key] = "logits_to_keep" in params
    return _LOGITS_TO_KEEP[key]


#: Shorter shared prefixes are not worth a separate forward pass.
MIN_SHARED_PREFIX = 32


def shared_prefix_len(prompt_ids: Sequence[Sequence[int]]) -> int:
    """Tokens all prompts start with, leaving every prompt at least one token of its own.

    Example:
        >>> shared_prefix_len([[1, 2, 3, 4], [1, 2, 3, 9, 9], [1, 2, 3]])
        2
    """
    if not prompt_ids:
        return 0
    first = prompt_ids[0]
    n = min(len(p) for p in prompt_ids) - 1  # the last prompt token predicts the response
    for p in prompt_ids[1:]:
        k = 0
        while k < n and p[k] == first[k]:
            k += 1
        n = k
    return max(n, 0)


def shareable_prefix_len(model: torch.nn.Module, prompt_ids: Sequence[Sequence[int]]) -> int:
    """The prefix :func:`token_logprobs` runs once for this batch: the shared prefix when it is
    at least :data:`MIN_SHARED_PREFIX` tokens and ``model`` can take a KV cache, else 0.

    Example:
        >>> shareable_prefix_len(torch.nn.Linear(2, 2), [[1] * 40 + [2], [1] * 40 + [3]])
        0
    """
    if len(prompt_ids) < 2 or not accepts_logits_to_keep(model):
        return 0
    shared = shared_prefix_len(prompt_ids)
    return shared if shared >= MIN_SHARED_PREFIX else 0


def token_logprobs(
    model: torch.nn.Module,
    prompt_ids: Sequence[Sequence[int]],
    response_ids: Sequence[Sequence[int]],
    pad_id: int,
    *,
    temperature: float = 1.0,
    share_prefix: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probabilities of each response token given its prompt, in one forward pass.

    Gradients flow when called outside ``torch.no_grad()``. Prompts of one batch usually
    start with the same tokens (system prompt, task, action formats; a group starts from the
    same state): with ``share_prefix`` that prefix is run once and its KV cache broadcast to
    every row (gradients flow back through it), so only each row's own tokens are paid per row.

    Args:
        model: A causal LM returning ``.logits`` of shape [B, L, V].
        prompt_ids: B prompts (token ids).
        response_ids: B responses (token ids), scored after their prompt.
        pad_id: Token id used for right padding.
        temperature: Logits are divided by it (match the sampling temperature for exact ratios).
        share_prefix: Compute a common prefix of >= :data:`MIN_SHARED_PREFIX` tokens once
            (transformers causal LMs only; others take the plain path).

    Returns:
        ``logp`` [B, R] and ``mask`` [B, R], R = the longest response; ``mask`` is 1 on real
        response tokens, 0 on padding (``logp`` there is 0).
    """
    for i, p in enumerate(prompt_ids):
        if len(p) == 0:  # the first response token would have no logit predicting it
            raise ValueError(f"prompt {i} is empty; expected at least one token (e.g. BOS)")
    if len(prompt_ids) != len(response_ids):
        raise ValueError(
            f"got {len(prompt_ids)} prompts but {len(response_ids)} responses; expected one each"
        )
    device = next(model.parameters()).device
    batch = len(response_ids)
    fast = accepts_logits_to_keep(model)
    shared = shareable_prefix_len(model, prompt_ids) if share_prefix else 0
    extra: dict[str, Any] = {}
    if shared:
        extra["past_key_values"] = _broadcast_prefix(model, prompt_ids[0][:shared], batch, device)
        prompt_ids = [p[shared:] for p in prompt_ids]
    input_ids, attention, _, length = pack_prompt_response(prompt_ids, response_ids, pad_id)
    if shared:
        attention = torch.cat([torch.ones((batch, shared), dtype=attention.dtype), attention], 1)
        extra["position_ids"] = torch.arange(shared, shared + length, device=device).expand(
            batch, -1
        )
    r_max = max(max((len(r) for r in response_ids), default=0), 1)
    # Position t predicts token t+1: only the response positions need logits.
    positions = torch.zeros((batch, r_max), dtype=torch.long)  # [B, R] into the packed rows
    for i, (p, r) in enumerate(zip(prompt_ids, response_ids, strict=True)):
        if r:
            positions[i, : len(r)] = torch.arange(len(p) - 1, len(p) - 1 + len(r))
    inputs = {"input_ids": input_ids.to(device), "attention_mask": attention.to(device), **extra}
    if fast:
        # Project onto the vocabulary only at the positions some row needs (their union over
        # the batch): prompts are ~40x longer than responses, and the [L, V] head is ~20% of
        # the model's FLOPs and most of its activation memory.
        keep = torch.unique(positions)  # [K], sorted
        logits = model(**inputs, logits_to_keep=keep.to(device)).logits  # [B, K, V]
        columns = torch.searchsorted(keep, positions)  # [B, R] into `logits`
    else:
        logits = model(**inputs).logits  # [B, L, V]
        columns = positions
    columns = columns.to(device)
    picked = logits.gather(1, columns.unsqueeze(-1).expand(-1, -1, logits.shape[-1]))  # [B, R, V]
    picked = picked.float() / temperature
    nxt = (positions + 1).clamp(max=input_ids.shape[1] - 1).to(device)
    targets = input_ids.to(device).gather(1, nxt)  # [B, R]
    logp = torch.log_softmax(picked, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    mask = torch.zeros((batch, r_max), dtype=torch.float32, device=device)
    for i, r in enumerate(response_ids):
        mask[i, : len(r)] = 1.0
    return logp * mask, mask


def _broadcast_prefix(
    model: torch.nn.Module, prefix: Sequence[int], batch: int, device: torch.device
) -> Any:
    """KV cache of ``prefix`` (one forward pass, in the autograd graph) expanded to ``batch``."""
    from transformers import DynamicCache

    ids = torch.tensor([list(prefix)], dtype=torch.long, device=device)
    out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
    cache = DynamicCache()
    for layer, kv in enumerate(out.past_key_values.layers):
        cache.update(kv.keys.expand(batch, -1, -1, -1), kv.values.expand(batch, -1, -1, -1), layer)
    return cache
