"""What ``pip install empo-gym`` puts on ``sys.path``: one import name, ``empo_gym``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # outside the checkout, so only installed names resolve (the repo root is not on sys.path)
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True)


def test_every_package_directory_is_listed_in_pyproject() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    dirs = {
        "empo_gym/": "empo_gym",
        "agents/": "empo_gym.agents",
        "leaderboard/": "empo_gym.leaderboard",
    }
    found = set()
    for top, name in dirs.items():
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / top).parts
            found.add(".".join((name, *rel)))
    assert found == listed


def test_no_generic_top_level_names_are_installed(tmp_path: Path) -> None:
    proc = _run(
        "import importlib.util, json, empo_gym.cli, empo_gym.leaderboard, empo_gym.agents.base;"
        "print(json.dumps({n: importlib.util.find_spec(n) is not None "
        "for n in ('cli', 'leaderboard')}))",
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"cli": False, "leaderboard": False}


def test_envs_memory_and_harness_never_load_agent_code(tmp_path: Path) -> None:
    proc = _run(
        "import sys, empo_gym, empo_gym.harness, empo_gym.memory, empo_gym.spaces, "
        "empo_gym.registry, empo_gym.ood, empo_gym.webshop, empo_gym.scienceworld.env, "
        "empo_gym.adapters.trl;"
        # the benches and tools are a top layer (they import the agents), like the pipeline
        "top = ('empo_gym.agents', 'empo_gym.bench', 'empo_gym.tools');"
        "loaded = sorted(m for m in sys.modules if m.startswith(top));"
        "assert not loaded, loaded",
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr


@pytest.mark.slow
def test_openai_agents_and_empo_gym_install_side_by_side(tmp_path: Path) -> None:
    pytest.importorskip("agents", reason="openai-agents is in the dev extra")
    proc = _run(
        "import agents, empo_gym.agents.base;"
        "from agents import Agent, Runner;"  # the OpenAI Agents SDK's own API
        "assert 'site-packages' in agents.__file__, agents.__file__;"
        "assert empo_gym.agents.base.Agent is not Agent",
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    exe = Path(sys.executable).with_name("empo-gym")
    out = tmp_path / "results"
    proc = subprocess.run(
        [str(exe), "run", "--agent", "random", "--env", "webshop", "--episodes", "3"]
        + ["--out", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    (entry,) = out.glob("*.json")
    data = json.loads(entry.read_text())
    assert data["agent"] == "random" and data["env"] == "webshop"
    assert data["metrics"]["episodes"] == 3
