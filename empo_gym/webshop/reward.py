"""WebShop's purchase reward, reproduced from the original ``web_agent_site/engine/goal.py``.

``R = r_type * (matched goal attributes + matched goal options + [price <= price_upper])
/ (number of goal attributes + number of goal options + 1)``

* a goal attribute is matched when its fuzzy token-set ratio against one of the product's
  attributes is > 85, or when it appears in the product's title, bullet points or description;
* a goal option is matched when, after colour normalisation of both sides, its fuzzy token-set
  ratio with one of the purchased option values is > 85 (options have no text fallback, and
  each goal option counts at most once, so R never exceeds 1);
* ``r_type`` is 1 when the product's query equals the goal's, or >= 2 category-path levels are
  shared, or the noun overlap of product name and goal name is > 0.2; 0.5 otherwise; 0.1 if
  the overlap is < 0.1; 0 if it is 0.

Fuzzy ratios are those of ``thefuzz`` 0.19.0, the version the original pins (pure-Python
``difflib`` matching; see :func:`token_set_ratio`).

**Reward rules.** ``reward="original"`` (the default) reproduces the original exactly, including
its *tuple quirk*: for synthetic goals (options given as a dict) the original iterates
``goal_options.items()``, so each goal option it compares is the pair ``(name, value)``.
Colour normalisation of a pair only fires when one of its two elements *is* a colour word, and
the fuzzy comparison runs against ``str((name, value))``. So a purchase whose value normalises to
a colour it merely contains ("standard" -> "tan", "washed" -> "ash") fails to match the very same
goal value, and buying the goal product with exactly the goal options can score below 1. Every
published WebShop number carries this effect. ``reward="corrected"`` compares the goal *values*
(what the original intended); human goals (options given as a list) score the same under both.

**Nouns.** ``r_type`` compares the nouns of the two names (:mod:`empo_gym.webshop.nouns`:
spaCy ``en_core_web_sm`` tags, as the original). A product or goal dict carrying ``name_nouns``
(the shop computes them once per product and caches them) uses them; otherwise they are
extracted here. The method used is recorded in the breakdown's ``noun_method``.

Example:
    >>> goal = {"query": "snack bars", "product_category": "Food › Snacks › Bars",
    ...         "name": "Acme Snack Bar", "name_nouns": ["snack", "bar"],
    ...         "attributes": ["gluten free"], "goal_options": {"flavor name": "chocolate"},
    ...         "price_upper": 30.0}
    >>> product = {"query": "snack bars", "product_category": "Food › Snacks › Bars",
    ...            "name": "Acme Snack Bar", "name_nouns": ["snack", "bar"],
    ...            "Attributes": ["gluten free"], "Title": "Acme Snack Bar",
    ...            "BulletPoints": [], "Description": ""}
    >>> score_purchase(goal, product, {"flavor name": "chocolate"}, 12.5).total
    1.0
    >>> score_purchase(goal, product, {"flavor name": "sea salt"}, 35.0).total
    0.3333333333333333
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from empo_gym.webshop.nouns import extract_nouns, noun_method

#: The reward rules: the original's (default, quirk included) and the corrected one.
REWARD_RULES = ("original", "corrected")
DEFAULT_REWARD_RULE = "original"
#: Fuzzy token-set ratio a match must exceed.
FUZZY_THRESHOLD = 85

#: The original's ``normalize.py`` colour list; order matters (first hit wins).
COLOR_SET = (
    "alabaster",
    "apricot",
    "aqua",
    "ash",
    "asphalt",
    "azure",
    "banana",
    "beige",
    "black",
    "blue",
    "blush",
    "bordeaux",
    "bronze",
    "brown",
    "burgundy",
    "camel",
    "camo",
    "caramel",
    "champagne",
    "charcoal",
    "cheetah",
    "chestnut",
    "chocolate",
    "christmas",
    "coffee",
    "cognac",
    "copper",
    "coral",
    "cranberry",
    "cream",
    "crystal",
    "dark",
    "denim",
    "eggplant",
    "elephant",
    "espresso",
    "fuchsia",
    "gold",
    "granite",
    "grape",
    "graphite",
    "grass",
    "gray",
    "green",
    "grey",
    "heather",
    "indigo",
    "ivory",
    "ivy",
    "khaki",
    "lavender",
    "lemon",
    "leopard",
    "light",
    "lilac",
    "lime",
    "magenta",
    "maroon",
    "mauve",
    "merlot",
    "midnight",
    "mint",
    "mocha",
    "multicolor",
    "mushroom",
    "mustard",
    "natural",
    "navy",
    "nude",
    "olive",
    "orange",
    "peach",
    "pewter",
    "pink",
    "plum",
    "purple",
    "rainbow",
    "red",
    "rose",
    "royal",
    "rust",
    "sand",
    "sapphire",
    "seashell",
    "silver",
    "skull",
    "slate",
    "steel",
    "stone",
    "stonewash",
    "sunflower",
    "tan",
    "taupe",
    "teal",
    "tiger",
    "turquoise",
    "violet",
    "walnut",
    "wheat",
    "white",
    "wine",
    "yellow",
)


def check_reward_rule(rule: str) -> str:
    """Return ``rule`` if it is one of :data:`REWARD_RULES`, else raise a ValueError.

    Example:
        >>> check_reward_rule("corrected")
        'corrected'
    """
    if rule not in REWARD_RULES:
        raise ValueError(
            f"unknown reward rule {rule!r}; expected 'original' (the published WebShop reward, "
            "quirk included) or 'corrected'"
        )
    return rule


def normalize_color(color_string: str) -> str:
    """Return the first colour of :data:`COLOR_SET` contained in ``color_string``, else it.

    Example:
        >>> normalize_color("black forest"), normalize_color("violet lavender")
        ('black', 'lavender')
        >>> normalize_color("standard")  # "tan" is a substring
        'tan'
        >>> normalize_color("x-large")
        'x-large'
    """
    for color in COLOR_SET:
        if color in color_string:
            return color
    return color_string


# --- thefuzz 0.19.0 ------------------------------------------------------------------------
# The original pins thefuzz==0.19.0, whose scores differ from later (rapidfuzz-based) versions
# near the threshold: it keeps "_" and characters above U+00FF, and scores with difflib.
_LATIN1_HIGH = dict.fromkeys(range(128, 256))
_NON_WORD = re.compile(r"(?ui)\W")


def full_process(s: Any) -> str:
    """thefuzz 0.19.0's ``full_process(s, force_ascii=True)``: non-strings go through ``str``,
    characters 128-255 are dropped, non-word characters become blanks, lower-cased, stripped.

    Example:
        >>> full_process("Long-Lasting!"), full_process(("size", "X-Large"))
        ('long lasting', 'size    x large')
    """
    s = s if type(s) is str else str(s)
    return _NON_WORD.sub(" ", s.translate(_LATIN1_HIGH)).lower().strip()


def _ratio(a: str, b: str) -> int:
    if a == b:
        return 100
    if not a or not b:
        return 0
    return int(round(100 * difflib.SequenceMatcher(None, a, b).ratio()))


@functools.lru_cache(maxsize=65_536)
def _token_set_processed(p1: str, p2: str) -> int:
    if not p1 or not p2:
        return 0
    t1, t2 = set(p1.split()), set(p2.split())
    sect = " ".join(sorted(t1 & t2))
    c12 = (sect + " " + " ".join(sorted(t1 - t2))).strip()
    c21 = (sect + " " + " ".join(sorted(t2 - t1))).strip()
    sect = sect.strip()
    return max(_ratio(sect, c12), _ratio(sect, c21), _ratio(c12, c21))


def token_set_ratio(a: Any, b: Any) -> int:
    """thefuzz 0.19.0's ``fuzz.token_set_ratio`` (what the original calls).

    Example:
        >>> token_set_ratio("Long-Lasting", "long lasting"), token_set_ratio("ça", "")
        (100, 0)
        >>> token_set_ratio("x-large", ("size", "x-large"))  # a subset scores 100
        100
    """
    return _token_set_processed(full_process(a), full_process(b))


# --- nouns ---------------------------------------------------------------------------------
def _nouns(item: Mapping[str, Any], extractor: Callable[[str], Sequence[str]] | None):
    if extractor is not None:
        return list(extractor(item["name"])), "custom"
    if item.get("name_nouns") is not None:
        return list(item["name_nouns"]), item.get("noun_method", "given")
    return list(extract_nouns(item["name"])), noun_method()


# --- breakdown -----------------------------------------------------------------------------
@dataclass(frozen=True)
class RewardBreakdown:
    """The reward of one purchase and every part of it (the original's ``verbose`` info).

    Attributes:
        total: The reward in [0, 1].
        r_type: Type factor (1, 0.5, 0.1 or 0).
        query_match: Product query equals the goal's.
        category_match: At least two category-path levels are shared.
        title_score: Fraction of the goal name's nouns found in the product name's nouns.
        r_att: Fraction of goal attributes matched.
        num_attr_matches: Number of goal attributes matched.
        matched_attributes: The goal attributes that matched.
        r_option: Fraction of goal options matched (None when the goal has no options).
        num_option_matches: Number of goal options matched.
        matched_options: The goal option values that matched.
        r_price: Price at most ``price_upper``.
        w_att: Weight of the attribute part.
        w_option: Weight of the option part.
        w_price: Weight of the price part.
        noun_method: Which noun extractor produced the nouns.
        reward_rule: ``"original"`` or ``"corrected"`` (see the module docstring).
    """

    total: float
    r_type: float
    query_match: bool
    category_match: bool
    title_score: float
    r_att: float
    num_attr_matches: int
    matched_attributes: list[str] = field(default_factory=list)
    r_option: float | None = None
    num_option_matches: int = 0
    matched_options: list[str] = field(default_factory=list)
    r_price: bool = False
    w_att: float = 0.0
    w_option: float = 0.0
    w_price: float = 0.0
    noun_method: str = "given"
    reward_rule: str = DEFAULT_REWARD_RULE

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of every field."""
        return asdict(self)


def type_reward(
    product: Mapping[str, Any],
    goal: Mapping[str, Any],
    nouns: Callable[[str], Sequence[str]] | None = None,
) -> dict[str, Any]:
    """The type factor ``r_type`` with its parts (``query_match``, ``category_match``, ...).

    Example:
        >>> p = {"query": "q1", "product_category": "A › B › C", "name": "x", "name_nouns": ["bar"]}
        >>> g = {"query": "q2", "product_category": "A › D › E", "name": "y",
        ...      "name_nouns": ["snack", "bar"]}
        >>> type_reward(p, g)["r_type"], type_reward(p, g)["title_score"]
        (1.0, 0.5)
    """
    query_match = product["query"] == goal["query"]
    p_cat = {x.strip() for x in product["product_category"].split("›")}
    g_cat = {x.strip() for x in goal["product_category"].split("›")}
    category_match = len(p_cat & g_cat) >= 2
    p_nouns, method = _nouns(product, nouns)
    g_nouns, g_method = _nouns(goal, nouns)
    if method != g_method:  # the two sides came from different extractors: redo both here
        p_nouns, g_nouns = list(extract_nouns(product["name"])), list(extract_nouns(goal["name"]))
        method = noun_method()
    title_score = 0.2 if not g_nouns else len(set(p_nouns) & set(g_nouns)) / len(g_nouns)
    r_type = 1.0
    if not (query_match or category_match or title_score > 0.2):
        r_type = 0.5
    if title_score < 0.1:
        r_type = 0.1
    if title_score == 0.0:
        r_type = 0.0
    return {
        "r_type": r_type,
        "query_match": query_match,
        "category_match": category_match,
        "title_score": title_score,
        "noun_method": method,
    }


def attribute_reward(
    product: Mapping[str, Any], goal_attributes: Sequence[str]
) -> tuple[float, list[str]]:
    """Fraction of goal attributes the product has, and which ones.

    Example:
        >>> p = {"Attributes": ["long-lasting"], "Title": "Gluten Free Bar",
        ...      "BulletPoints": [], "Description": ""}
        >>> attribute_reward(p, ["long lasting", "gluten free", "vegan"])
        (0.6666666666666666, ['long lasting', 'gluten free'])
    """
    matched = []
    texts: tuple[str, str, str] | None = None
    for g_attr in goal_attributes:
        if any(
            token_set_ratio(p_attr, g_attr) > FUZZY_THRESHOLD for p_attr in product["Attributes"]
        ):
            matched.append(g_attr)
            continue
        if texts is None:
            # a string of bullets is joined character by character, as the original does
            texts = (
                product["Title"].lower(),
                " ".join(product["BulletPoints"]).lower(),
                product["Description"].lower(),
            )
        if any(g_attr in t for t in texts):
            matched.append(g_attr)
    return (len(matched) / len(goal_attributes) if goal_attributes else 0.0), matched


def _original_goal_option(item: tuple[str, str]) -> str | tuple[str, str]:
    """``normalize_color`` applied to a ``(name, value)`` pair, as the original does: ``in`` on
    a tuple tests its elements for equality, so only a pair holding an exact colour word maps."""
    for color in COLOR_SET:
        if color in item:
            return color
    return item


def option_reward(
    purchased_options: Mapping[str, str] | Sequence[str],
    goal_options: Mapping[str, str] | Sequence[str],
    rule: str = DEFAULT_REWARD_RULE,
) -> tuple[float | None, list[str]]:
    """Fraction of goal options matched by a purchased option, and which goal values matched.

    Args:
        purchased_options: The chosen options (``{name: value}``, or the values).
        goal_options: The goal's options: a dict (synthetic goals) or a list (human goals).
        rule: ``"original"`` compares dict goals as ``(name, value)`` pairs (the quirk);
            ``"corrected"`` compares their values.

    Example:
        >>> option_reward({"color": "jet black", "size": "small"}, ["black forest", "large"])
        (0.5, ['black forest'])
        >>> option_reward({"style": "standard"}, {"style": "standard"}, "original")
        (0.0, [])
        >>> option_reward({"style": "standard"}, {"style": "standard"}, "corrected")
        (1.0, ['standard'])
    """
    check_reward_rule(rule)
    values = (
        list(purchased_options.values())
        if isinstance(purchased_options, Mapping)
        else list(purchased_options)
    )
    p_norm = [normalize_color(v) for v in values]
    if isinstance(goal_options, Mapping):
        goal_values = list(goal_options.values())
        if rule == "original":
            g_norm: list[Any] = [_original_goal_option(it) for it in goal_options.items()]
        else:
            g_norm = [normalize_color(v) for v in goal_values]
    else:
        goal_values = list(goal_options)
        g_norm = [normalize_color(v) for v in goal_values]
    matched = [
        value
        for value, g in zip(goal_values, g_norm, strict=True)
        if any(token_set_ratio(p, g) > FUZZY_THRESHOLD for p in p_norm)
    ]
    return (len(matched) / len(goal_values) if goal_values else None), matched


def score_purchase(
    goal: Mapping[str, Any],
    product: Mapping[str, Any],
    options: Mapping[str, str],
    price: float,
    *,
    rule: str = DEFAULT_REWARD_RULE,
    nouns: Callable[[str], Sequence[str]] | None = None,
) -> RewardBreakdown:
    """Score buying ``product`` with ``options`` at ``price`` against ``goal``.

    Args:
        goal: WebShop goal dict: ``query``, ``product_category``, ``name``, ``attributes``,
            ``goal_options`` (dict name -> value, or a list of values), ``price_upper``, and
            optionally ``name_nouns``.
        product: WebShop product dict: ``query``, ``product_category``, ``name``,
            ``Attributes``, ``Title``, ``BulletPoints``, ``Description``, optionally
            ``name_nouns``.
        options: The chosen options, ``{option name: value}``.
        price: The price paid.
        rule: ``"original"`` (default) or ``"corrected"``; see the module docstring.
        nouns: Optional noun extractor ``name -> nouns`` overriding the default.

    Returns:
        The :class:`RewardBreakdown`; ``.total`` is the reward.
    """
    check_reward_rule(rule)
    goal_opts = goal["goal_options"]
    attrs = list(goal["attributes"])
    t = type_reward(product, goal, nouns)
    r_att, matched_attrs = attribute_reward(product, attrs)
    r_option, matched_opts = option_reward(options, goal_opts, rule)
    r_price = bool(price <= float(goal["price_upper"]))
    denom = len(attrs) + len(goal_opts) + 1
    total = (len(matched_attrs) + len(matched_opts) + int(r_price)) / denom * t["r_type"]
    return RewardBreakdown(
        total=total,
        r_type=t["r_type"],
        query_match=t["query_match"],
        category_match=t["category_match"],
        title_score=t["title_score"],
        r_att=r_att,
        num_attr_matches=len(matched_attrs),
        matched_attributes=matched_attrs,
        r_option=r_option,
        num_option_matches=len(matched_opts),
        matched_options=matched_opts,
        r_price=r_price,
        w_att=len(attrs) / denom,
        w_option=len(goal_opts) / denom,
        w_price=1 / denom,
        noun_method=t["noun_method"],
        reward_rule=rule,
    )
