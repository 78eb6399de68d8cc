"""Shared fixtures: an isolated cache directory for every test session; the toy env ``guess``."""

from __future__ import annotations

import os

import pytest

from empo_gym.toy import register_guess_env

# Every test may drive the toy game by name (``evaluate(agent, "guess")``, ``--env guess``);
# registering it when the tests are collected also registers it in each xdist worker.
register_guess_env()


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Point empo-gym's on-disk caches at a temp dir unless the caller chose one."""
    if "EMPO_GYM_CACHE" not in os.environ:
        os.environ["EMPO_GYM_CACHE"] = str(tmp_path_factory.mktemp("empo_gym_cache"))
