"""Loader for the original WebShop data files, with validation and clear errors.

Point ``data_dir`` at a folder holding the files of princeton-nlp/WebShop's ``data/``:

* ``items_shuffle*.json`` (required): a list of products ``{asin, name, full_description,
  pricing ("$x" or "$a to $b"), images, product_category ("A › B › C"), small_description
  (list of bullets), customization_options ({name: [{value, image}]}), category, query,
  average_rating}``;
* ``items_ins_v2*.json`` (required): ``{asin: {attributes, instruction,
  instruction_attributes}}``;
* ``items_human_ins.json`` (needed for ``goal_source="human"``): ``{asin: [{instruction,
  instruction_attributes, instruction_options, ...}]}``.

When several ``items_shuffle*`` / ``items_ins_v2*`` files exist, the ``_1000`` ones are used for
``num_products <= 1000`` and the full ones otherwise (as the original's setups do). Products are
transformed exactly as the original's ``load_products`` does (lower-cased option values with
``/`` -> `` | ``, ``$`` price parsing, duplicate and malformed ASINs skipped, ``DUMMY_ATTR`` for
products without attributes). Prices of ranged products and goal price caps are drawn from a
seeded RNG (the original's are unseeded).

Example:
    >>> try:
    ...     load_original("/no/such/dir")
    ... except WebShopDataError as e:
    ...     print(str(e)[:60])
    WebShop data directory '/no/such/dir' does not exist; pass d
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from empo_gym.webshop.catalogue import NO_PRICE_CAP, PRICE_RANGE
from empo_gym.webshop.goals import GOAL_SOURCES, ListGoals, price_text
from empo_gym.webshop.reward import default_noun_method

PRODUCT_KEYS = (
    "asin",
    "name",
    "full_description",
    "pricing",
    "product_category",
    "small_description",
    "customization_options",
    "category",
    "query",
)


class WebShopDataError(ValueError):
    """A WebShop data file is missing or malformed (the message names the file and problem)."""


def _pick(data_dir: Path, pattern: str, num_products: int | None, required: bool) -> Path | None:
    files = sorted(data_dir.glob(pattern))
    if not files:
        if required:
            raise WebShopDataError(
                f"{data_dir / pattern.replace('*', '')}: missing; expected a file matching "
                f"{pattern!r} in {str(data_dir)!r}"
            )
        return None
    small = [f for f in files if f.stem.endswith("_1000")]
    full = [f for f in files if f.stem == pattern.split("*")[0]]
    if num_products is not None and num_products <= 1000 and small:
        return small[0]
    return full[0] if full else files[-1]


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise WebShopDataError(f"{path}: cannot be read ({e.strerror or e})") from e
    except UnicodeDecodeError as e:
        raise WebShopDataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise WebShopDataError(
            f"{path}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno}); "
            "the file is corrupt or truncated, download it again"
        ) from e


def _parse_pricing(path: Path, k: int, asin: str, pricing: Any) -> tuple[list[float], str]:
    if pricing is None or not pricing:
        return [100.0], "$100.0"
    if not isinstance(pricing, str):
        raise WebShopDataError(
            f"{path}: product #{k} (asin {asin!r}) has pricing {pricing!r}; expected a string "
            "like '$12.99' or '$10.00 to $15.00'"
        )
    try:
        values = [float(Decimal(re.sub(r"[^\d.]", "", p))) for p in pricing.split("$")[1:]]
    except InvalidOperation as e:
        raise WebShopDataError(
            f"{path}: product #{k} (asin {asin!r}) has unparsable pricing {pricing!r}; expected "
            "'$12.99' or '$10.00 to $15.00'"
        ) from e
    if not values:
        return [100.0], "$100.0"
    if len(values) == 1:
        return values, f"${values[0]}"
    return values[:2], f"${values[0]} to ${values[1]}"


class ListCatalogue:
    """Products of the original files, held as dicts (the original's in-memory shape)."""

    def __init__(self, products: list[dict[str, Any]], prices: list[float]):
        self.products = products
        self.prices = prices
        self._by_asin = {p["asin"]: i for i, p in enumerate(products)}
        self.noun_method = default_noun_method()

    def __len__(self) -> int:
        return len(self.products)

    def product(self, i: int) -> dict[str, Any]:
        """Product ``i``."""
        return self.products[int(i)]

    def asin(self, i: int) -> str:
        """ASIN of product ``i``."""
        return self.products[int(i)]["asin"]

    def index_of(self, asin: str) -> int | None:
        """Index of an ASIN (any case), or None."""
        return self._by_asin.get(asin.strip().upper())

    def price(self, i: int) -> float:
        """The price paid for product ``i``."""
        return self.prices[int(i)]

    def index_text(self, i: int) -> str:
        """Indexed text: title, description, first bullet, option values (lower-cased)."""
        p = self.products[int(i)]
        opts = [v for vals in p["options"].values() for v in vals]
        first = p["BulletPoints"][0] if p["BulletPoints"] else ""
        return " ".join([p["Title"], p["Description"] or "", first, *opts]).lower()


def data_files(
    data_dir: str | Path, num_products: int | None = None, goal_source: str = "synthetic"
) -> dict[str, Path]:
    """The data files that :func:`load_original` would read (validated to exist)."""
    d = Path(data_dir).expanduser()
    if not d.is_dir():
        raise WebShopDataError(
            f"WebShop data directory {str(data_dir)!r} does not exist; pass "
            "data_dir=<folder holding items_shuffle*.json and items_ins_v2*.json>"
        )
    files = {
        "products": _pick(d, "items_shuffle*.json", num_products, True),
        "attributes": _pick(d, "items_ins_v2*.json", num_products, True),
    }
    human = _pick(d, "items_human_ins*.json", num_products, goal_source == "human")
    if human is not None:
        files["human"] = human
    return files  # type: ignore[return-value]


def content_hash(files: dict[str, Path]) -> str:
    """SHA-256 over the files' bytes (the cache key of a loaded catalogue)."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode())
        with open(files[name], "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def load_original(
    data_dir: str | Path,
    num_products: int | None = None,
    goal_source: str = "synthetic",
    seed: int = 0,
) -> tuple[ListCatalogue, ListGoals]:
    """Load the original WebShop files into a catalogue and a shuffled goal list.

    Args:
        data_dir: Folder with the files (see the module docstring).
        num_products: Keep only the first ``num_products`` products (None: all).
        goal_source: ``"synthetic"`` (from ``items_ins_v2``) or ``"human"``.
        seed: Seed of ranged prices and goal price caps.

    Returns:
        ``(catalogue, goals)``.

    Raises:
        WebShopDataError: A file is missing or malformed; the message names it and the problem.
    """
    if goal_source not in GOAL_SOURCES:
        raise ValueError(f"unknown goal_source {goal_source!r}; expected one of {GOAL_SOURCES}")
    files = data_files(data_dir, num_products, goal_source)
    raw = _read_json(files["products"])
    if not isinstance(raw, list):
        raise WebShopDataError(
            f"{files['products']}: expected a JSON list of products, got {type(raw).__name__}"
        )
    attrs = _read_json(files["attributes"])
    if not isinstance(attrs, dict):
        raise WebShopDataError(
            f"{files['attributes']}: expected a JSON object {{asin: {{attributes, instruction, "
            f"instruction_attributes}}}}, got {type(attrs).__name__}"
        )
    human: dict[str, Any] = {}
    if "human" in files and goal_source == "human":
        human = _read_json(files["human"])
        if not isinstance(human, dict):
            raise WebShopDataError(
                f"{files['human']}: expected a JSON object {{asin: [instructions]}}, "
                f"got {type(human).__name__}"
            )
    if num_products is not None:
        raw = raw[:num_products]
    rng = random.Random(seed)
    products: list[dict[str, Any]] = []
    prices: list[float] = []
    seen: set[str] = set()
    path = files["products"]
    for k, p in enumerate(raw):
        if not isinstance(p, dict):
            raise WebShopDataError(f"{path}: product #{k} is {type(p).__name__}, expected object")
        missing = [key for key in PRODUCT_KEYS if key not in p]
        if missing:
            raise WebShopDataError(
                f"{path}: product #{k} (asin {p.get('asin')!r}) lacks required key(s) "
                f"{', '.join(map(repr, missing))}"
            )
        asin = str(p["asin"])
        if asin == "nan" or len(asin) > 10 or asin in seen:
            continue
        seen.add(asin)
        pricing, price_tag = _parse_pricing(path, k, asin, p["pricing"])
        options: dict[str, list[str]] = {}
        for name, contents in (p["customization_options"] or {}).items():
            if contents is None:
                continue
            if not isinstance(contents, list) or not all(
                isinstance(c, dict) and "value" in c for c in contents
            ):
                raise WebShopDataError(
                    f"{path}: product #{k} (asin {asin!r}) option {name!r} must be a list of "
                    "{value, image} objects"
                )
            options[name.lower()] = [
                str(c["value"]).strip().replace("/", " | ").lower() for c in contents
            ]
        bullets = p["small_description"]
        bullets = bullets if isinstance(bullets, list) else [bullets]
        a = attrs.get(asin, {})
        product = {
            "asin": asin,
            "name": p["name"],
            "Title": p["name"],
            "Description": p["full_description"] or "",
            "BulletPoints": [str(b) for b in bullets],
            "Price": price_tag,
            "pricing": pricing,
            "options": options,
            "Attributes": a.get("attributes") or ["DUMMY_ATTR"],
            "category": p["category"],
            "query": str(p["query"]).lower().strip(),
            "product_category": p["product_category"],
            "Rating": p.get("average_rating") or "N.A.",
            "Reviews": [],
            "instruction_text": a.get("instruction"),
            "instruction_attributes": a.get("instruction_attributes"),
        }
        products.append(product)
        prices.append(pricing[0] if len(pricing) == 1 else rng.uniform(*pricing[:2]))
    if not products:
        raise WebShopDataError(f"{path}: contains no usable products")
    goals = (
        _human_goals(products, prices, human, rng)
        if goal_source == "human"
        else _synthetic_goals(products, prices, rng)
    )
    if not goals:
        raise WebShopDataError(
            f"{files['human' if goal_source == 'human' else 'attributes']}: yields no goals "
            f"for the {len(products)} products loaded (no instruction with attributes)"
        )
    return ListCatalogue(products, prices), ListGoals(goals, goal_source)


def _price_cap(price: float, rng: random.Random) -> tuple[float, str]:
    price_range = [p for p in PRICE_RANGE if p > price][:4]
    if len(price_range) >= 2:
        _, upper = sorted(rng.sample(price_range, 2))
        return upper, price_text(upper)
    return NO_PRICE_CAP, ""


def _synthetic_goals(
    products: list[dict[str, Any]], prices: list[float], rng: random.Random
) -> list[dict[str, Any]]:
    goals: list[dict[str, Any]] = []
    cnt: dict[str, int] = {}
    for product, price in zip(products, prices, strict=True):
        text, attributes = product["instruction_text"], product["instruction_attributes"]
        if text is None or not attributes:
            continue
        upper, ptext = _price_cap(price, rng)
        names = sorted(product["options"])
        for combo in itertools.product(*(product["options"][n] for n in names)):
            opts = dict(zip(names, combo, strict=True))
            otext = ", and ".join(f"{k}: {v}" for k, v in opts.items())
            otext = " with " + otext if otext else ""
            goals.append(
                {
                    "asin": product["asin"],
                    "category": product["category"],
                    "query": product["query"],
                    "name": product["Title"],
                    "product_category": product["product_category"],
                    "instruction_text": f"{text}{otext}{ptext}",
                    "attributes": list(attributes),
                    "price_upper": upper,
                    "goal_options": opts,
                }
            )
            for att in attributes:
                cnt[att] = cnt.get(att, 0) + 1
    for g in goals:
        g["weight"] = sum(1.0 / cnt[a] for a in g["attributes"]) / len(g["attributes"])
    return goals


def _human_goals(
    products: list[dict[str, Any]], prices: list[float], human: dict[str, Any], rng: random.Random
) -> list[dict[str, Any]]:
    goals: list[dict[str, Any]] = []
    for product, price in zip(products, prices, strict=True):
        for ins in human.get(product["asin"], []) or []:
            attributes = ins.get("instruction_attributes") or []
            if not attributes:
                continue
            upper, ptext = _price_cap(price, rng)
            goals.append(
                {
                    "asin": product["asin"],
                    "category": product["category"],
                    "query": product["query"],
                    "name": product["name"],
                    "product_category": product["product_category"],
                    "instruction_text": str(ins["instruction"]).strip(".") + ptext,
                    "attributes": list(attributes),
                    "price_upper": upper,
                    "goal_options": list(ins.get("instruction_options") or []),
                    "weight": 1.0,
                }
            )
    return goals
