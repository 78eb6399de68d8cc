"""The algorithm side of the loop: update modes (numerator prompts, the importance ratio of each
mode), GRPO, picking the algorithm from the config, the trainer's checks of it."""

from __future__ import annotations

import random

import pytest
import torch

from empo_gym.agents.llm.logprobs import token_logprobs
from empo_gym.agents.training.algorithm import (
    GRPO,
    Algorithm,
    RolloutMode,
    UpdateMode,
    denominator_prompt,
    make_algorithm,
    numerator_prompt,
)
from empo_gym.agents.training.config import GRPOConfig
from empo_gym.agents.training.empo import EMPO, EMPOConfig
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


def test_grpo_rolls_out_plain_and_updates_on_policy_drawing_nothing(tmp_path):
    grpo, rng = GRPO(), random.Random(0)
    assert isinstance(grpo, Algorithm)
    assert grpo.modes(rng) == (RolloutMode.PLAIN, UpdateMode.ON_POLICY)
    assert rng.random() == random.Random(0).random()  # the mode RNG is left as it was
    envs = [object(), object()]
    assert grpo.wrap_envs(envs) == envs
    grpo.after_rollouts(None, [], RolloutMode.PLAIN)
    grpo.save(tmp_path)
    grpo.load(tmp_path)
    assert (grpo.size(), grpo.stats(), grpo.timings, list(tmp_path.iterdir())) == (0, {}, {}, [])


def test_make_algorithm_follows_the_config():
    assert isinstance(make_algorithm(GRPOConfig()), GRPO)
    empo = make_algorithm(EMPOConfig(memory_prob=0.5))
    assert isinstance(empo, EMPO) and isinstance(empo, Algorithm) and empo.cfg.memory_prob == 0.5


def test_the_trainer_checks_the_algorithm_fits_the_config(tmp_path):
    from empo_gym.agents.training.trainer import TrainingRun
    from tests.training.train_helpers import (
        BANDIT_VOCAB,
        BanditPolicy,
        bandit_rollout,
        make_tiny_model,
    )

    cfg = GRPOConfig(output_dir=str(tmp_path / "run"))
    policy = BanditPolicy(make_tiny_model(0, BANDIT_VOCAB))
    with pytest.raises(ValueError, match="algorithm 'empo' does not match the config's agent"):
        TrainingRun(cfg, policy, bandit_rollout, [0], algorithm=EMPO(EMPOConfig()))
    with pytest.raises(TypeError, match="needs an Algorithm; got object, which lacks name"):
        TrainingRun(cfg, policy, bandit_rollout, [0], algorithm=object())  # type: ignore[arg-type]
    assert not (tmp_path / "run").exists()  # rejected before anything is written
