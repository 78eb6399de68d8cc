"""WebShopEnv: Gymnasium compliance, page navigation, bad input, splits, vectorisation."""

from __future__ import annotations

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st

import empo_gym  # noqa: F401  (registers empo_gym/WebShop-v0)
from empo_gym.webshop.env import WebShopEnv
from empo_gym.webshop.goals import split_range
from empo_gym.webshop.shop import get_shop


@pytest.fixture(scope="module")
def env() -> WebShopEnv:
    return WebShopEnv(split="test", num_products=1000, oracle_info=True)


def test_check_env():
    e = gym.make("empo_gym/WebShop-v0", num_products=200)
    check_env(e.unwrapped, skip_render_check=True)


def test_info_keys_and_search_page(env):
    obs, info = env.reset(seed=7)
    assert obs == f"WebShop [SEP] Instruction: [SEP] {info['instruction']} [SEP] Search"
    for key in (
        "admissible_actions",
        "clickables",
        "has_search_bar",
        "task",
        "instruction",
        "score",
        "success",
        "success_rule",
        "invalid_action",
    ):
        assert key in info
    assert info["admissible_actions"] == ["search[<query>]"] and info["clickables"] == []
    assert info["task"] == "webshop" and info["score"] == 0.0 and not info["success"]
    assert info["success_rule"] == "webshop:reward==1"


def test_navigation(env):
    obs, info = env.reset(seed=1)
    query = info["oracle"]["search_query"]
    obs, r, term, trunc, info = env.step(f"search[{query}]")
    assert not info["invalid_action"] and info["page"] == "results"
    assert "Page 1 (Total results: 50)" in obs and "click[next >]" in info["admissible_actions"]
    assert "< prev" not in info["clickables"]
    products = [c for c in info["clickables"] if c.startswith("b0")]
    assert len(products) == 10
    obs, *_, info = env.step("click[next >]")
    assert "Page 2 (Total results: 50)" in obs and "< prev" in info["clickables"]
    obs, *_, info = env.step("click[< prev]")
    assert "Page 1" in obs
    obs, *_, info = env.step(f"click[{products[0].upper()}]")  # ids are case-insensitive
    assert info["page"] == "item" and "buy now" in info["clickables"]
    # the original's item page: ratings are disabled, so it always reads "Rating: N.A."
    assert obs.endswith(
        "[SEP] Rating: N.A. [SEP] Description [SEP] Features [SEP] Reviews [SEP] Buy Now"
    )
    p = env.shop.catalogue.product(env.shop.catalogue.index_of(products[0]))
    for sub, text in (("description", p["Description"]), ("features", p["BulletPoints"][0])):
        obs, *_, info = env.step(f"click[{sub}]")
        assert text in obs and info["clickables"] == ["back to search", "< prev"]
        obs, *_, info = env.step("click[< prev]")
        assert info["page"] == "item"
    obs, *_, info = env.step("click[< prev]")
    assert info["page"] == "results"
    obs, *_, info = env.step("click[back to search]")
    assert info["page"] == "search" and info["has_search_bar"]


BAD_ACTIONS = [
    "search[]",
    "search[   ]",
    "click[no such thing]",
    "buy now",
    "click buy now",
    "search[" + "x" * 100_000 + "]",
    "買う",
    "click[购买]",
    "",
    "[]",
    "jump[high]",
]


@pytest.mark.parametrize("action", BAD_ACTIONS, ids=range(len(BAD_ACTIONS)))
def test_bad_actions_are_invalid_noops(env, action):
    obs0, info0 = env.reset(seed=3)
    obs, reward, term, trunc, info = env.step(action)
    assert info["invalid_action"] and obs == obs0 and reward == 0.0 and not term
    assert info["page"] == "search"


def test_actions_on_the_wrong_page(env):
    env.reset(seed=4)
    for action in ("click[buy now]", "click[next >]", "click[description]", "click[< prev]"):
        assert env.step(action)[-1]["invalid_action"]
    obs, *_, info = env.step("search[shampoo]")
    assert not info["invalid_action"]
    for action in ("search[shampoo]", "click[buy now]", "click[description]"):
        o, *_, i = env.step(action)
        assert i["invalid_action"] and o == obs
    env.step(f"click[{info['clickables'][-1]}]")  # a product
    for action in ("click[next >]", "search[x]"):
        assert env.step(action)[-1]["invalid_action"]


