"""Reward tests.

The first part ports the original's own unit tests (``tests/web-agent-site/engine/test_goal.py``
and ``test_normalize.py`` of princeton-nlp/WebShop) case by case. The second part has one test
per difference the original's code has from a naive reading of its formula (points 1-4 of the
parity work): dicts in the original's schema, expected values worked out by hand from the
original's ``get_reward``.
"""

from __future__ import annotations

from math import isclose

import pytest

from empo_gym.webshop.reward import (
    attribute_reward,
    normalize_color,
    option_reward,
    score_purchase,
    token_set_ratio,
    type_reward,
)


# --- ported: test_normalize.py ---------------------------------------------------------------
def test_normalize_color_original_suite():
    suite = [
        ("", ""),
        ("black forest", "black"),
        ("violet lavender", "lavender"),
        ("steelivy fuchsia", "fuchsia"),
        ("123alabaster", "alabaster"),
        ("webshop", "webshop"),
    ]
    for color_string, expected in suite:
        output = normalize_color(color_string)
        assert type(output) is str
        assert output == expected
    # (normalize_color_size of the same file maps catalogue-wide colours and sizes for the
    # original's analysis scripts; the reward never calls it, so it has no counterpart here)


# --- ported: test_goal.py ----------------------------------------------------------------------
def test_get_type_reward_original_cases():
    goal = {"query": "Query 1", "product_category": "a › b › c", "name": "Name 1"}
    purchased = {"query": "Query 1", "product_category": "a › b › c", "name": "Name 1"}
    result = type_reward(purchased, goal)
    assert result["r_type"] == 1.0
    assert result["query_match"] is True
    assert result["category_match"] is True
    assert result["title_score"] == 1

    purchased["query"] = "Query 2"
    assert type_reward(purchased, goal)["query_match"] is False

    for category, expected in [
        ("b › c › a", True),
        ("d › e › f", False),
        ("a › d › b", True),
        ("a › a › b", True),
        ("a › a › d", False),
    ]:
        purchased["product_category"] = category
        assert type_reward(purchased, goal)["category_match"] is expected, category


@pytest.mark.parametrize(
    ("goal_name", "purchased_name", "ours", "original"),
    [
        (
            "Mens D.O.N. Issue 2 Gca Basketball Sneakers Shoes Casual - Off White",
            "PEAK High Top Mens Basketball Shoes Lou Williams Streetball Master Breathable Non "
            "Slip Outdoor Sneakers",
            4 / 10,
            0.333,
        ),
        (
            "Saireed UL Listed 2 Prong Power Cord for JBL Bar 3.1 Bar 2.1 Channel 4K Ultra HD "
            "Soundbar Home Theater System Subwoofer",
            "BRST AC Power Cord Outlet Socket Cable Plug Lead for Panasonic SC-HT830V DVD/VCR "
            "Combo Home Theater System",
            5 / 16,
            0.3,
        ),
        (
            "Saireed UL Listed 2 Prong Power Cord for JBL Bar 3.1 Bar 2.1 Channel 4K Ultra HD "
            "Soundbar",
            "BRST AC Power Cord Outlet Socket Cable Plug Lead for Panasonic SC-HT830V DVD/VCR "
            "Combo Home Theater System",
            2 / 12,
            0.15,
        ),
    ],
)
def test_get_type_reward_original_name_cases(goal_name, purchased_name, ours, original):
    """The title scores of the original's test, through spaCy's en_core_web_sm.

    The original's expectations came from spaCy 3.3's model; the pinned 3.8 model tags a few
    words differently, so the scores move by up to 0.07 (``ours``, pinned here), on the same side
    of every r_type threshold.
    """
    goal = {"query": "q1", "product_category": "a › b › c", "name": goal_name}
    purchased = {"query": "q2", "product_category": "a › b › c", "name": purchased_name}
    score = type_reward(purchased, goal)["title_score"]
    assert isclose(score, ours, abs_tol=1e-9)
    assert abs(score - original) <= 0.07
    assert (score > 0.2) == (original > 0.2) and (score < 0.1) == (original < 0.1)


def test_get_type_reward_completely_different_names():
    goal = {"query": "q", "product_category": "a › b › c"}
    goal["name"] = "Rusticware 921ORB Kitchen and Bath Cabinet Knob"
    purchased = {
        "query": "q",
        "product_category": "a › b › c",
        "name": "Minkissy 2pcs Stainless Steel Eyebrow Tweezers Blackhead Acne Remover Portable "
        "Makeup Tweezers (Silver)",
    }
    assert type_reward(purchased, goal)["title_score"] < 0.05


