"""The real SmolLM2-135M-Instruct (slow: ~0.5 GB of weights, loaded once per session)."""

from __future__ import annotations

import pytest

from empo_gym.agents.llm.models import DEFAULT_MODEL, resolve_model
from empo_gym.agents.llm.policy import SamplingConfig
from empo_gym.agents.llm.prompts import EpisodeState, build_prompt
from empo_gym.agents.llm.rollout import RolloutRunner
from empo_gym.toy import ECHO_ACTIONS, ToyTextEnv

pytestmark = pytest.mark.slow


def test_default_model_is_cached_as_safetensors_after_first_load(smol_policy):
    assert smol_policy.source is not None and smol_policy.source.kind in ("gguf", "cached")
    assert resolve_model(DEFAULT_MODEL).kind == "cached"


def test_generation_and_rescoring_agree(smol_policy):
    state = EpisodeState.start(
        "This room is called the kitchen. You see a stove and a pot.",
        {"task": "Your task is to boil water."},
    )
    prompt = build_prompt("scienceworld", state, ["turn on the stove before heating"])
    enc = smol_policy.encode_prompt(prompt.messages, prompt.tip_text)
    gens = smol_policy.generate_ids([enc.ids, enc.ids_no_tips])
    assert all(g.text.strip() for g in gens)
    rescored = smol_policy.logprobs([g.prompt_ids for g in gens], [g.response_ids for g in gens])
    for g, lp in zip(gens, rescored, strict=True):
        assert lp == pytest.approx(g.logprobs, abs=2e-3)


def test_greedy_answers_a_simple_question(smol_policy):
    (g,) = smol_policy.generate(
        [[{"role": "user", "content": "What is the capital of France?"}]],
        SamplingConfig(temperature=0, max_new_tokens=12),
    )
    assert "paris" in g.text.lower()


def test_rollout_with_the_real_model(smol_policy):
    engine = RolloutRunner(
        smol_policy,
        [ToyTextEnv("echo") for _ in range(2)],
        "scienceworld",
        sampling=SamplingConfig(temperature=1.0, max_new_tokens=12, seed=0),
    )
    trajs = engine.run([1], group_size=2)
    assert len(trajs) == 2 and all(t.turns[-1].action in ECHO_ACTIONS for t in trajs)
