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
