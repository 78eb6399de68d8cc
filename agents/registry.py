"""Agent names -> constructors, per environment.

``make_agent("random", "scienceworld")`` builds the agent ``empo-gym run --agent random``
uses. Learning and LLM agents import their heavy dependencies only when built.

Example:
    >>> agent = make_agent("random", "scienceworld", seed=3)
    >>> agent.name
    'random'
    >>> make_agent("nope", "scienceworld")
    Traceback (most recent call last):
    ...
    ValueError: unknown agent 'nope'; expected one of: ...
"""

from __future__ import annotations

import importlib
from typing import Any

from empo_gym.agents.base import Agent
from empo_gym.registry import TWX_ENVS

# agent name -> {env name or "*": "module:Class"}
_AGENTS: dict[str, dict[str, str]] = {
    "random": {
        "*": "empo_gym.agents.scripted.random_agent:RandomAgent",
        "webshop": "empo_gym.agents.scripted.webshop:WebShopRandomAgent",
    },
    "oracle": {
        "scienceworld": "empo_gym.agents.scripted.oracle:ScienceWorldOracleAgent",
        "webshop": "empo_gym.agents.scripted.webshop:WebShopOracleAgent",
        **{
            game: "empo_gym.agents.scripted.oracle:TextWorldExpressOracleAgent" for game in TWX_ENVS
        },
    },
    "rule": {"webshop": "empo_gym.agents.scripted.webshop:WebShopRuleAgent"},
    "naive": {"*": "empo_gym.agents.llm.naive:NaiveLLMAgent"},
    "memory-only": {"*": "empo_gym.agents.llm.memory_only:MemoryOnlyAgent"},
    "grpo": {"*": "empo_gym.agents.training.agent:GRPOAgent"},
    "empo": {"*": "empo_gym.agents.training.agent:EMPOAgent"},
}


def register_agent(name: str, env: str, target: str) -> None:
    """Register ``module:Class`` as agent ``name`` for ``env`` (``"*"``: every env)."""
    _AGENTS.setdefault(name, {})[env] = target


def agent_names() -> list[str]:
    """All registered agent names."""
    return sorted(_AGENTS)


def agent_envs(name: str) -> list[str]:
    """The envs agent ``name`` supports (``["*"]`` when any)."""
    return sorted(_AGENTS[name])


def agent_class(name: str, env: str) -> type[Agent]:
    """The class agent ``name`` builds for ``env`` (imports its module, builds nothing).

    Example:
        >>> agent_class("random", "webshop").__name__
        'WebShopRandomAgent'
    """
    if name not in _AGENTS:
        raise ValueError(f"unknown agent {name!r}; expected one of: {', '.join(agent_names())}")
    table = _AGENTS[name]
    target = table.get(env) or table.get("*")
    if target is None:
        raise ValueError(
            f"agent {name!r} does not support env {env!r}; it supports: {', '.join(sorted(table))}"
        )
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)


def make_agent(name: str, env: str, **kwargs: Any) -> Agent:
    """Build agent ``name`` for env ``env`` with constructor ``kwargs``."""
    return agent_class(name, env)(**kwargs)
