"""The policy protocols and records: who satisfies which protocol, the errors, no import cycles."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from empo_gym.agents.llm.openai_policy import OpenAIPolicy
from empo_gym.agents.llm.policy import (
    EncodedPrompt,
    Generation,
    Message,
    Policy,
    SamplingConfig,
    TokenPolicy,
    TrainablePolicy,
    check_policy,
    one_sentence,
)
from empo_gym.protocols import missing_members

LLM_DIR = Path(__file__).resolve().parents[2] / "agents" / "llm"
#: The modules of the policy split; each must import on its own.
POLICY_MODULES = (
    "policy",
    "models",
    "transformers_policy",
    "openai_policy",
    "policy_server",
    "http_json",
    "factory",
)
#: The modules of the split that need no torch (the protocols, HTTP clients and the server).
NO_TORCH_MODULES = ("policy", "openai_policy", "policy_server", "http_json")


class TextPolicy:
    """A text-only fake: exactly the :class:`Policy` protocol."""

    name = "text-fake"

    def __init__(self) -> None:
        self.sampling = SamplingConfig(max_new_tokens=4)

    def generate(
        self, conversations: Sequence[Sequence[Message]], sampling: SamplingConfig | None = None
    ) -> list[Generation]:
        return [Generation([], [], [], "look around") for _ in conversations]

    def close(self) -> None:
        """Nothing to release."""


def test_sampling_config_validation():
    with pytest.raises(ValueError, match="top_p"):
        SamplingConfig(top_p=0)
    with pytest.raises(ValueError, match="temperature"):
        SamplingConfig(temperature=-1)


def test_encoded_prompt_without_tips():
    assert not EncodedPrompt(ids=[1], ids_no_tips=[1]).used_tips


def test_transformers_policy_satisfies_every_protocol(tiny_policy):
    # tiny_policy: a TransformersPolicy over a random 2-layer Llama built from a config
    assert isinstance(tiny_policy, TokenPolicy) and isinstance(tiny_policy, Policy)
    assert isinstance(tiny_policy, TrainablePolicy)
    for protocol in (Policy, TokenPolicy, TrainablePolicy):
        assert missing_members(tiny_policy, protocol) == []
        check_policy(tiny_policy, protocol, needed_by="test")


def test_openai_policy_is_a_text_policy_only():
    remote = OpenAIPolicy("http://127.0.0.1:9/v1", model="m")
    assert isinstance(remote, Policy)
    assert not isinstance(remote, TokenPolicy) and not isinstance(remote, TrainablePolicy)
    assert "encode_prompt" in missing_members(remote, TokenPolicy)
    assert missing_members(remote, TrainablePolicy) == [
        "model",
        "pad_id",
        "sampling_state",
        "load_sampling_state",
        "clear_prefix_cache",
    ]


def test_a_fake_satisfies_the_protocol_it_implements():
    fake = TextPolicy()
    assert isinstance(fake, Policy) and not isinstance(fake, TokenPolicy)
    # a text-only policy keeps its sampling: it cannot name its sentence-end tokens
    assert one_sentence(fake, fake.sampling) == fake.sampling


def test_missing_members_lists_the_protocols_in_declaration_order():
    assert missing_members(object(), Policy) == ["name", "sampling", "generate", "close"]
    assert missing_members(object(), TrainablePolicy) == [
        "model",
        "pad_id",
        "sampling_state",
        "load_sampling_state",
        "clear_prefix_cache",
    ]


def test_check_policy_names_the_missing_members():
    class Half:
        name = "half"
        sampling = SamplingConfig()

        def generate(self, conversations, sampling=None):
            return []

    with pytest.raises(TypeError) as err:
        check_policy(Half(), Policy, needed_by="the test")
    assert str(err.value) == (
        "the test needs a Policy; got Half, which lacks close "
        "(define them, or use TransformersPolicy)"
    )
    half = Half()
    half.close = None  # as isinstance does, a method member set to None is missing
    assert missing_members(half, Policy) == ["close"] and not isinstance(half, Policy)


def _llm_imports(path: Path) -> set[str]:
    """``empo_gym.agents.llm`` modules that ``path`` imports anywhere (lazy imports too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            if name.startswith("empo_gym.agents.llm."):
                found.add(name.split(".")[3])
    return found


def test_no_import_cycle_in_agents_llm():
    graph = {p.stem: _llm_imports(p) for p in LLM_DIR.glob("*.py")}
    assert set(POLICY_MODULES) <= set(graph)
    # openai_policy and transformers_policy never import each other: the factory joins them
    assert "transformers_policy" not in graph["openai_policy"]
    assert "openai_policy" not in graph["transformers_policy"]
    visiting: list[str] = []
    done: set[str] = set()

    def visit(mod: str) -> None:
        assert mod not in visiting, f"import cycle: {' -> '.join([*visiting, mod])}"
        if mod in done:
            return
        visiting.append(mod)
        for dep in sorted(graph.get(mod, ())):
            visit(dep)
        visiting.pop()
        done.add(mod)

    for mod in sorted(graph):
        visit(mod)


@pytest.mark.parametrize("module", POLICY_MODULES)
def test_each_policy_module_imports_alone(module: str):
    name = f"empo_gym.agents.llm.{module}"
    code = f"import sys, {name}; print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    if module in NO_TORCH_MODULES:
        assert proc.stdout.strip() == "False"
