"""Doctests of the subpackages that live outside ``empo_gym/`` in the repository.

``agents/`` and ``leaderboard/`` install as ``empo_gym.agents`` and ``empo_gym.leaderboard``;
pytest's ``--doctest-modules`` would import them under their directory names (a second copy of
every module), so their doctests run here, through the installed names.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import empo_gym.agents
import empo_gym.leaderboard


def _modules() -> list[str]:
    names = []
    for pkg in (empo_gym.agents, empo_gym.leaderboard):
        names.append(pkg.__name__)
        for info in pkgutil.walk_packages(pkg.__path__, prefix=pkg.__name__ + "."):
            names.append(info.name)
    return sorted(names)


MODULES = _modules()


def test_every_module_is_found() -> None:
    assert "empo_gym.agents.training.losses" in MODULES
    assert "empo_gym.leaderboard.entry" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} doctest examples failed"
