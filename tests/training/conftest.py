"""Fixtures of the training tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from tests.training.train_helpers import make_tiny_model


@pytest.fixture()
def tiny_model() -> torch.nn.Module:
    """A fresh tiny model per test (tests train it)."""
    return make_tiny_model()


@pytest.fixture()
def model_factory() -> Callable[[int], torch.nn.Module]:
    """Build tiny models with a given init seed."""
    return make_tiny_model


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny matrices: one thread is ~10x faster than a contended pool on a shared 2-core box."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
