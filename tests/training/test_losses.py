"""Loss functions against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from empo_gym.agents.training.losses import (
    clipped_surrogate,
    entropy_from_logits,
    group_advantages,
    kl_penalty,
    low_prob_turn_mask,
    masked_mean,
    sampled_entropy,
)

# Six tokens with old log-prob 0, so ratio = exp(logp) is set directly; clip 0.2 / 0.3, dual 10.
#   A=+1 r=2.0 : max(-2.0, -1.3) = -1.3   clipped (upper)
#   A=+1 r=0.5 : max(-0.5, -0.8) = -0.5   not clipped (lower bound only binds A<0)
#   A=-1 r=0.5 : max( 0.5,  0.8) =  0.8   clipped (lower)
#   A=-1 r=1.5 : max( 1.5,  1.3) =  1.5   not clipped
#   A=-1 r=20  : max(20, 1.3) = 20 -> min(20, 10) = 10   dual clip
#   A=+1 r=1.1 : -1.1                     inside the trust region
RATIOS = [2.0, 0.5, 0.5, 1.5, 20.0, 1.1]
ADVS = [1.0, 1.0, -1.0, -1.0, -1.0, 1.0]
PER_TOKEN = [-1.3, -0.5, 0.8, 1.5, 10.0, -1.1]


def _inputs():
    logp = torch.log(torch.tensor([RATIOS])).requires_grad_(True)  # [1, 6]
    old = torch.zeros(1, 6)
    adv = torch.tensor([ADVS])
    return logp, old, adv


def test_clip_both_sides_and_dual_clip_hand_values():
    logp, old, adv = _inputs()
    loss, stats = clipped_surrogate(logp, old, adv, torch.ones(1, 6))
    assert loss.item() == pytest.approx(sum(PER_TOKEN) / 6, abs=1e-6)
    # clip active on tokens 0 and 2 (token 4 is clipped by the dual clip, not the PPO clip)
    assert stats.clip_frac == pytest.approx(2 / 6)
    assert stats.dual_clip_frac == pytest.approx(1 / 6)
    assert stats.tokens == 6
    assert stats.ratio_max == pytest.approx(20.0, rel=1e-5)
    loss.backward()
    # d loss_tok / d logp = -A * r where the unclipped branch is active, 0 where clipped
    expected = [0.0, -0.5, 0.0, 1.5, 0.0, -1.1]
    assert logp.grad[0].tolist() == pytest.approx([e / 6 for e in expected], abs=1e-6)


def test_mask_removes_tokens_from_loss_and_stats():
    logp, old, adv = _inputs()
    mask = torch.tensor([[1.0, 1.0, 1.0, 1.0, 0.0, 1.0]])  # drop the dual-clipped token
    loss, stats = clipped_surrogate(logp, old, adv, mask)
    kept = [v for v, m in zip(PER_TOKEN, mask[0].tolist(), strict=True) if m]
    assert loss.item() == pytest.approx(sum(kept) / 5, abs=1e-6)
    assert stats.dual_clip_frac == 0.0
    assert stats.tokens == 5
    loss.backward()
    assert logp.grad[0, 4].item() == 0.0


def test_row_advantage_is_broadcast_to_tokens():
    logp = torch.log(torch.tensor([[2.0, 1.1], [0.5, 1.5]]))
    loss_row, _ = clipped_surrogate(
        logp, torch.zeros(2, 2), torch.tensor([1.0, -1.0]), torch.ones(2, 2)
    )
    loss_tok, _ = clipped_surrogate(
        logp, torch.zeros(2, 2), torch.tensor([[1.0, 1.0], [-1.0, -1.0]]), torch.ones(2, 2)
    )
    assert loss_row.item() == pytest.approx(loss_tok.item())
    assert loss_row.item() == pytest.approx((-1.3 - 1.1 + 0.8 + 1.5) / 4, abs=1e-6)


def test_asymmetric_clip_values_are_parameters():
    logp = torch.log(torch.tensor([[2.0]]))
    loss, _ = clipped_surrogate(
        logp, torch.zeros(1, 1), torch.tensor([1.0]), torch.ones(1, 1), clip_low=0.1, clip_high=0.5
    )
    assert loss.item() == pytest.approx(-1.5)
    logp = torch.log(torch.tensor([[0.5]]))
    loss, _ = clipped_surrogate(
        logp, torch.zeros(1, 1), torch.tensor([-1.0]), torch.ones(1, 1), clip_low=0.1, clip_high=0.5
    )
    assert loss.item() == pytest.approx(0.9)


def test_normalizer_makes_micro_batches_sum_to_full_batch():
    torch.manual_seed(0)
    logp = torch.randn(4, 3) * 0.3
    old = torch.randn(4, 3) * 0.3
    adv = torch.tensor([1.0, -0.5, 2.0, -1.0])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 1], [1, 1, 0]], dtype=torch.float32)
    full, _ = clipped_surrogate(logp, old, adv, mask)
    n = mask.sum()
    a, _ = clipped_surrogate(logp[:2], old[:2], adv[:2], mask[:2], normalizer=n)
    b, _ = clipped_surrogate(logp[2:], old[2:], adv[2:], mask[2:], normalizer=n)
    assert (a + b).item() == pytest.approx(full.item(), abs=1e-6)


def test_padding_with_huge_logp_gap_stays_finite():
    logp = torch.tensor([[-1.0, 0.0]])
    old = torch.tensor([[-1.0, -200.0]])  # garbage under padding must not overflow exp
    loss, stats = clipped_surrogate(logp, old, torch.tensor([1.0]), torch.tensor([[1.0, 0.0]]))
    assert math.isfinite(loss.item()) and stats.ratio_max == pytest.approx(1.0)


def test_bad_shapes_and_dual_clip_rejected():
    with pytest.raises(ValueError, match="dual_clip=1.0"):
        clipped_surrogate(
            torch.zeros(1, 1), torch.zeros(1, 1), torch.ones(1), torch.ones(1, 1), dual_clip=1.0
        )
    with pytest.raises(ValueError, match=r"shapes logp \(1, 2\)"):
        clipped_surrogate(torch.zeros(1, 2), torch.zeros(1, 1), torch.ones(1), torch.ones(1, 1))


def test_low_prob_turn_mask_masks_whole_turn():
    old = torch.tensor(
        [
            [-0.1, -5.01, -0.2],  # one token below -5: whole turn out
            [-4.99, -0.1, 0.0],  # all above: kept
            [-0.1, -0.1, -50.0],
        ]
    )  # -50 is padding: kept
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    out = low_prob_turn_mask(old, mask, threshold=-5.0)
    assert out.tolist() == [[0, 0, 0], [1, 1, 0], [1, 1, 0]]
    assert low_prob_turn_mask(old, mask, threshold=-6.0)[0].tolist() == [1, 1, 1]


def test_group_advantages_hand_values():
    returns = [3.0, 1.0, 2.0, 10.0, 10.0, 7.0]
    groups = ["a", "a", "a", "b", "b", "c"]
    adv = group_advantages(returns, groups, eps=0.0)
    # group a: mean 2, unbiased std 1 -> [1, -1, 0]; group b: equal -> 0 (eps guards 0/0 below)
    assert adv[:3].tolist() == pytest.approx([1.0, -1.0, 0.0])
    assert adv[5].item() == 0.0  # singleton group: no baseline, no signal
    adv = group_advantages(returns, groups)
    assert adv[3:5].tolist() == [0.0, 0.0]


def test_group_advantages_length_mismatch():
    with pytest.raises(ValueError, match="3 returns but 2 group ids"):
        group_advantages([1.0, 2.0, 3.0], ["a", "a"])


def test_kl_k3_hand_value_and_nonnegative():
    logp = torch.tensor([-1.0, -2.0, -0.5])
    ref = torch.tensor([-1.0, -1.0, -2.5])
    kl = kl_penalty(logp, ref)
    x = torch.tensor([0.0, 1.0, -2.0])  # ref - logp
    assert kl.tolist() == pytest.approx((x.exp() - x - 1).tolist())
    assert (kl >= 0).all()


def test_masked_mean_and_entropies():
    x = torch.tensor([[1.0, 2.0], [3.0, 100.0]])
    m = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    assert masked_mean(x, m).item() == pytest.approx(2.0)
    assert masked_mean(x, m, dim=1).tolist() == pytest.approx([1.5, 3.0])
    assert entropy_from_logits(torch.tensor([0.0, -1e9])).item() == pytest.approx(0.0, abs=1e-6)
    assert sampled_entropy(torch.tensor([[-1.0, -9.0]]), torch.tensor([[1.0, 0.0]])).item() == 1.0


def test_kl_outliers_are_bounded():
    kl = kl_penalty(torch.tensor([0.0, -40.0]), torch.tensor([-30.0, 0.0]))
    assert kl.tolist() == [10.0, 10.0]
