"""Reward tests: every expected value is worked out by hand from the original formula

R = r_type * (matched attributes + matched options + [price <= cap]) / (#attrs + #options + 1).
"""

from __future__ import annotations

import pytest

from empo_gym.webshop.reward import normalize_color, score_purchase, token_set_ratio

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


GOOD = {"flavor name": "chocolate", "size": "12 count"}


def test_everything_matches_gives_one():
    bd = score_purchase(GOAL, product(), GOOD, 20.0)
    # (2 attrs + 2 options + 1 price) / (2 + 2 + 1) * 1
    assert bd.total == 1.0 and bd.r_type == 1.0 and bd.r_price
    assert bd.matched_attributes == ["gluten free", "non gmo"]
    assert (bd.w_att, bd.w_option, bd.w_price) == (0.4, 0.4, 0.2)


def test_attribute_term():
    # only "gluten free" in the attribute list; "non gmo" nowhere -> (1 + 2 + 1) / 5
    bd = score_purchase(GOAL, product(Attributes=["gluten free"]), GOOD, 20.0)
    assert bd.total == pytest.approx(0.8) and bd.num_attr_matches == 1 and bd.r_att == 0.5
    # fuzzy: "Non-GMO" token-set ratio with "non gmo" is 100 > 85 -> matched
    bd = score_purchase(GOAL, product(Attributes=["gluten free", "Non-GMO"]), GOOD, 20.0)
    assert bd.total == 1.0
    # text fallback: attribute list empty, "gluten free" in the title, "non gmo" in the bullets
    p = product(Attributes=[], Title="Acme Gluten Free Snack Bar", BulletPoints=["NON GMO oats"])
    assert score_purchase(GOAL, p, GOOD, 20.0).total == 1.0
    # neither: (0 + 2 + 1) / 5
    assert score_purchase(GOAL, product(Attributes=["vegan"]), GOOD, 20.0).total == pytest.approx(
        0.6
    )


def test_option_term_and_exact_size():
    # wrong flavour: (2 + 1 + 1) / 5
    bd = score_purchase(GOAL, product(), {"flavor name": "sea salt", "size": "12 count"}, 20.0)
    assert bd.total == pytest.approx(0.8) and bd.matched_options == ["12 count"]
    # option "size" is matched exactly: "12 count (pack of 1)" != "12 count" -> (2 + 1 + 1) / 5
    bd = score_purchase(
        GOAL, product(), {"flavor name": "chocolate", "size": "12 count (pack of 1)"}, 20.0
    )
    assert bd.total == pytest.approx(0.8)
    # ... while other option names match fuzzily (token-set ratio 100 > 85)
    goal = dict(GOAL, goal_options={"flavor name": "chocolate", "count": "12 count"})
    bd = score_purchase(
        goal, product(), {"flavor name": "chocolate", "count": "12 count (pack of 1)"}, 20.0
    )
    assert bd.total == 1.0
    # no options chosen: (2 + 0 + 1) / 5; r_option = 0 / 2
    bd = score_purchase(GOAL, product(), {}, 20.0)
    assert bd.total == pytest.approx(0.6) and bd.r_option == 0.0


def test_option_colour_normalisation():
    assert normalize_color("black forest") == "black"
    assert normalize_color("navy blue") == "blue"  # "blue" precedes "navy" in COLOR_SET
    assert token_set_ratio("black forest", "jet black") <= 85  # would not match unnormalised
    goal = dict(GOAL, attributes=["gluten free"], goal_options={"color": "black forest"})
    p = product(Attributes=["gluten free"])
    # both normalise to "black": (1 + 1 + 1) / 3
    assert score_purchase(goal, p, {"color": "jet black"}, 20.0).total == 1.0
    # "royal blue" and "navy blue" both normalise to "blue" (the original's quirk)
    goal2 = dict(goal, goal_options={"color": "navy blue"})
    assert score_purchase(goal2, p, {"color": "royal blue"}, 20.0).total == 1.0
    # "white" vs "black": (1 + 0 + 1) / 3
    assert score_purchase(goal, p, {"color": "white"}, 20.0).total == pytest.approx(2 / 3)