def test_non_ascii_search_is_a_search(env):
    env.reset(seed=5)
    obs, *_, info = env.step("search[lumière 你好]")
    assert not info["invalid_action"] and info["page"] == "results"
    assert "Lumière" in obs


def test_buy_terminates_with_breakdown(env):
    env.reset(seed=6)
    env.step("search[hoodie]")
    _, _, _, _, info = env.step(f"click[{[c for c in env._clickables() if c.startswith('b0')][0]}]")
    obs, reward, term, trunc, info = env.step("click[buy now]")
    assert term and not trunc and 0.0 <= reward <= 1.0
    assert info["score"] == pytest.approx(100 * reward)
    assert {"r_type", "r_att", "r_option", "r_price", "matched_attributes"} <= set(
        info["reward_breakdown"]
    )
    assert obs.startswith("Thank you for shopping with us!")
    assert env.step("click[buy now]")[-1]["invalid_action"]  # after the end: no-op


def test_truncation():
    e = WebShopEnv(num_products=1000, max_steps=3)
    e.reset(seed=0)
    outs = [e.step("click[nothing]") for _ in range(3)]
    assert [o[3] for o in outs] == [False, False, True] and not any(o[2] for o in outs)


def test_reset_determinism_and_goal_index(env):
    a = env.reset(seed=11)[0]
    b = env.reset(seed=11)[0]
    assert a == b and env.reset(seed=12)[0] != a
    o1, i1 = env.reset(options={"goal_index": 42})
    assert i1["goal_index"] == 42 and env.reset(seed=42)[0] == o1
    with pytest.raises(ValueError, match="goal_index"):
        env.reset(options={"goal_index": 500})
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(options={"goal": 1})
    e = WebShopEnv(split="train", num_products=1000)
    e.reset(seed=0)
    seen = {e.reset()[1]["goal_index"] for _ in range(20)}  # weighted draws from np_random
    assert len(seen) > 1


def test_constructor_errors():
    with pytest.raises(ValueError, match="unknown split 'validate'"):
        WebShopEnv(split="validate")
    with pytest.raises(ValueError, match="num_products"):
        WebShopEnv(num_products=0)
    with pytest.raises(ValueError, match="max_steps"):
        WebShopEnv(max_steps=0)
    with pytest.raises(ValueError, match="goal_source"):
        WebShopEnv(goal_source="robots")
    with pytest.raises(ValueError, match="split 'train' is empty"):
        WebShopEnv(split="train", num_products=20)
    assert WebShopEnv(split="dev").split == "eval"


def test_splits_disjoint_and_sized():
    goals = get_shop(1000).goals("synthetic")
    goals.check_splits_disjoint(limit=None)
    keys = {
        s: {goals.goal_key(i) for i in range(*split_range(s, len(goals)))}
        for s in ("test", "eval", "train")
    }
    assert len(keys["test"]) == 500 and len(keys["eval"]) == 1000
    assert not (
        keys["test"] & keys["eval"] or keys["test"] & keys["train"] or keys["eval"] & keys["train"]
    )


def test_human_goals():
    e = WebShopEnv(num_products=1000, goal_source="human")
    _, info = e.reset(seed=0)
    assert "dollars" in info["instruction"]


def test_envs_share_one_shop():
    envs = [WebShopEnv(num_products=1000) for _ in range(8)]
    assert len({id(e.shop) for e in envs}) == 1
    assert len({id(e.shop.index) for e in envs}) == 1


def test_async_vector_env_non_ascii():
    envs = gym.make_vec(
        "empo_gym/WebShop-v0", num_envs=2, vectorization_mode="async", num_products=1000
    )
    try:
        obs, info = envs.reset(seed=0)
        assert all(o.startswith("WebShop [SEP] Instruction:") for o in obs)
        obs, rew, term, trunc, info = envs.step(["search[lumière soins]", "click[ça]"])
        assert "Lumière" in obs[0]
        assert list(info["invalid_action"]) == [False, True]
    finally:
        envs.close()


@settings(max_examples=150, deadline=None)
@given(
    action=st.one_of(
        st.text(max_size=300),
        st.builds(
            lambda n, a: f"{n}[{a}]",
            st.sampled_from(["search", "click", "Click", "x"]),
            st.text(max_size=80),
        ),
    )
)
def test_any_text_never_crashes(env, action):
    e = env
    e.reset(seed=0)
    e.step("search[shampoo]")
    obs, reward, term, trunc, info = e.step(action)
    assert isinstance(obs, str) and e.observation_space.contains(obs)
    assert isinstance(info["invalid_action"], bool) and reward == 0.0
