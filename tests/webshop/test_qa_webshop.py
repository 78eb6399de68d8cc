"""QA: reward terms the existing tests leave out (hand-worked), success rule, wrong-page clicks."""

from __future__ import annotations

import pytest

from empo_gym.webshop.catalogue import NO_PRICE_CAP
from empo_gym.webshop.env import WebShopEnv
from empo_gym.webshop.reward import score_purchase

GOAL = {
    "query": "snack bars",
    "product_category": "Grocery › Snacks › Snack Bars",
    "name": "Acme Snack Bar",
    "name_nouns": ["snack", "bar"],
    "attributes": ["gluten free", "non gmo"],
    "goal_options": {"flavor name": "chocolate", "size": "12 count"},
    "price_upper": 30.0,
}


def product(**over):
    p = {
        "query": "snack bars",
        "product_category": "Grocery › Snacks › Snack Bars",
        "name": "Acme Snack Bar",
        "name_nouns": ["snack", "bar"],
        "Attributes": ["gluten free", "non gmo"],
        "Title": "Acme Snack Bar",
        "BulletPoints": ["tasty"],
        "Description": "a bar",
    }
    p.update(over)
    return p


def test_option_found_in_title_does_not_count():
    # "sea salt" matches no goal option; that it appears in the title does not matter (the
    # original's get_option_reward has no text fallback, unlike attributes): (2 + 1 + 1) / 5
    p = product(Title="Acme Snack Bar Sea Salt")
    bd = score_purchase(GOAL, p, {"flavor name": "sea salt", "size": "12 count"}, 20.0)
    assert bd.total == pytest.approx(0.8) and bd.matched_options == ["12 count"]


def test_size_miss_not_rescued_by_bullet_points():
    # "12 count (pack of 1)" vs the goal's ("size", "12 count"): token-set ratio 76 -> no match,
    # whatever the bullets say: (2 + 1 + 1) / 5
    p = product(BulletPoints=["tasty", "12 count (pack of 1) box"])
    bd = score_purchase(GOAL, p, {"flavor name": "chocolate", "size": "12 count (pack of 1)"}, 20.0)
    assert bd.total == pytest.approx(0.8) and bd.num_option_matches == 1


def test_attribute_found_in_description():
    p = product(Attributes=["gluten free"], Description="a NON GMO bar")
    assert score_purchase(GOAL, p, dict(GOAL["goal_options"]), 20.0).total == 1.0


def test_colour_normalisation_of_the_purchase_can_hurt():
    # goal "navy" stays "navy"; purchased "navy blue" normalises to "blue" (blue precedes navy
    # in the list): ratio("navy", "blue") is 0 -> no option match: (2 + 1 + 1) / 5
    goal = dict(GOAL, goal_options={"color": "navy", "size": "12 count"})
    bd = score_purchase(goal, product(), {"color": "navy blue", "size": "12 count"}, 20.0)
    assert bd.total == pytest.approx(0.8) and bd.matched_options == ["12 count"]


def test_goal_without_options():
    goal = dict(GOAL, goal_options={})
    bd = score_purchase(goal, product(), {}, 20.0)
    # (2 + 0 + 1) / (2 + 0 + 1)
    assert bd.total == 1.0 and bd.r_option is None
    assert (bd.w_att, bd.w_option, bd.w_price) == pytest.approx((2 / 3, 0.0, 1 / 3))
    assert score_purchase(goal, product(), {}, 35.0).total == pytest.approx(2 / 3)


def test_no_price_cap_always_met():
    goal = dict(GOAL, price_upper=NO_PRICE_CAP)
    assert score_purchase(goal, product(), dict(GOAL["goal_options"]), 999.0).r_price


def test_goal_name_without_nouns_scores_title_0_2():
    # no goal nouns: title_score = 0.2 (not > 0.2); no query/category match -> r_type 0.5
    goal = dict(GOAL, name_nouns=[])
    other = {"query": "cookies", "product_category": "X › Y › Z"}
    bd = score_purchase(goal, product(**other), dict(GOAL["goal_options"]), 20.0)
    assert (bd.title_score, bd.r_type, bd.total) == (0.2, 0.5, 0.5)
    # ... a query match restores r_type 1
    bd = score_purchase(goal, product(), dict(GOAL["goal_options"]), 20.0)
    assert bd.r_type == 1.0


@pytest.fixture(scope="module")
def env() -> WebShopEnv:
    return WebShopEnv(split="test", num_products=1000, oracle_info=True)


def _to_goal_item(env: WebShopEnv, seed: int) -> dict:
    _, info = env.reset(seed=seed)
    oracle = info["oracle"]
    _, _, _, _, info = env.step(f"search[{oracle['search_query']}]")
    asin = oracle["asin"].lower()
    page = 1
    while asin not in info["clickables"]:
        assert "next >" in info["clickables"], "goal product not in the top 50"
        _, _, _, _, info = env.step("click[next >]")
        page += 1
    _, _, _, _, info = env.step(f"click[{asin}]")
    assert info["page"] == "item"
    return oracle


def test_buying_without_options_is_not_success(env):
    oracle = _to_goal_item(env, 0)
    assert oracle["goal_options"], "generated goals always name options"
    obs, reward, term, trunc, info = env.step("click[buy now]")
    assert term and not trunc
    assert 0.0 < reward < 1.0 and info["success"] is False
    assert info["score"] == pytest.approx(100 * reward) and info["reward"] == reward
    bd = info["reward_breakdown"]
    for key in (
        "r_type",
        "r_att",
        "r_option",
        "r_price",
        "matched_attributes",
        "matched_options",
        "w_att",
        "w_option",
        "w_price",
        "total",
    ):
        assert key in bd, key
    assert bd["matched_options"] == [] and bd["total"] == reward


def test_clicks_of_another_page_are_noops(env):
    _to_goal_item(env, 1)
    results_only = "click[next >]"
    obs0 = env._obs
    for action in (results_only, "search[shoes]", "click[b000000000]"):
        obs, reward, term, trunc, info = env.step(action)
        assert info["invalid_action"] and obs == obs0 and info["page"] == "item"
    env.step("click[description]")
    for action in ("click[buy now]", "click[features]"):
        _, _, term, _, info = env.step(action)
        assert info["invalid_action"] and not term and info["page"] == "description"


def test_option_click_only_on_item_page(env):
    oracle = _to_goal_item(env, 2)
    value = next(iter(oracle["goal_options"].values()))
    env.step("click[< prev]")  # back to the results
    _, _, _, _, info = env.step(f"click[{value}]")
    assert info["invalid_action"] and info["selected_options"] == {}