def test_price_term():
    # 35 > 30: (2 + 2 + 0) / 5
    bd = score_purchase(GOAL, product(), GOOD, 35.0)
    assert bd.total == pytest.approx(0.8) and not bd.r_price
    assert score_purchase(GOAL, product(), GOOD, 30.0).total == 1.0  # <= is inclusive


def test_type_term():
    other = {"query": "cookies", "product_category": "Grocery › Sweets › Cookies"}
    # no query match, one shared category level, nouns 1/2 = 0.5 > 0.2 -> r_type 1
    bd = score_purchase(GOAL, product(**other, name_nouns=["bar"]), GOOD, 20.0)
    assert (bd.r_type, bd.title_score, bd.category_match, bd.query_match) == (
        1.0,
        0.5,
        False,
        False,
    )
    # nouns 1/5 = 0.2 (not > 0.2), no query / category match -> r_type 0.5 -> R = 0.5
    goal5 = dict(GOAL, name_nouns=["a", "b", "c", "d", "bar"])
    bd = score_purchase(goal5, product(**other, name_nouns=["bar"]), GOOD, 20.0)
    assert bd.r_type == 0.5 and bd.total == 0.5
    # ... but a query match restores r_type 1
    bd = score_purchase(goal5, product(name_nouns=["bar"]), GOOD, 20.0)
    assert bd.r_type == 1.0
    # nouns 1/11 < 0.1 -> r_type 0.1 even with a query match -> R = 0.1
    goal11 = dict(GOAL, name_nouns=[*"abcdefghij", "bar"])
    bd = score_purchase(goal11, product(name_nouns=["bar"]), GOOD, 20.0)
    assert bd.r_type == 0.1 and bd.total == pytest.approx(0.1)
    # no shared noun -> r_type 0 -> R = 0
    bd = score_purchase(GOAL, product(name_nouns=["lipstick"]), GOOD, 20.0)
    assert bd.r_type == 0.0 and bd.total == 0.0
    # two category levels shared (order ignored) + 1/2 nouns
    p = product(query="x", product_category="Snacks › Grocery › Other", name_nouns=["bar"])
    assert score_purchase(GOAL, p, GOOD, 20.0).category_match


def test_combined_hand_example():
    # r_type 0.5 (nouns 1/5, no query/category), 1 of 2 attrs, 1 of 2 options, price over:
    # 0.5 * (1 + 1 + 0) / 5 = 0.2
    goal5 = dict(GOAL, name_nouns=["a", "b", "c", "d", "bar"])
    p = product(
        query="q", product_category="X › Y › Z", name_nouns=["bar"], Attributes=["gluten free"]
    )
    bd = score_purchase(goal5, p, {"flavor name": "chocolate", "size": "24 count"}, 31.0)
    assert bd.total == pytest.approx(0.2)
    assert bd.to_dict()["matched_options"] == ["chocolate"]


def test_list_goal_options_and_fallback_nouns():
    # human goals give options as a list; names without name_nouns use spaCy or the fallback
    goal = {k: v for k, v in GOAL.items() if k != "name_nouns"}
    goal["goal_options"] = ["chocolate"]
    p = {k: v for k, v in product().items() if k != "name_nouns"}
    bd = score_purchase(goal, p, {"flavor name": "chocolate", "size": "24 count"}, 20.0)
    # (2 + 1 + 1) / (2 + 1 + 1): only "chocolate" matches but there is one goal option
    assert bd.total == 1.0 and bd.noun_method != "catalogue"
    # more purchased matches than goal options: the original exceeds 1, we clip
    bd = score_purchase(goal, p, {"flavor name": "chocolate", "size": "chocolate"}, 20.0)
    assert bd.raw_total == pytest.approx(5 / 4) and bd.total == 1.0
