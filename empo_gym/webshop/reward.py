"""WebShop's purchase reward, reproduced from the original ``web_agent_site/engine/goal.py``.

``R = r_type * (matched attributes + matched options + [price <= price_upper])
/ (number of goal attributes + number of goal options + 1)``

* an attribute is matched when its fuzzy token-set ratio against one of the product's
  attributes is > 85, or when it appears in the title, the bullet points or the description;
* a purchased option is matched when (after colour normalisation of both sides) it equals a goal
  option (option name ``size``: exact) or its fuzzy token-set ratio with one is > 85, or when it
  appears in the title, the bullet points or the description;
* ``r_type`` is 1 when the product's query equals the goal's, or >= 2 category-path levels are
  shared, or the noun overlap of product name and goal name is > 0.2; 0.5 otherwise; 0.1 if
  the overlap is < 0.1; 0 if it is 0.

The one departure from the original: it can exceed 1 when more options are purchased than the
goal names (possible with human goals only); :attr:`RewardBreakdown.total` is clipped to 1 and
the unclipped value is kept in :attr:`RewardBreakdown.raw_total`.

Noun extraction ("product-type nouns" of a name): a goal or product that carries a
``name_nouns`` list (the generated catalogue knows its own nouns) uses it (method
``"catalogue"``); otherwise spaCy's noun / proper-noun tags when spaCy and an English model are
installed (``"spacy:<model>"``), else a documented fallback (``"fallback:content-words"``:
lower-cased alphabetic tokens of 2+ letters that are not stop words or adjectives from a short
list). Which one ran is recorded in the breakdown's ``noun_method``.

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

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from rapidfuzz import fuzz
from rapidfuzz.utils import default_process

#: Option names matched exactly instead of fuzzily (the original's ``EXACT_MATCH_OPTS``).
EXACT_MATCH_OPTS = ("size",)
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


def normalize_color(color_string: str) -> str:
    """Return the first colour of :data:`COLOR_SET` contained in ``color_string``, else it.

    Example:
        >>> normalize_color("black forest"), normalize_color("violet lavender")
        ('black', 'lavender')
        >>> normalize_color("x-large")
        'x-large'
    """
    for color in COLOR_SET:
        if color in color_string:
            return color
    return color_string


def token_set_ratio(a: str, b: str) -> int:
    """thefuzz's ``fuzz.token_set_ratio`` (what the original calls), computed with rapidfuzz.

    thefuzz drops non-ASCII characters, lower-cases and strips punctuation, returns 0 when a
    side is empty after that, and rounds the ratio to an int.

    Example:
        >>> token_set_ratio("Long-Lasting", "long lasting"), token_set_ratio("ça", "")
        (100, 0)
    """
    a = default_process(a.encode("ascii", "ignore").decode())
    b = default_process(b.encode("ascii", "ignore").decode())
    if not a or not b:
        return 0
    return int(round(fuzz.token_set_ratio(a, b)))


# --- nouns ---------------------------------------------------------------------------------
_WORD = re.compile(r"[a-z]{2,}")
_FALLBACK_WORDS = (
    "a an and are as at be but by for if in into is it no not of on or such that the their "
    "then there these they this to was will with from your you our new pack count set size "
    "inch ounce oz fl lb pound free premium natural organic best great high low long short "
    "soft small large medium extra super ultra mini big light dark black white red blue green "
    "women men womens mens kids unisex"
)
_FALLBACK_STOP = frozenset(_FALLBACK_WORDS.split())


def fallback_nouns(name: str) -> list[str]:
    """Content words of ``name``: the documented stand-in for spaCy's noun tags.

    Example:
        >>> fallback_nouns("Acme Organic Snack Bar, 12 Count")
        ['acme', 'snack', 'bar']
    """
    return [t for t in _WORD.findall(name.lower()) if t not in _FALLBACK_STOP]


@functools.lru_cache(maxsize=1)
def _spacy_model() -> tuple[Any, str] | None:
    try:
        import spacy  # type: ignore[import-not-found]
    except Exception:  # noqa: BLE001  (optional dependency: any import failure means absent)
        return None
    for model in ("en_core_web_lg", "en_core_web_md", "en_core_web_sm"):
        try:
            return spacy.load(model, disable=["parser", "ner", "lemmatizer"]), model
        except Exception:  # noqa: BLE001,S112
            continue
    return None


def default_noun_method() -> str:
    """The noun extractor used for names without ``name_nouns``: spaCy if present, else fallback.

    Example:
        >>> m = default_noun_method()
        >>> m == "fallback:content-words" or m.startswith("spacy:")
        True
    """
    sp = _spacy_model()
    return f"spacy:{sp[1]}" if sp else "fallback:content-words"


@functools.lru_cache(maxsize=200_000)
def extract_nouns(name: str) -> tuple[str, ...]:
    """Lower-cased nouns of a product name (spaCy NOUN/PROPN, or :func:`fallback_nouns`).

    Example:
        >>> "bar" in extract_nouns("Acme Snack Bar")
        True
    """
    sp = _spacy_model()
    if sp is None:
        return tuple(fallback_nouns(name))
    return tuple(t.text.lower() for t in sp[0](name) if t.pos_ in ("PNOUN", "NOUN", "PROPN"))


def _nouns(item: Mapping[str, Any], extractor: Callable[[str], Sequence[str]] | None):
    if extractor is not None:
        return list(extractor(item["name"])), "custom"
    if item.get("name_nouns") is not None:
        return list(item["name_nouns"]), "catalogue"
    return list(extract_nouns(item["name"])), default_noun_method()


# --- breakdown -----------------------------------------------------------------------------
@dataclass(frozen=True)
class RewardBreakdown:
    """The reward of one purchase and every part of it (the original's ``verbose`` info).

    Attributes:
        total: The reward in [0, 1].
        raw_total: The unclipped reward (differs from ``total`` only in the rare case above).
        r_type: Type factor (1, 0.5, 0.1 or 0).
        query_match: Product query equals the goal's.
        category_match: At least two category-path levels are shared.
        title_score: Fraction of the goal name's nouns found in the product name's nouns.
        r_att: Fraction of goal attributes matched.
        num_attr_matches: Number of goal attributes matched.
        matched_attributes: The goal attributes that matched.
        r_option: Fraction of goal options matched (None when the goal has no options).
        num_option_matches: Number of purchased options that matched.
        matched_options: The purchased option values that matched.
        r_price: Price at most ``price_upper``.
        w_att: Weight of the attribute part.
        w_option: Weight of the option part.
        w_price: Weight of the price part.
        noun_method: Which noun extractor ran (``catalogue``, ``spacy:<model>``, fallback).
    """

    total: float
    raw_total: float
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
    noun_method: str = "catalogue"

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
    if method != g_method:  # one side lacked catalogue nouns: extract both the same way
        p_nouns, g_nouns = list(extract_nouns(product["name"])), list(extract_nouns(goal["name"]))
        method = default_noun_method()
    p_set = {t.lower() for t in p_nouns}
    g_list = [t.lower() for t in g_nouns]
    title_score = 0.2 if not g_list else len(p_set & set(g_list)) / len(g_list)
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


def _text_fields(product: Mapping[str, Any]) -> tuple[str, str, str]:
    return (
        product["Title"].lower(),
        " ".join(product["BulletPoints"]).lower(),
        product["Description"].lower(),
    )


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
    texts = _text_fields(product)
    matched = []
    for g_attr in goal_attributes:
        hit = any(
            token_set_ratio(p_attr, g_attr) > FUZZY_THRESHOLD for p_attr in product["Attributes"]
        )
        if hit or any(g_attr in t for t in texts):
            matched.append(g_attr)
    return (len(matched) / len(goal_attributes) if goal_attributes else 0.0), matched


def option_reward(
    product: Mapping[str, Any],
    goal_options: Sequence[str],
    purchased_options: Mapping[str, str],
) -> tuple[float | None, list[str]]:
    """Options part: purchased option values that match a goal option (colour-normalised).

    Example:
        >>> p = {"Title": "Tee", "BulletPoints": [], "Description": ""}
        >>> option_reward(p, ["black forest", "large"], {"color": "jet black", "size": "x-large"})
        (0.5, ['jet black'])
    """
    texts = _text_fields(product)
    goals = [normalize_color(o) for o in goal_options]
    matched = []
    for key, raw_value in purchased_options.items():
        value = normalize_color(raw_value)
        if key.lower() in EXACT_MATCH_OPTS:
            hit = value in goals
        else:
            hit = any(token_set_ratio(g, value) > FUZZY_THRESHOLD for g in goals)
        if hit or any(value in t for t in texts):
            matched.append(raw_value)
    r_option = len(matched) / len(goal_options) if goal_options else None
    return r_option, matched


def score_purchase(
    goal: Mapping[str, Any],
    product: Mapping[str, Any],
    options: Mapping[str, str],
    price: float,
    *,
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
        nouns: Optional noun extractor ``name -> nouns`` overriding the default.

    Returns:
        The :class:`RewardBreakdown`; ``.total`` is the reward.
    """
    goal_opts = goal["goal_options"]
    goal_opts = list(goal_opts.values()) if isinstance(goal_opts, Mapping) else list(goal_opts)
    attrs = list(goal["attributes"])
    t = type_reward(product, goal, nouns)
    r_att, matched_attrs = attribute_reward(product, attrs)
    r_option, matched_opts = option_reward(product, goal_opts, options)
    price_upper = float(goal["price_upper"])
    r_price = bool(price <= price_upper)
    denom = len(attrs) + len(goal_opts) + 1
    raw = (len(matched_attrs) + len(matched_opts) + int(r_price)) / denom * t["r_type"]
    return RewardBreakdown(
        total=min(1.0, raw),
        raw_total=raw,
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
    )
