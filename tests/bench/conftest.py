"""Fixtures of the bench tests: the LLM tests' tiny and real models, one torch thread."""

from __future__ import annotations

import pytest
import torch

# the rollout bench runs on the same tiny / real SmolLM2 policies as the LLM tests
from tests.llm.conftest import smol_policy, smol_tokenizer, tiny_model, tiny_policy

__all__ = ["smol_policy", "smol_tokenizer", "tiny_model", "tiny_policy"]


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny matrices: one thread is ~10x faster than a contended pool on a shared 2-core box."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
