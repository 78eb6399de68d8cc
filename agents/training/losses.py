"""The math of GRPO / EMPO² as small pure tensor functions (no model, no optimizer, no devices).

Shapes: ``B`` rows (one row = one turn's response), ``R`` response tokens (right-padded).
Every function takes an explicit ``mask`` (1 on real tokens, 0 on padding / masked-out turns).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import torch


def masked_sum(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Sum of ``x`` over the positions where ``mask`` is 1.

    Example:
        >>> masked_sum(torch.tensor([1.0, 2.0, 4.0]), torch.tensor([1.0, 0.0, 1.0])).item()
        5.0
    """
    return (x * mask).sum()


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of ``x`` over the positions where ``mask`` is 1 (0 when nothing is unmasked).

    Args:
        x: Values, any shape.
        mask: 0/1 tensor broadcastable to ``x``.
        dim: Reduce only this dimension; ``None`` reduces everything.

    Example:
        >>> masked_mean(torch.tensor([1.0, 2.0, 4.0]), torch.tensor([1.0, 0.0, 1.0])).item()
        2.5
        >>> masked_mean(torch.tensor([1.0]), torch.tensor([0.0])).item()
        0.0
    """
    mask = mask.to(x.dtype)
    if dim is None:
        return (x * mask).sum() / mask.sum().clamp(min=1.0)
    return (x * mask).sum(dim) / mask.sum(dim).clamp(min=1.0)


def group_advantages(
    returns: torch.Tensor | Sequence[float],
    group_ids: Sequence[Hashable],
    eps: float = 1e-6,
) -> torch.Tensor:
    """Group-relative advantages ``(R - mean_group) / (std_group + eps)``.

    The standard deviation is the unbiased one (``torch.std``, as in verl's GRPO). A group of a
    single trajectory carries no baseline information and gets advantage 0.

    Args:
        returns: One return per trajectory, shape [N].
        group_ids: Group key of each trajectory (same length as ``returns``).
        eps: Added to the standard deviation (a group of equal returns gets advantage 0).

    Returns:
        Advantages, shape [N], float32.

    Example:
        >>> [round(a, 4) for a in group_advantages([1.0, 0.0, 5.0, 5.0], "aabb").tolist()]
        [0.7071, -0.7071, 0.0, 0.0]
    """
    r = torch.as_tensor(returns, dtype=torch.float32).flatten()
    if r.numel() != len(group_ids):
        raise ValueError(
            f"got {r.numel()} returns but {len(group_ids)} group ids; expected one id per return"
        )
    adv = torch.zeros_like(r)
    index: dict[Hashable, list[int]] = {}
    for i, g in enumerate(group_ids):
        index.setdefault(g, []).append(i)
    for members in index.values():
        if len(members) < 2:
            continue
        idx = torch.tensor(members)
        group = r[idx]
        adv[idx] = (group - group.mean()) / (group.std() + eps)
    return adv


@dataclass
class SurrogateStats:
    """Diagnostics of :func:`clipped_surrogate` (plain floats, detached).

    Attributes:
        clip_frac: Share of unmasked tokens where the PPO clip is active.
        dual_clip_frac: Share of unmasked tokens where the dual clip (negative advantage) bounds
            the loss.
        ratio_mean: Mean importance ratio over unmasked tokens.
        ratio_max: Largest importance ratio over unmasked tokens (0 when nothing is unmasked).
        approx_kl: Mean of ``old_logp - logp`` over unmasked tokens (k1 estimate of KL(old||new)).
        tokens: Number of unmasked tokens.
    """

    clip_frac: float
    dual_clip_frac: float
    ratio_mean: float
    ratio_max: float
    approx_kl: float
    tokens: int


def clipped_surrogate(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    adv: torch.Tensor,
    mask: torch.Tensor,
    clip_low: float = 0.2,
    clip_high: float = 0.3,
    dual_clip: float = 10.0,
    normalizer: float | torch.Tensor | None = None,
) -> tuple[torch.Tensor, SurrogateStats]:
    """Token-level PPO objective with asymmetric clip and dual clip (loss to minimise).

    Per token, with ``ratio = exp(logp - old_logp)``::

        clipped = max(-A * ratio, -A * clamp(ratio, 1 - clip_low, 1 + clip_high))
        loss    = min(clipped, -A * dual_clip)   if A < 0   (dual clip, bounds the loss)
                  clipped                        otherwise

    aggregated as ``sum(loss * mask) / normalizer`` ("token mean"). ``normalizer`` defaults to
    the number of unmasked tokens; pass the token count of the whole mini-batch when the batch is
    split into gradient-accumulation micro-batches so the sum of micro-losses equals the loss of
    the whole batch.

    Args:
        logp: Log-probabilities under the current policy, [B, R] (carries the gradient).
        old_logp: Log-probabilities under the sampling policy, [B, R].
        adv: Advantages, [B, R] or [B] (broadcast to every token of the row).
        mask: 1 on tokens that enter the loss, [B, R].
        clip_low: Lower clip range (ratio >= 1 - clip_low).
        clip_high: Upper clip range (ratio <= 1 + clip_high).
        dual_clip: Dual-clip constant c > 1 for negative advantages.
        normalizer: Divisor of the masked sum (see above).

    Returns:
        The scalar loss and its :class:`SurrogateStats`.

    Example:
        >>> loss, stats = clipped_surrogate(
        ...     torch.log(torch.tensor([[2.0]])), torch.zeros(1, 1), torch.tensor([1.0]),
        ...     torch.ones(1, 1))
        >>> round(loss.item(), 4), stats.clip_frac
        (-1.3, 1.0)
    """
    if dual_clip <= 1.0:
        raise ValueError(f"dual_clip={dual_clip!r}; expected a constant > 1")
    if logp.shape != old_logp.shape or logp.shape != mask.shape:
        raise ValueError(
            f"shapes logp {tuple(logp.shape)}, old_logp {tuple(old_logp.shape)}, "
            f"mask {tuple(mask.shape)}; expected all equal [B, R]"
        )
    if adv.dim() == 1:
        adv = adv.unsqueeze(-1)  # [B, 1], broadcast over tokens
    adv = adv.to(logp.dtype)
    mask = mask.to(logp.dtype)
    old_logp = old_logp.to(logp.dtype)

    log_ratio = (logp - old_logp) * mask  # [B, R]; 0 on padding so exp stays finite
    ratio = torch.exp(log_ratio)  # [B, R]
    loss_unclipped = -adv * ratio  # [B, R]
    loss_clipped = -adv * torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high)  # [B, R]
    loss_ppo = torch.maximum(loss_unclipped, loss_clipped)  # [B, R] pessimistic bound
    loss_dual = torch.minimum(loss_ppo, -adv * dual_clip)  # [B, R] caps huge ratios when A < 0
    loss_tok = torch.where(adv < 0, loss_dual, loss_ppo)  # [B, R]

    n_tokens = mask.sum()
    denom = n_tokens.clamp(min=1.0) if normalizer is None else normalizer
    loss = (loss_tok * mask).sum() / denom

    with torch.no_grad():
        clip_active = (loss_clipped > loss_unclipped).to(logp.dtype)
        dual_active = ((adv < 0) & (loss_ppo > -adv * dual_clip)).to(logp.dtype)
        stats = SurrogateStats(
            clip_frac=masked_mean(clip_active, mask).item(),
            dual_clip_frac=masked_mean(dual_active, mask).item(),
            ratio_mean=masked_mean(ratio, mask).item(),
            ratio_max=(ratio * mask).max().item() if n_tokens > 0 else 0.0,
            approx_kl=masked_mean(-log_ratio, mask).item(),
            tokens=int(n_tokens.item()),
        )
    return loss, stats


def low_prob_turn_mask(
    old_logp: torch.Tensor, mask: torch.Tensor, threshold: float = -5.0
) -> torch.Tensor:
    """Mask out every turn (row) that contains a token with old log-prob below ``threshold``.

    EMPO² needs this for stable off-policy training: a single improbable token makes the whole
    turn leave the loss.

    Args:
        old_logp: Sampling-policy log-probabilities, [B, R].
        mask: 1 on real response tokens, [B, R].
        threshold: Log-probability below which a token poisons its turn.

    Returns:
        The new mask [B, R] (same dtype as ``mask``): rows with a bad token are all 0.

    Example:
        >>> low_prob_turn_mask(torch.tensor([[-1.0, -6.0], [-1.0, -9.0]]),
        ...                    torch.tensor([[1.0, 1.0], [1.0, 0.0]])).tolist()
        [[0.0, 0.0], [1.0, 0.0]]
    """
    bad = ((old_logp < threshold) & (mask > 0)).any(dim=-1, keepdim=True)  # [B, 1]
    return mask * (~bad).to(mask.dtype)


def kl_penalty(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimator of KL(pi || pi_ref): ``exp(ref - logp) - (ref - logp) - 1``.

    Non-negative, unbiased for samples drawn from ``pi``. As in verl's ``low_var_kl``, the
    log-ratio is clamped to [-20, 20] and the result to [0, 10] so one outlier cannot dominate.

    Example:
        >>> kl_penalty(torch.tensor([0.0]), torch.tensor([0.0])).item()
        0.0
        >>> round(kl_penalty(torch.tensor([0.0]), torch.tensor([-1.0])).item(), 4)
        0.3679
    """
    log_r = torch.clamp(ref_logp - logp, -20.0, 20.0)
    return torch.clamp(torch.exp(log_r) - log_r - 1.0, 0.0, 10.0)


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of the categorical distribution at each position, ``[..., V] -> [...]``.

    Example:
        >>> round(entropy_from_logits(torch.zeros(4)).item(), 4)  # uniform over 4 = ln 4
        1.3863
    """
    logp = torch.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)


def sampled_entropy(logp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Monte-Carlo entropy estimate ``mean(-log p(sampled token))`` over unmasked tokens.

    Unbiased for tokens sampled from the policy at the scoring temperature; the update step uses
    it because :func:`empo_gym.agents.llm.logprobs.token_logprobs` returns no full logits.

    Example:
        >>> round(sampled_entropy(torch.tensor([[-1.0, -3.0]]), torch.ones(1, 2)).item(), 4)
        2.0
    """
    return masked_mean(-logp.detach(), mask)
