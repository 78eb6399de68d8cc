"""Update modes: numerator prompts, mode draws, the importance ratio of each mode."""

from __future__ import annotations

import random

import pytest
import torch

from empo_gym.agents.llm.logprobs import token_logprobs
from empo_gym.agents.training.config import EMPOConfig
from empo_gym.agents.training.modes import (
    RolloutMode,
    UpdateMode,
    denominator_prompt,
    numerator_prompt,
    sample_modes,
    sample_rollout_mode,
    sample_update_mode,
)
from empo_gym.agents.training.update import build_turn_batch, make_optimizer, policy_update
from tests.training.train_helpers import PAD, make_traj, make_turn, score

PREFIX, TIPS, SUFFIX = [1, 30, 31], [90, 91, 92, 93], [40, 41]


def test_tip_stripping_uses_exactly_prompt_ids_no_tips():
    no_tips = PREFIX + SUFFIX
    turn = make_turn(None, PREFIX + TIPS + SUFFIX, [5, 6], prompt_no_tips=no_tips)
    stripped = numerator_prompt(turn, UpdateMode.OFF_POLICY)
    assert stripped == no_tips and stripped is not turn.prompt_ids_no_tips  # a copy
    assert numerator_prompt(turn, UpdateMode.ON_POLICY_TIPS) == PREFIX + TIPS + SUFFIX
    assert numerator_prompt(turn, UpdateMode.ON_POLICY) == PREFIX + TIPS + SUFFIX
    for mode in UpdateMode:
        assert denominator_prompt(turn, mode) == PREFIX + TIPS + SUFFIX


def test_turn_batch_rows_follow_the_mode():
    cfg = EMPOConfig()
    turns = [
        make_turn(None, PREFIX + TIPS + SUFFIX, [5], prompt_no_tips=PREFIX + SUFFIX),
        make_turn(None, PREFIX + [7] + TIPS + SUFFIX, [6, 7], prompt_no_tips=PREFIX + [7] + SUFFIX),
    ]
    groups = [[make_traj("g", 0, turns), make_traj("g", 1, [turns[0]])]]
    off = build_turn_batch(groups, UpdateMode.OFF_POLICY, cfg)
    assert off.prompt_ids == [PREFIX + SUFFIX, PREFIX + [7] + SUFFIX, PREFIX + SUFFIX]
    on = build_turn_batch(groups, UpdateMode.ON_POLICY_TIPS, cfg)
    assert on.prompt_ids == [t.prompt_ids for t in turns] + [turns[0].prompt_ids]
    # the denominator (old log-probs) is the same in both modes: the tipped sampling prompt
    assert torch.equal(off.old_logp, on.old_logp)


def test_mode_labels_and_unknown_label():
    assert [m.label for m in UpdateMode] == ["on_policy", "on_policy_tips", "off_policy"]
    with pytest.raises(ValueError, match="'offpolicy' is unknown"):
        UpdateMode.from_label("offpolicy")


def test_mode_draw_frequencies_match_p_and_q():
    rng = random.Random(0)
    n = 30000
    draws = [sample_modes(rng, 0.25, 2 / 3) for _ in range(n)]
    memory = sum(r is RolloutMode.MEMORY for r, _ in draws) / n
    off = sum(u is UpdateMode.OFF_POLICY for _, u in draws) / n
    tips = sum(u is UpdateMode.ON_POLICY_TIPS for _, u in draws) / n
    assert memory == pytest.approx(0.25, abs=0.01)
    assert off == pytest.approx(0.25 * 2 / 3, abs=0.01)  # reference code: r < 0.17
    assert tips == pytest.approx(0.25 / 3, abs=0.01)
    assert all(u is UpdateMode.ON_POLICY for r, u in draws if r is RolloutMode.PLAIN)


def test_probabilities_outside_unit_interval_rejected():
    with pytest.raises(ValueError, match="p=1.5"):
        sample_rollout_mode(random.Random(0), 1.5)
    with pytest.raises(ValueError, match="q=-0.1"):
        sample_update_mode(random.Random(0), -0.1)


@pytest.mark.parametrize("mode", list(UpdateMode))
def test_importance_ratio_of_each_mode(tiny_model, mode):
    """Before any step: ratio 1 when numerator and denominator share the prompt; for off-policy
    exactly pi(a|s,u) / pi_old(a|s,u,tips) computed from the two prompts by hand."""
    tipped, plain, response = PREFIX + TIPS + SUFFIX, PREFIX + SUFFIX, [50, 51, 52]
    no_tips = None if mode is UpdateMode.ON_POLICY else plain  # plain rollouts: no tips at all
    prompt = plain if mode is UpdateMode.ON_POLICY else tipped
    turn = make_turn(tiny_model, prompt, response, prompt_no_tips=no_tips, reward=1.0)
    loser = make_turn(tiny_model, prompt, response, prompt_no_tips=no_tips, reward=0.0)
    groups = [[make_traj("g", 0, [turn]), make_traj("g", 1, [loser])]]
    cfg = EMPOConfig(low_prob_masking=False)
    batch = build_turn_batch(groups, mode, cfg)
    logp, mask = token_logprobs(tiny_model, batch.prompt_ids, batch.response_ids, PAD)
    ratio = torch.exp(logp - batch.old_logp)[0]  # [R]

    old = torch.tensor(score(tiny_model, turn.prompt_ids, response))  # denominator by hand
    num_prompt = plain if mode is UpdateMode.OFF_POLICY else turn.prompt_ids
    num = torch.tensor(score(tiny_model, num_prompt, response))  # numerator by hand
    expected = torch.exp(num - old)
    assert ratio.tolist() == pytest.approx(expected.tolist(), abs=1e-5)
    if mode.strip_tips:
        assert not torch.allclose(ratio, torch.ones(3), atol=1e-3)  # tips changed the context
    else:
        assert ratio.tolist() == pytest.approx([1.0] * 3, abs=1e-5)

    # the update step measures the same ratio (one step, ratio taken before it)
    opt = make_optimizer(tiny_model, cfg)
    metrics = policy_update(tiny_model, opt, groups, mode, cfg, PAD)
    assert metrics["ratio_mean"] == pytest.approx(expected.mean().item(), abs=1e-5)
