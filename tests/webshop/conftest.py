"""Shared fixtures: every WebShop test caches under a temporary folder (EMPO_GYM_CACHE)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DATA_DIR = Path(__file__).parent / "data"


@pytest.fixture(scope="session", autouse=True)
def webshop_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Point EMPO_GYM_CACHE at a session temp dir (inherited by async-vector workers)."""
    path = tmp_path_factory.mktemp("empo_gym_cache")
    old = os.environ.get("EMPO_GYM_CACHE")
    os.environ["EMPO_GYM_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("EMPO_GYM_CACHE", None)
    else:
        os.environ["EMPO_GYM_CACHE"] = old
