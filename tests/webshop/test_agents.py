"""Scripted agents: the oracle solves every test goal; rule and random score lower."""

from __future__ import annotations

import statistics

from empo_gym.agents.scripted.webshop import (
    WebShopOracleAgent,
    WebShopRandomAgent,
    WebShopRuleAgent,
)
from empo_gym.webshop.env import WebShopEnv


def run(agent, episodes: int, **kwargs) -> list[dict]:
    env = WebShopEnv(split="test", num_products=1000, **agent.env_kwargs("webshop"), **kwargs)
    finals = []
    for seed in range(episodes):  # the harness resets episode i with seed i
        obs, info = env.reset(seed=seed)
        agent.reset(0, obs, info)
        while True:
            obs, _, term, trunc, info = env.step(agent.act(0, obs, info))
            if term or trunc:
                finals.append(info)
                break
    return finals


def test_oracle_solves_200_test_goals():
    finals = run(WebShopOracleAgent(), 200)
    assert len({f["goal_index"] for f in finals}) == 200
    failed = [f["reward_breakdown"] for f in finals if not f["success"]]
    assert not failed, failed[:3]
    assert all(f["score"] == 100.0 for f in finals)


def test_rule_and_random_score_lower():
    rule = run(WebShopRuleAgent(), 100)
    rand = run(WebShopRandomAgent(seed=0), 100)
    rule_score = statistics.fmean(f["score"] for f in rule)
    rand_score = statistics.fmean(f["score"] for f in rand)
    assert 0 < rand_score < rule_score < 100
    assert sum(f["success"] for f in rule) < 100


def test_oracle_on_human_goals():
    finals = run(WebShopOracleAgent(), 50, goal_source="human")
    assert all(f["success"] for f in finals)


def test_agent_metadata():
    assert (WebShopRandomAgent.name, WebShopOracleAgent.name, WebShopRuleAgent.name) == (
        "random",
        "oracle",
        "rule",
    )
    assert WebShopOracleAgent().env_kwargs("webshop") == {"oracle_info": True}


def test_harness_oracle_200_episodes():
    """What ``empo-gym run --agent oracle --env webshop --episodes 200`` runs."""
    from empo_gym.harness import evaluate

    res = evaluate(WebShopOracleAgent(), "webshop", episodes=200, num_envs=4)
    assert res.metrics["success_rate"] == 1.0 and res.metrics["mean_score"] == 100.0
    assert res.settings["success_rule"] == "webshop:reward==1"
    rule = evaluate(WebShopRuleAgent(), "webshop", episodes=50, num_envs=2)
    assert rule.metrics["mean_score"] < 100.0
