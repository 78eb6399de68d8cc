"""Helpers of the training tests: a tiny random Llama and hand-made trajectories."""

from __future__ import annotations

from collections.abc import Callable

import torch

from agents.llm.trajectory import Trajectory, Turn

VOCAB = 128
PAD = 0


def make_tiny_model(seed: int = 0) -> torch.nn.Module:
    """A randomly initialised 2-layer Llama (hidden 32, vocab 128): a few ms per forward."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        pad_token_id=PAD,
        bos_token_id=1,
        eos_token_id=2,
    )
    model = LlamaForCausalLM(config)
    model.eval()
    return model


@torch.no_grad()
def score(model: torch.nn.Module, prompt: list[int], response: list[int]) -> list[float]:
    """Log-probabilities of ``response`` after ``prompt`` under ``model``."""
    from agents.llm.logprobs import token_logprobs

    logp, _ = token_logprobs(model, [prompt], [response], PAD)
    return logp[0, : len(response)].tolist()


def make_turn(
    model: torch.nn.Module | None,
    prompt: list[int],
    response: list[int],
    *,
    prompt_no_tips: list[int] | None = None,
    reward: float = 0.0,
    intrinsic: float = 0.0,
    logprobs: list[float] | None = None,
) -> Turn:
    """A turn whose old log-probs are the model's under the sampling prompt (or given)."""
    if logprobs is None:
        logprobs = score(model, prompt, response) if model is not None else [-0.5] * len(response)
    return Turn(
        prompt_ids=list(prompt),
        prompt_ids_no_tips=list(prompt if prompt_no_tips is None else prompt_no_tips),
        response_ids=list(response),
        logprobs=logprobs,
        reward=reward,
        intrinsic_reward=intrinsic,
        used_tips=prompt_no_tips is not None,
    )


def make_traj(group: str, member: int, turns: list[Turn]) -> Trajectory:
    """A trajectory of ``turns``."""
    return Trajectory(group_id=group, member=member, turns=turns)
