"""The update step on a tiny random model: advantages, intrinsic reward, learning direction."""

from __future__ import annotations

import math

import pytest
import torch

from empo_gym.agents.training.algorithm import UpdateMode
from empo_gym.agents.training.config import GRPOConfig
from empo_gym.agents.training.empo import EMPOConfig
from empo_gym.agents.training.update import (
    build_turn_batch,
    make_optimizer,
    policy_update,
    recompute_old_logprobs,
    trajectory_return,
)
from tests.training.train_helpers import PAD, make_traj, make_turn, score

PROMPT = [1, 10, 11, 12]
# A random 128-token model gives every token log-prob ~ -ln(128) = -4.85, so the paper's -5
# masking threshold would drop most turns; learning tests move it out of the way.
NO_MASK = {"low_prob_threshold": -20.0}
GOOD, BAD = [20, 21, 22], [30, 31, 32]


def _groups(model, rewards=(1.0, 0.0, 0.0, 0.0)):
    trajs = []
    for i, r in enumerate(rewards):
        resp = GOOD if r > 0 else BAD
        trajs.append(make_traj("g0", i, [make_turn(model, PROMPT, resp, reward=r)]))
    return [trajs]


def test_advantage_is_broadcast_to_every_token_of_every_turn():
    cfg = GRPOConfig()
    t0 = make_traj(
        "g", 0, [make_turn(None, [1], [5, 6], reward=1.0), make_turn(None, [1, 5], [7], reward=1.0)]
    )
    t1 = make_traj("g", 1, [make_turn(None, [1], [8, 9, 10], reward=0.0)])
    batch = build_turn_batch([[t0, t1]], UpdateMode.ON_POLICY, cfg)
    # returns 2 and 0: mean 1, unbiased std sqrt(2) -> +-0.7071 on every row of the trajectory
    assert batch.advantages.tolist() == pytest.approx([0.70710, 0.70710, -0.70710], abs=1e-4)
    assert batch.response_mask.tolist() == [[1, 1, 0], [1, 0, 0], [1, 1, 1]]
    assert batch.traj_index.tolist() == [0, 0, 1]


def test_intrinsic_reward_added_to_return_only_when_enabled():
    turn = make_turn(None, [1], [5], reward=1.0, intrinsic=0.5)
    traj = make_traj("g", 0, [turn, turn])
    assert trajectory_return(traj) == 2.0
    assert trajectory_return(traj, intrinsic_scale=0.5) == 2.5
    other = make_traj("g", 1, [make_turn(None, [1], [5], reward=2.0)])
    on = build_turn_batch([[traj, other]], UpdateMode.ON_POLICY, EMPOConfig(intrinsic_scale=2.0))
    off = build_turn_batch(
        [[traj, other]], UpdateMode.ON_POLICY, EMPOConfig(intrinsic_reward=False)
    )
    grpo = build_turn_batch([[traj, other]], UpdateMode.ON_POLICY, GRPOConfig())
    assert on.returns.tolist() == [4.0, 2.0]
    assert off.returns.tolist() == grpo.returns.tolist() == [2.0, 2.0]


def test_low_prob_turns_are_masked_and_counted():
    cfg = GRPOConfig()
    ok = make_turn(None, [1], [5, 6], logprobs=[-0.1, -4.0])
    bad = make_turn(None, [1], [5, 6], logprobs=[-0.1, -7.0])
    batch = build_turn_batch(
        [[make_traj("g", 0, [ok, bad]), make_traj("g", 1, [ok])]], UpdateMode.ON_POLICY, cfg
    )
    assert batch.mask.sum(-1).tolist() == [2.0, 0.0, 2.0]
    assert batch.masked_frac == pytest.approx(1 / 3)
    unmasked = build_turn_batch(
        [[make_traj("g", 0, [bad])]], UpdateMode.ON_POLICY, GRPOConfig(low_prob_masking=False)
    )
    assert unmasked.masked_frac == 0.0


def test_logprob_length_mismatch_is_reported():
    turn = make_turn(None, [1], [5, 6], logprobs=[-0.1])
    with pytest.raises(ValueError, match="2 response tokens has 1 old log-probs"):
        build_turn_batch([[make_traj("g", 0, [turn])]], UpdateMode.ON_POLICY, GRPOConfig())


def test_update_moves_high_advantage_response_up(tiny_model):
    cfg = GRPOConfig(lr=3e-3, weight_decay=0.0, micro_batch_size=2, **NO_MASK)
    groups = _groups(tiny_model)
    good0, bad0 = sum(score(tiny_model, PROMPT, GOOD)), sum(score(tiny_model, PROMPT, BAD))
    opt = make_optimizer(tiny_model, cfg)
    first = policy_update(tiny_model, opt, groups, UpdateMode.ON_POLICY, cfg, PAD)
    second = policy_update(tiny_model, opt, groups, UpdateMode.ON_POLICY, cfg, PAD)
    good1, bad1 = sum(score(tiny_model, PROMPT, GOOD)), sum(score(tiny_model, PROMPT, BAD))
    assert good1 > good0 + 0.05 and bad1 < bad0
    assert second["loss"] < first["loss"]  # same old log-probs: the surrogate improves
    assert first["ratio_mean"] == pytest.approx(1.0, abs=1e-5)  # on-policy first step
    assert first["grad_norm"] > 0 and math.isfinite(first["grad_norm"])
    assert first["steps"] == 1 and first["turns"] == 4 and first["tokens"] == 12
    assert first["entropy"] > 0 and first["masked_frac"] == 0.0
    assert first["update_tok_s"] > 0


