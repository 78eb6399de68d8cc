"""TransformersPolicy on a tiny random model: generation, log-probs, tips, caches."""

from __future__ import annotations

import pytest
import torch

from empo_gym.agents.llm.logprobs import token_logprobs
from empo_gym.agents.llm.policy import SamplingConfig
from empo_gym.agents.llm.prompts import EpisodeState, build_prompt, render_tip_block
from empo_gym.agents.llm.transformers_policy import TransformersPolicy

CONVS = [
    [{"role": "user", "content": "hello"}],
    [{"role": "user", "content": "a much longer prompt with many more words in it than the first"}],
    [{"role": "system", "content": "be brief"}, {"role": "user", "content": "look around"}],
]


def direct_logprobs(model, prompt, response, temperature=1.0):
    """Log-probs of ``response`` after ``prompt`` from one unpadded forward pass."""
    ids = torch.tensor([list(prompt) + list(response)])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0].float() / temperature
    logp = torch.log_softmax(logits, dim=-1)
    return [float(logp[len(prompt) - 1 + j, tok]) for j, tok in enumerate(response)]


def test_generation_logprobs_equal_direct_forward_pass(tiny_policy):
    gens = tiny_policy.generate(CONVS)
    assert len(gens) == 3
    for g in gens:
        assert g.response_ids and len(g.logprobs) == len(g.response_ids)
        assert g.finish_reason in ("stop", "length")
        want = direct_logprobs(tiny_policy.model, g.prompt_ids, g.response_ids)
        assert g.logprobs == pytest.approx(want, abs=1e-4)
    rescored = tiny_policy.logprobs([g.prompt_ids for g in gens], [g.response_ids for g in gens])
    for g, lp in zip(gens, rescored, strict=True):
        assert lp == pytest.approx(g.logprobs, abs=1e-4)


def test_logprobs_at_sampling_temperature(tiny_model, smol_tokenizer):
    policy = TransformersPolicy(
        tiny_model,
        tokenizer=smol_tokenizer,
        sampling=SamplingConfig(temperature=0.4, max_new_tokens=6, seed=1),
    )
    g = policy.generate(CONVS[:1])[0]
    want = direct_logprobs(tiny_model, g.prompt_ids, g.response_ids, temperature=0.4)
    assert g.logprobs == pytest.approx(want, abs=1e-4)


def test_token_logprobs_masks_padding_and_keeps_gradients(tiny_model):
    prompts, responses = [[1, 5, 6], [1, 7]], [[8, 9, 10], [11]]
    logp, mask = token_logprobs(tiny_model, prompts, responses, pad_id=2)
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    assert logp[1, 1:].abs().sum() == 0
    assert logp[0].tolist() == pytest.approx(
        direct_logprobs(tiny_model, [1, 5, 6], [8, 9, 10]), abs=1e-5
    )
    assert logp.requires_grad
    with pytest.raises(ValueError, match="prompt 0 is empty"):
        token_logprobs(tiny_model, [[]], [[3]], pad_id=2)


def test_seeded_sampling_is_reproducible_and_greedy_is_deterministic(tiny_model, smol_tokenizer):
    def run(cfg):
        policy = TransformersPolicy(tiny_model, tokenizer=smol_tokenizer, sampling=cfg)
        return [g.response_ids for g in policy.generate(CONVS)]

    cfg = SamplingConfig(temperature=1.0, max_new_tokens=8, seed=7)
    assert run(cfg) == run(cfg)
    greedy = SamplingConfig(temperature=0.0, max_new_tokens=8)
    assert run(greedy) == run(greedy)


def test_batched_generation_matches_single_greedy(tiny_model, smol_tokenizer):
    policy = TransformersPolicy(
        tiny_model,
        tokenizer=smol_tokenizer,
        sampling=SamplingConfig(temperature=0, max_new_tokens=8),
    )
    batched = [g.response_ids for g in policy.generate(CONVS)]
    single = [policy.generate([c])[0].response_ids for c in CONVS]
    assert batched == single


def test_tip_block_tokens_are_exactly_the_difference(tiny_policy):
    state = EpisodeState.start("You are in the kitchen.", {"task": "Boil water."})
    tips = ["open the stove first", "water boils at 100 C"]
    with_tips = build_prompt("scienceworld", state, tips)
    without = build_prompt("scienceworld", state)
    enc = tiny_policy.encode_prompt(with_tips.messages, with_tips.tip_text)
    plain = tiny_policy.encode_prompt(without.messages, without.tip_text or None)
    assert enc.used_tips and not plain.used_tips
    start, end = enc.tip_span
    assert enc.ids[:start] + enc.ids[end:] == enc.ids_no_tips == plain.ids
    assert tiny_policy.tokenizer.decode(enc.ids[start:end]) == with_tips.tip_text
    assert with_tips.tip_text == "\n\n" + render_tip_block(tips)
    # The tip block sits inside the last user message, before the end-of-turn token.
    rendered = tiny_policy.tokenizer.decode(enc.ids)
    assert rendered.index("</tip>") < rendered.rindex("<|im_end|>")
    assert rendered.endswith("<|im_start|>assistant\n")