def test_get_attribute_reward_original_cases():
    goal = {"attributes": ["tea tree", "essential oils", "natural ingredients"]}
    purchased = {"Attributes": ["tea tree", "essential oil", "natural ingredients"]}
    assert attribute_reward(purchased, goal["attributes"])[0] == 1
    assert len(attribute_reward(purchased, goal["attributes"])[1]) == 3

    purchased = {
        "Attributes": ["essential oil", "natural ingredients"],
        "Title": "",
        "BulletPoints": [],
        "Description": "",
    }
    r_attr, matched = attribute_reward(purchased, goal["attributes"])
    assert r_attr == 2.0 / 3.0 and len(matched) == 2

    purchased = {
        "Attributes": [],
        "Title": "",
        "BulletPoints": ["This shampoo has essential oils and smells like lemons"],
        "Description": "Best shampoo on the market, made with natural ingredients",
    }
    r_attr, matched = attribute_reward(purchased, goal["attributes"])
    assert r_attr == 2.0 / 3.0 and len(matched) == 2

    purchased = {
        "Attributes": ["tea bag", "earl gray", "lipton"],
        "Title": "English tea for breakfast",
        "BulletPoints": ["Soothing aroma", "Calming, great feeling"],
        "Description": "Best tea made by Lipton, great to pair with breakfast",
    }
    assert attribute_reward(purchased, goal["attributes"]) == (0, [])


def test_get_option_reward_original_cases():
    # the original's get_option_reward takes value lists
    goal = ["grey", "XL", "pack of 12"]
    assert option_reward(["pack of 12", "grey", "XL"], goal) == (1, goal)
    r, matched = option_reward(["pack of 12", "blue", "XL"], goal)
    assert len(matched) == 2 and r == 2.0 / 3.0
    r, matched = option_reward(["pack of 12", "powder snow", "XL"], ["cool powder snow", *goal[1:]])
    assert len(matched) == 3 and r == 1
    assert option_reward(["goal 1", "goal 2"], []) == (None, [])
    assert option_reward([], ["goal 1", "goal 2"]) == (0, [])


def test_get_reward_original_cases():
    goal = {
        "query": "Query 1",
        "product_category": "a › b › c",
        "name": "Mens D.O.N. Issue 2 Gca Basketball Sneakers Shoes Casual - Off White",
        "attributes": ["tea tree", "essential oils", "natural ingredients"],
        "goal_options": {"color": "grey", "size": "XL"},
        "price_upper": 40.00,
    }
    purchased = {
        "query": "Query 1",
        "product_category": "a › b › c",
        "name": "Mens D.O.N. Issue 2 Gca Basketball Sneakers Shoes Casual - Off White",
        "Attributes": ["tea tree", "essential oil", "natural ingredients"],
        "Title": "",
        "BulletPoints": [],
        "Description": "",
        "goal_options": {"color": "grey", "size": "XL"},
    }
    assert score_purchase(goal, purchased, purchased["goal_options"], 35).total == 1

    purchased["Attributes"] = []
    purchased["Title"] = ""
    # a string, joined character by character: only the description's attribute is found
    purchased["BulletPoints"] = "This shampoo has essential oils and smells like lemons"
    purchased["Description"] = "Best shampoo on the market, made with natural ingredients"
    total = score_purchase(goal, purchased, purchased["goal_options"], 35).total
    assert isclose(total, 2.0 / 3.0, abs_tol=1e-2)

    goal["goal_options"] = {"color": "grey", "size": "XL", "amount": "pack of 12"}
    total = score_purchase(goal, purchased, purchased["goal_options"], 35).total
    assert isclose(total, 0.5714, abs_tol=1e-2)

    goal["name"] = (
        "Saireed UL Listed 2 Prong Power Cord for JBL Bar 3.1 Bar 2.1 Channel 4K Ultra HD Soundbar"
    )
    purchased["name"] = (
        "BRST AC Power Cord Outlet Socket Cable Plug Lead for Panasonic SC-HT830V DVD/VCR Combo "
        "Home Theater System"
    )
    purchased["query"] = "Query 2"
    purchased["product_category"] = "a › d › e"
    total = score_purchase(goal, purchased, purchased["goal_options"], 35).total
    assert isclose(total, 0.2857, abs_tol=1e-2)


# --- points 1-4: where the original differs from a naive reading ---------------------------------
GOAL = {
    "asin": "B000000001",
    "query": "t-shirts",
    "product_category": "Clothing › Men › Shirts",
    "name": "Acme Cotton Tee",
    "attributes": ["machine wash"],
    "goal_options": {"size": "x-large"},
    "price_upper": 30.0,
}
PRODUCT = {
    "asin": "B000000001",
    "query": "t-shirts",
    "product_category": "Clothing › Men › Shirts",
    "name": "Acme Cotton Tee",
    "Title": "A Cotton Tee, Small",
    "BulletPoints": ["Machine wash cold", "Black and white"],
    "Description": "A soft tee.",
    "Attributes": ["machine wash"],
}