def test_accumulation_equals_one_big_batch(model_factory):
    """Micro-batches of 1 turn and one batch of 4 give the same weights after a step."""
    results = []
    for micro in (1, 4):
        model = model_factory(0)
        cfg = GRPOConfig(lr=1e-3, micro_batch_size=micro, **NO_MASK)
        groups = _groups(model, (1.0, 0.0, 0.5, 0.0))
        policy_update(model, make_optimizer(model, cfg), groups, UpdateMode.ON_POLICY, cfg, PAD)
        results.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.allclose(results[0], results[1], atol=1e-6)


def test_clipping_stops_pushing_after_the_trust_region(tiny_model):
    cfg = GRPOConfig(lr=5e-2, weight_decay=0.0, max_grad_norm=100.0, **NO_MASK)
    groups = _groups(tiny_model)
    opt = make_optimizer(tiny_model, cfg)
    fracs = [
        policy_update(tiny_model, opt, groups, UpdateMode.ON_POLICY, cfg, PAD)["clip_frac"]
        for _ in range(6)
    ]
    assert fracs[0] == 0.0 and max(fracs) > 0.0


def test_kl_term_with_reference_model(model_factory):
    model, ref = model_factory(0), model_factory(0)
    cfg = GRPOConfig(lr=1e-2, kl_coef=0.1, **NO_MASK)
    groups = _groups(model)
    opt = make_optimizer(model, cfg)
    m1 = policy_update(model, opt, groups, UpdateMode.ON_POLICY, cfg, PAD, ref_model=ref)
    m2 = policy_update(model, opt, groups, UpdateMode.ON_POLICY, cfg, PAD, ref_model=ref)
    assert m1["kl"] == pytest.approx(0.0, abs=1e-6)  # identical weights before the first step
    assert m2["kl"] > 0.0
    with pytest.raises(ValueError, match="kl_coef > 0 needs a reference policy"):
        policy_update(model, opt, groups, UpdateMode.ON_POLICY, cfg, PAD)


def test_recompute_old_logprobs_matches_sampling_scores(tiny_model):
    groups = _groups(tiny_model)
    again = recompute_old_logprobs(tiny_model, groups, PAD, micro_batch_size=3)
    stored = [t.logprobs for traj in groups[0] for t in traj.turns]
    for a, b in zip(again, stored, strict=True):
        assert a == pytest.approx(b, abs=1e-5)


def test_all_masked_batch_takes_no_step(tiny_model):
    cfg = GRPOConfig()
    bad = make_turn(None, PROMPT, GOOD, logprobs=[-9.0, -9.0, -9.0], reward=1.0)
    groups = [[make_traj("g", 0, [bad]), make_traj("g", 1, [bad])]]
    before = [p.detach().clone() for p in tiny_model.parameters()]
    m = policy_update(
        tiny_model, make_optimizer(tiny_model, cfg), groups, UpdateMode.OFF_POLICY, cfg, PAD
    )
    assert m["steps"] == 0 and m["masked_frac"] == 1.0
    assert all(torch.equal(a, b) for a, b in zip(before, tiny_model.parameters(), strict=True))


def test_zero_advantage_turns_are_skipped_unless_asked_for(model_factory):
    """Equal returns give advantage 0: skipped by default, forwarded (and timed) on request."""
    grads = {}
    for skip in (True, False):
        model = model_factory(0)
        cfg = GRPOConfig(lr=1e-3, weight_decay=0.0, skip_zero_advantage=skip, **NO_MASK)
        groups = _groups(model, (1.0, 1.0, 0.0, 0.0)) + [
            [make_traj("g1", i, [make_turn(model, PROMPT, BAD, reward=0.0)]) for i in range(2)]
        ]
        m = policy_update(model, make_optimizer(model, cfg), groups, UpdateMode.ON_POLICY, cfg, PAD)
        grads[skip] = torch.cat([p.detach().flatten() for p in model.parameters()])
        per_row = len(PROMPT) + len(GOOD)
        if skip:
            assert m["update_forward_tokens"] == 4 * per_row and m["zero_adv_s"] == 0.0
        else:
            assert m["update_forward_tokens"] == 6 * per_row and m["zero_adv_s"] > 0.0
        assert m["tokens"] == 18  # the normaliser counts every unmasked token either way
    assert torch.allclose(grads[True], grads[False], atol=1e-7)  # the same update
