"""Per-token log-probs: the head-only-at-response-positions path equals a full forward pass."""

from __future__ import annotations

import torch

from empo_gym.agents.llm.logprobs import accepts_logits_to_keep, token_logprobs
from tests.tiny_llama import tiny_llama


class _FullLogitsOnly(torch.nn.Module):
    """Hides ``logits_to_keep`` so token_logprobs takes its full-logits path."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):  # noqa: D102
        return self.inner(input_ids=input_ids, attention_mask=attention_mask)


def test_logits_to_keep_path_matches_full_logits_and_gradients() -> None:
    model = tiny_llama(97)
    wrapped = _FullLogitsOnly(model)
    assert accepts_logits_to_keep(model) and not accepts_logits_to_keep(wrapped)
    prompts = [[5, 6, 7, 8, 9, 10, 11], [12, 13], [14, 15, 16, 17]]
    responses = [[20, 21, 22], [23], [24, 25, 26, 27, 28]]
    fast, mask_fast = token_logprobs(model, prompts, responses, pad_id=0)
    fast.sum().backward()
    grad_fast = model.model.layers[0].mlp.up_proj.weight.grad.clone()
    model.zero_grad()
    full, mask_full = token_logprobs(wrapped, prompts, responses, pad_id=0)
    full.sum().backward()
    grad_full = model.model.layers[0].mlp.up_proj.weight.grad
    assert fast.shape == full.shape == (3, 5)
    assert torch.equal(mask_fast, mask_full)
    torch.testing.assert_close(fast, full, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad_fast, grad_full, rtol=1e-4, atol=1e-6)
    # and both equal log_softmax of one unpadded forward pass per row
    for i, (p, r) in enumerate(zip(prompts, responses, strict=True)):
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([p + r])).logits[0]
        want = torch.log_softmax(logits[len(p) - 1 : len(p) - 1 + len(r)], -1)
        want = want.gather(-1, torch.tensor(r)[:, None]).squeeze(-1)
        torch.testing.assert_close(fast[i, : len(r)].detach(), want, rtol=1e-4, atol=1e-5)
        assert float(fast[i, len(r) :].abs().sum()) == 0.0


def test_shared_prefix_is_computed_once_with_the_same_values_and_gradients() -> None:
    model = tiny_llama(97)
    common = [
        int(t) for t in torch.randint(3, 97, (40,), generator=torch.Generator().manual_seed(1))
    ]
    prompts = [common + [5, 6, 7], common + [8], common + [9, 10, 11, 12, 13]]
    responses = [[20, 21, 22], [23, 24], [25]]
    calls: list[int] = []
    hook = model.model.register_forward_pre_hook(
        lambda mod, args, kwargs: calls.append(kwargs["input_ids"].numel()), with_kwargs=True
    )
    grads, values = [], []
    for share in (True, False):
        model.zero_grad()
        calls.clear()
        logp, mask = token_logprobs(model, prompts, responses, 0, share_prefix=share)
        (logp * torch.tensor([1.0, -2.0, 0.5])[:, None]).sum().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
        values.append(logp.detach())
        if share:  # the prefix once, then 3 rows of their own tokens (padded)
            assert calls == [40, 3 * 6], calls  # widest own part: 3 + 3 and 5 + 1
        else:
            assert calls == [3 * 46], calls
    hook.remove()
    torch.testing.assert_close(values[0], values[1], rtol=1e-5, atol=1e-5)
    for a, b in zip(grads[0], grads[1], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_shared_prefix_through_a_lora_adapter() -> None:
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(tiny_llama(97), LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    common = list(range(3, 43))
    prompts, responses = [common + [50], common + [51, 52]], [[60, 61], [62]]
    shared, _ = token_logprobs(model, prompts, responses, 0)
    plain, _ = token_logprobs(model, prompts, responses, 0, share_prefix=False)
    torch.testing.assert_close(shared, plain, rtol=1e-5, atol=1e-5)