def test_point1_options_have_no_text_fallback():
    # "a" and "small" appear in the title, "black" in the bullets; the original credits options
    # only by fuzzy match against the goal options: 'a' vs ('size', 'x-large') -> no.
    # R = (1 attribute + 0 options + 1 price) / (1 + 1 + 1)
    for chosen in ({"size": "a"}, {"size": "small"}, {"color": "black"}):
        bd = score_purchase(GOAL, PRODUCT, chosen, 20.0)
        assert bd.total == pytest.approx(2 / 3), chosen
        assert bd.num_option_matches == 0


def test_point2_numerator_counts_goal_options():
    # human goal (a list): "black" matched (twice among the purchased options), "large" not:
    # R = (1 + 1 + 1) / (1 + 2 + 1) = 0.75; counting purchased matches would give 1.0
    goal = dict(GOAL, goal_options=["black", "large"])
    bd = score_purchase(goal, PRODUCT, {"color": "black", "trim": "black"}, 20.0)
    assert bd.total == pytest.approx(0.75) and bd.matched_options == ["black"]
    # a goal without options credits no purchased option: R = (1 + 0 + 1) / (1 + 0 + 1) = 1
    goal = dict(GOAL, goal_options=[])
    bd = score_purchase(goal, PRODUCT, {"color": "black", "size": "large"}, 20.0)
    assert bd.total == 1.0 and bd.r_option is None and bd.num_option_matches == 0


def test_point3_size_is_matched_fuzzily():
    # 'medium' vs str(('size', 'medium long')) -> tokens {medium} within {size, medium, long}:
    # token-set ratio 100 > 85, matched although the values differ: R = (1 + 1 + 1) / 3
    goal = dict(GOAL, goal_options={"size": "medium long"})
    assert score_purchase(goal, PRODUCT, {"size": "medium"}, 20.0).total == 1.0
    # ... and '12 count (pack of 1)' vs ('size', '12 count'): best ratio 76 -> not matched
    goal = dict(GOAL, goal_options={"size": "12 count"})
    assert token_set_ratio("12 count (pack of 1)", ("size", "12 count")) == 76
    assert score_purchase(goal, PRODUCT, {"size": "12 count (pack of 1)"}, 20.0).total == (
        pytest.approx(2 / 3)
    )


def test_point4_tuple_quirk_original_and_corrected():
    # the goal product with exactly the goal options: 'white wash' normalises to 'ash' (a
    # substring), the goal pair ('color', 'white wash') holds no colour word and stays a pair,
    # and "ash" vs "color wash white" scores round(100 * 2 * 3 / 19) = 32 -> the colour fails:
    # R = (2 + 1 + 1) / (2 + 2 + 1) = 0.8 under the original rule, 1 when corrected
    goal = dict(
        GOAL,
        attributes=["machine wash", "cotton"],
        goal_options={"color": "white wash", "size": "x-large"},
    )
    chosen = {"color": "white wash", "size": "x-large"}
    assert token_set_ratio("ash", ("color", "white wash")) == 32
    original = score_purchase(goal, PRODUCT, chosen, 20.0)
    assert original.total == pytest.approx(0.8) and original.matched_options == ["x-large"]
    assert original.reward_rule == "original"
    corrected = score_purchase(goal, PRODUCT, chosen, 20.0, rule="corrected")
    assert corrected.total == 1.0 and corrected.reward_rule == "corrected"
    # a pair that holds an exact colour word normalises to it: ('color', 'black') -> 'black',
    # which 'black forest' (-> 'black') matches under both rules: R = (2 + 2 + 1) / 5
    goal = dict(goal, goal_options={"color": "black", "size": "x-large"})
    for rule in ("original", "corrected"):
        chosen = {"color": "black forest", "size": "x-large"}
        assert score_purchase(goal, PRODUCT, chosen, 20.0, rule=rule).total == 1.0
    # human goals (lists) have no pairs: both rules agree, 'standard' -> 'tan' on both sides
    goal = dict(goal, goal_options=["standard"])
    for rule in ("original", "corrected"):
        assert score_purchase(goal, PRODUCT, {"style": "standard"}, 20.0, rule=rule).total == 1.0
    with pytest.raises(ValueError, match="unknown reward rule 'fixed'"):
        score_purchase(goal, PRODUCT, {}, 20.0, rule="fixed")


def test_thefuzz_019_semantics():
    # what the pinned thefuzz 0.19.0 does that later versions do not: keep '_' and characters
    # above U+00FF, drop only U+0080..U+00FF, and score with difflib
    assert token_set_ratio("snack_bar", "snack bar") < 100
    assert token_set_ratio("café", "caf") == 100
    assert token_set_ratio(None, "x") == 0  # str(None) = "None" shares nothing with "x"