def test_lora_wraps_model_and_still_scores(tiny_model, smol_tokenizer):
    import copy

    policy = TransformersPolicy(
        copy.deepcopy(tiny_model),
        tokenizer=smol_tokenizer,
        sampling=SamplingConfig(max_new_tokens=4, seed=0),
        lora={"r": 4, "alpha": 8},
    )
    trainable = [n for n, p in policy.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    g = policy.generate(CONVS[:2])
    lp = policy.logprobs([x.prompt_ids for x in g], [x.response_ids for x in g])
    assert lp[0] == pytest.approx(g[0].logprobs, abs=1e-4)


def test_module_without_tokenizer_is_rejected(tiny_model):
    with pytest.raises(ValueError, match="tokenizer"):
        TransformersPolicy(tiny_model)


LONG_SYSTEM = "You are an agent. " + " ".join(f"rule {i}: be careful." for i in range(20))
SHARED = [
    [{"role": "system", "content": LONG_SYSTEM}, {"role": "user", "content": f"room {i} " * i}]
    for i in range(1, 5)
]


def test_prefix_cache_is_exact(tiny_model, smol_tokenizer):
    def policy(prefix_cache):
        return TransformersPolicy(
            tiny_model,
            tokenizer=smol_tokenizer,
            prefix_cache=prefix_cache,
            sampling=SamplingConfig(temperature=0, max_new_tokens=6),
        )

    cached, plain = policy(True), policy(False)
    a, b = cached.generate(SHARED), plain.generate(SHARED)
    assert len(cached._prefix_store[0]) > 50 and not plain._prefix_store[0]
    assert [g.response_ids for g in a] == [g.response_ids for g in b]
    for x, y in zip(a, b, strict=True):
        assert x.logprobs == pytest.approx(y.logprobs, abs=1e-4)
        assert x.logprobs == pytest.approx(
            direct_logprobs(tiny_model, x.prompt_ids, x.response_ids), abs=1e-4
        )
    # A later call reuses (and extends) the stored prefix; results stay exact.
    again = cached.generate(SHARED[2:])
    assert [g.response_ids for g in again] == [g.response_ids for g in a[2:]]


def test_top_p_sampling_logprobs_are_untruncated(tiny_model, smol_tokenizer):
    policy = TransformersPolicy(
        tiny_model,
        tokenizer=smol_tokenizer,
        sampling=SamplingConfig(temperature=1.0, top_p=0.5, max_new_tokens=5, seed=2),
    )
    for g in policy.generate(SHARED[:2]):
        assert g.logprobs == pytest.approx(
            direct_logprobs(tiny_model, g.prompt_ids, g.response_ids), abs=1e-4
        )


def test_prefix_cache_is_dropped_after_a_weight_update(tiny_model, smol_tokenizer):
    import copy

    model = copy.deepcopy(tiny_model)
    policy = TransformersPolicy(
        model, tokenizer=smol_tokenizer, sampling=SamplingConfig(temperature=0, max_new_tokens=4)
    )
    policy.generate(SHARED)
    with torch.no_grad():  # an in-place update, as an optimizer step does
        for p in model.parameters():
            p.mul_(1.5)
    for g in policy.generate(SHARED):
        assert g.logprobs == pytest.approx(
            direct_logprobs(model, g.prompt_ids, g.response_ids), abs=1e-4
        )


def test_sentence_end_tokens_stop_a_row(tiny_policy, smol_tokenizer):
    from empo_gym.agents.llm.policy import one_sentence

    ends = tiny_policy.sentence_end_ids()
    ids = lambda text: smol_tokenizer.encode(text, add_special_tokens=False)  # noqa: E731
    for text in (".", "!", "?"):
        assert len(ids(text)) == 1 and ids(text)[0] in ends, text
    assert [i in ends for i in ids("Go to the kitchen. Then")].count(True) == 1
    for text in (" the", "search", "3", ","):
        assert ids(text)[0] not in ends, text
    convs = [[{"role": "user", "content": f"Say something {i}."}] for i in range(3)]
    # every token below is a stop token except the first of each row: rows stop at once
    base = SamplingConfig(temperature=1.0, max_new_tokens=12, seed=0)
    state = tiny_policy.sampling_state()  # the same seed for both calls
    free = tiny_policy.generate(convs, base)
    firsts = {g.response_ids[0] for g in free}
    tiny_policy.load_sampling_state(state)
    cut = tiny_policy.generate(
        convs, SamplingConfig(temperature=1.0, max_new_tokens=12, seed=0, stop_token_ids=firsts)
    )
    for g, f in zip(cut, free, strict=True):
        assert g.response_ids == f.response_ids[:1] and g.finish_reason == "stop"
    assert one_sentence(tiny_policy, base).stop_token_ids == ends
