"""What ``pip install empo-gym`` puts on ``sys.path``: one import name, ``empo_gym``."""

from __future__ import annotations

import ast
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
        "empo_gym.adapters.trl, empo_gym.toy;"
        # the benches and tools are a top layer (they import the agents), like the pipeline
        "top = ('empo_gym.agents', 'empo_gym.bench', 'empo_gym.tools');"
        "loaded = sorted(m for m in sys.modules if m.startswith(top));"
        "assert not loaded, loaded",
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr


# The layers of docs/CONVENTIONS.md by top package (the root package, or ``empo_gym.<name>`` with
# everything under it): a module imports its own layer and the ones below, never one above.
# Every top package is listed, so a new one has to take a layer.
LAYERS: dict[int, tuple[str, ...]] = {
    # 1. envs, memory, and the primitives everything shares
    1: (
        "empo_gym",
        "empo_gym.spaces",
        "empo_gym.registry",
        "empo_gym.scienceworld",
        "empo_gym.twx",
        "empo_gym.jvm",
        "empo_gym.webshop",
        "empo_gym.ood",
        "empo_gym.doors",
        "empo_gym.toy",
        "empo_gym.memory",
        "empo_gym.adapters",
        "empo_gym.atomic_io",
        "empo_gym.processes",
        "empo_gym.run_metrics",
        "empo_gym.provenance",
        "empo_gym.protocols",
        "empo_gym.yaml_config",
        "empo_gym.deprecation",
        "empo_gym.stats",
    ),
    # 2. the harness (it defines the EvalAgent protocol) and what reads its results
    2: ("empo_gym.harness", "empo_gym.comparison", "empo_gym.leaderboard"),
    # 3. agents, LLM policies, trainers
    3: ("empo_gym.agents",),
    # 4. what drives the agents: pipeline, CLI, benchmarks, operator tools
    4: ("empo_gym.pipeline", "empo_gym.cli", "empo_gym.bench", "empo_gym.tools"),
}
# Upward imports allowed, each with its reason (none today; the test fails once one is gone).
KNOWN_UPWARD: set[tuple[str, str]] = set()


def _top(module: str) -> str:
    """The top package ``module`` belongs to (``empo_gym.agents.llm.x`` -> ``empo_gym.agents``)."""
    return ".".join(module.split(".")[:2])


def _source_modules() -> dict[str, Path]:
    """Every module of the installed tree by import name, with its source file."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    dirs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    modules = {"empo_gym.cli": ROOT / "cli.py"}  # empo_gym/cli.py links to it
    for name, folder in dirs.items():
        for path in (ROOT / folder).rglob("*.py"):
            if path.is_symlink():
                continue
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join((name, *parts))] = path
    return modules


def _empo_imports(module: str, path: Path, known: set[str]) -> list[tuple[str, int]]:
    """(module, line) of every ``empo_gym`` import in ``path``: module level, inside functions
    and under ``if TYPE_CHECKING`` alike (relative imports resolved)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            for alias in node.names:  # ``from empo_gym import toy`` imports empo_gym.toy
                sub = f"{base}.{alias.name}"
                found.append((sub if sub in known else base, node.lineno))
    return [(name, line) for name, line in found if name.split(".")[0] == "empo_gym"]


def test_every_import_statement_respects_the_layers() -> None:
    modules = _source_modules()
    layer = {top: n for n, tops in LAYERS.items() for top in tops}
    missing = sorted({_top(m) for m in modules} - set(layer))
    assert not missing, f"top packages without a layer: {missing}; add each to LAYERS"
    upward, known = [], set()
    for module, path in sorted(modules.items()):
        for target, line in _empo_imports(module, path, set(modules)):
            where = f"{path.relative_to(ROOT)}:{line}"
            assert _top(target) in layer, f"{where} imports {target}, which is no module"
            if layer[_top(target)] <= layer[_top(module)]:
                continue
            if (module, target) in KNOWN_UPWARD:
                known.add((module, target))
                continue
            upward.append(
                f"{where}: {module} (layer {layer[_top(module)]}) imports {target} "
                f"(layer {layer[_top(target)]})"
            )
    assert not upward, "imports from a higher layer:\n" + "\n".join(upward)
    assert known == KNOWN_UPWARD, f"fixed: drop {sorted(KNOWN_UPWARD - known)} from KNOWN_UPWARD"


def test_the_layer_scan_sees_imports_inside_functions(tmp_path: Path) -> None:
    source = tmp_path / "probe.py"
    source.write_text(
        "import os\n"
        "from . import spaces\n"
        "def f():\n"
        "    from empo_gym.agents.base import Agent\n"
        "    if True:\n"
        "        import empo_gym.bench.train\n"
    )
    known = {"empo_gym.spaces", "empo_gym.agents.base", "empo_gym.bench.train"}
    assert _empo_imports("empo_gym.probe", source, known) == [
        ("empo_gym.spaces", 2),
        ("empo_gym.agents.base", 4),
        ("empo_gym.bench.train", 6),
    ]


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
