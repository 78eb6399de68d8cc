"""Scripted WebShop agents: ``random``, ``oracle`` and ``rule`` (honest baselines).

Example:
    >>> agent = WebShopRuleAgent()
    >>> agent.act(0, "WebShop [SEP] ...", {"has_search_bar": True,
    ...     "instruction": "i need a red hoodie, and price lower than 40.00 dollars"})
    'search[i need a red hoodie]'
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from empo_gym.agents.base import Agent
from empo_gym.agents.scripted.random_agent import RandomAgent
from empo_gym.webshop.goals import strip_price


def _first_product(clickables: list[str]) -> str | None:
    for c in clickables:
        if re.fullmatch(r"b0[0-9a-z]{8}", c):
            return c
    return None


class WebShopRandomAgent(RandomAgent):
    """Uniform over ``info["admissible_actions"]``; the search template gets random words of the
    instruction (seeded, reproducible).

    Args:
        seed: Seed of the agent's RNG.

    Example:
        >>> WebShopRandomAgent(seed=0).act(0, "", {"admissible_actions": ["click[buy now]"]})
        'click[buy now]'
    """

    name: ClassVar[str] = "random"
    supported_envs: ClassVar[tuple[str, ...]] = ("webshop",)

    def act(self, slot: int, observation: Any, info: dict[str, Any]) -> str:
        """A random admissible action."""
        actions = list(info.get("admissible_actions") or [])
        if not actions:
            return "click[back to search]"
        rng = self.rng(slot)
        action = actions[int(rng.integers(len(actions)))]
        if action == "search[<query>]":
            words = strip_price(str(info.get("instruction", ""))).split() or ["item"]
            k = int(rng.integers(1, min(6, len(words)) + 1))
            picked = rng.choice(len(words), size=k, replace=False)
            action = "search[" + " ".join(words[i] for i in sorted(picked)) + "]"
        return action


class WebShopRuleAgent(Agent):
    """Search the instruction (without its price clause), click the first result, buy.

    Example:
        >>> WebShopRuleAgent().act(0, "", {"clickables": ["back to search", "b0abcdefgh"]})
        'click[b0abcdefgh]'
    """

    name: ClassVar[str] = "rule"
    supported_envs: ClassVar[tuple[str, ...]] = ("webshop",)

    def config(self) -> dict[str, Any]:
        """Settings recorded in the leaderboard entry."""
        return {"policy": "search instruction, click first result, buy now"}

    def act(self, slot: int, observation: Any, info: dict[str, Any]) -> str:
        """The rule's next action for the current page."""
        clickables = list(info.get("clickables") or [])
        if info.get("has_search_bar"):
            return f"search[{strip_price(str(info.get('instruction', '')))}]"
        if "buy now" in clickables:
            return "click[buy now]"
        product = _first_product(clickables)
        if product is not None:
            return f"click[{product}]"
        return "click[back to search]"


class WebShopOracleAgent(Agent):
    """Search the goal product's title, page to it, click it, choose the goal options, buy.

    Needs ``info["oracle"]`` (the env's ``oracle_info=True``, requested via :meth:`env_kwargs`).

    Example:
        >>> agent = WebShopOracleAgent()
        >>> agent.reset(0, "", {"oracle": {"asin": "B0ABCDEFGH", "search_query": "Red Hoodie",
        ...     "goal_options": {"color": "red"}, "product_options": {"color": ["red", "blue"]}}})
        >>> agent.act(0, "", {"has_search_bar": True})
        'search[Red Hoodie]'
        >>> agent.act(0, "", {"clickables": ["back to search", "b0abcdefgh"]})
        'click[b0abcdefgh]'
        >>> agent.act(0, "", {"clickables": ["red", "blue", "buy now"], "selected_options": {}})
        'click[red]'
        >>> agent.act(0, "", {"clickables": ["red", "blue", "buy now"],
        ...                   "selected_options": {"color": "red"}})
        'click[buy now]'
    """

    name: ClassVar[str] = "oracle"
    supported_envs: ClassVar[tuple[str, ...]] = ("webshop",)

    def __init__(self) -> None:
        self._plan: dict[int, dict[str, Any]] = {}

    def env_kwargs(self, env_name: str) -> dict[str, Any]:
        """Ask the env for the goal (product, options)."""
        return {"oracle_info": True}

    def config(self) -> dict[str, Any]:
        """Settings recorded in the leaderboard entry."""
        return {"source": "webshop goal product and options (oracle_info)"}

    def reset(self, slot: int, observation: Any, info: dict[str, Any]) -> None:
        """Read the goal of the new episode."""
        oracle = info.get("oracle")
        if not oracle or "asin" not in oracle:
            raise ValueError(
                "the WebShop oracle needs info['oracle']; construct the env with "
                "oracle_info=True (the harness does this through env_kwargs)"
            )
        goal_opts = oracle.get("goal_options") or {}
        product_opts: dict[str, list[str]] = oracle.get("product_options") or {}
        wanted: dict[str, str] = {}
        if isinstance(goal_opts, dict):
            wanted = {k: str(v).lower() for k, v in goal_opts.items()}
        else:  # human goals: a list of values; find the option each belongs to
            for value in goal_opts:
                v = str(value).lower()
                for name, values in product_opts.items():
                    if v in values:
                        wanted[name] = v
        self._plan[slot] = {
            "asin": str(oracle["asin"]).lower(),
            "query": str(oracle.get("search_query", "")),
            "wanted": wanted,
        }

    def act(self, slot: int, observation: Any, info: dict[str, Any]) -> str:
        """The next action towards buying the goal product with the goal options."""
        plan = self._plan.get(slot)
        if plan is None:
            raise ValueError("WebShopOracleAgent.act called before reset for slot " + str(slot))
        if info.get("has_search_bar"):
            return f"search[{plan['query']}]"
        clickables = list(info.get("clickables") or [])
        if "buy now" in clickables:
            selected = info.get("selected_options") or {}
            for name, value in plan["wanted"].items():
                if selected.get(name) != value and value in clickables:
                    return f"click[{value}]"
            return "click[buy now]"
        if plan["asin"] in clickables:
            return f"click[{plan['asin']}]"
        if "next >" in clickables:
            return "click[next >]"
        if "< prev" in clickables and _first_product(clickables) is None:
            return "click[< prev]"
        return "click[back to search]"
