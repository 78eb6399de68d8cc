"""The original WebShop data files: streamed, validated, transformed once into a shop cache.

Point ``data_dir`` at a folder holding the files of princeton-nlp/WebShop's ``data/``:

* ``items_shuffle.json`` (the full 1.18 M products, ~5 GB) or ``items_shuffle_1000.json``
  (required): a list of products ``{asin, name, full_description, pricing ("$x" or
  "$a to $b"), images, product_category ("A › B › C"), small_description (list of bullets),
  customization_options ({name: [{value, image}]}), category, query, average_rating}``;
* ``items_ins_v2.json`` or ``items_ins_v2_1000.json`` (required): ``{asin: {attributes,
  instruction, instruction_attributes}}``;
* ``items_human_ins.json`` (needed for ``goal_source="human"``): ``{asin: [{instruction,
  instruction_attributes, instruction_options, ...}]}``.

When several ``items_shuffle*`` / ``items_ins_v2*`` files exist, the ``_1000`` ones are used for
``num_products <= 1000`` and the full ones otherwise. ``num_products=None`` reads every product.

The files are *streamed* (ijson): products are transformed one at a time exactly as the
original's ``load_products`` does (lower-cased option values with ``/`` -> `` | ``, ``$`` price
parsing, malformed and duplicate ASINs skipped, ``DUMMY_ATTR`` for products without attributes,
ratings and reviews disabled) and written to a cache folder: products as JSON lines with
offsets, prices, sorted ASINs, goal arrays, the nouns of every name and the search index. Memory
stays bounded by those arrays, never by the file. :class:`OriginalCatalogue` reopens the folder
memory-mapped, so later processes start in about a second and share pages. Prices of ranged
products and goal price caps come from an RNG seeded with ``seed`` (the original's are
unseeded), drawn in a fixed order.

Example:
    >>> try:
    ...     data_files("/no/such/dir")
    ... except WebShopDataError as e:
    ...     print(str(e)[:60])
    WebShop data directory '/no/such/dir' does not exist; pass d
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import mmap
import os
import random
import re
import time
from collections.abc import Iterator, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import ijson
import numpy as np

from empo_gym.atomic_io import write_json_atomic
from empo_gym.webshop.catalogue import NO_PRICE_CAP, PRICE_RANGE
from empo_gym.webshop.goals import (
    GOAL_SOURCES,
    SHUFFLE_SEED,
    GoalSet,
    ListGoals,
    goal_nouns,
    price_text,
    split_range,
)
from empo_gym.webshop.nouns import NounTable
from empo_gym.webshop.search import index_text

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
#: The original's file names (what :func:`data_files` looks for).
DATA_FILES = {
    "products": "items_shuffle*.json",
    "attributes": "items_ins_v2*.json",
    "human": "items_human_ins*.json",
}
_JSON_TYPES = {"{": "dict", "[": "list", '"': "str", "t": "bool", "f": "bool", "n": "null"}


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


def data_files(
    data_dir: str | os.PathLike[str],
    num_products: int | None = None,
    goal_source: str = "synthetic",
) -> dict[str, Path]:
    """The data files the shop would read (validated to exist; the human file when present)."""
    d = Path(data_dir).expanduser()
    if not d.is_dir():
        raise WebShopDataError(
            f"WebShop data directory {str(data_dir)!r} does not exist; pass "
            "data_dir=<folder holding items_shuffle*.json and items_ins_v2*.json>"
        )
    files = {
        "products": _pick(d, DATA_FILES["products"], num_products, True),
        "attributes": _pick(d, DATA_FILES["attributes"], num_products, True),
    }
    human = _pick(d, DATA_FILES["human"], num_products, goal_source == "human")
    if human is not None:
        files["human"] = human
    return files  # type: ignore[return-value]


def fingerprint(files: Mapping[str, Path]) -> str:
    """Cache key part of the data files: their resolved paths, sizes and modification times
    (re-hashing gigabytes in every process would cost minutes)."""
    h = hashlib.sha256()
    for name in sorted(files):
        st = files[name].stat()
        h.update(f"{name}|{files[name].resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


# --- streaming -----------------------------------------------------------------------------
def _check_top(path: Path, f: Any, expected: str) -> None:
    """Raise unless the file's first JSON token opens a ``expected`` ('[' or '{')."""
    head = f.read(4096).lstrip()
    f.seek(0)
    first = head[:1].decode("ascii", "replace")
    if first != expected:
        got = _JSON_TYPES.get(first, "number" if first[:1].isdigit() else "nothing")
        shape = "list of products" if expected == "[" else "object {asin: ...}"
        raise WebShopDataError(f"{path}: expected a JSON {shape}, got {got}")


def _stream(path: Path, expected: str, kv: bool) -> Iterator[Any]:
    try:
        with open(path, "rb") as f:
            _check_top(path, f, expected)
            items = (
                ijson.kvitems(f, "", use_float=True)
                if kv
                else ijson.items(f, "item", use_float=True)
            )
            yield from items
    except OSError as e:
        raise WebShopDataError(f"{path}: cannot be read ({e.strerror or e})") from e
    except (ijson.JSONError, UnicodeDecodeError) as e:
        raise WebShopDataError(
            f"{path}: not valid JSON ({str(e).splitlines()[0]}); the file is corrupt or "
            "truncated, download it again"
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


def transform_product(path: Path, k: int, p: Any) -> dict[str, Any]:
    """Raw product ``#k`` of ``path`` -> the original's in-memory product (no attributes yet).

    Raises:
        WebShopDataError: A required key is missing or a field is malformed.
    """
    if not isinstance(p, dict):
        raise WebShopDataError(f"{path}: product #{k} is {type(p).__name__}, expected object")
    missing = [key for key in PRODUCT_KEYS if key not in p]
    if missing:
        raise WebShopDataError(
            f"{path}: product #{k} (asin {p.get('asin')!r}) lacks required key(s) "
            f"{', '.join(map(repr, missing))}"
        )
    asin = str(p["asin"])
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
    return {
        "asin": asin,
        "name": p["name"],
        "Title": p["name"],
        "Description": p["full_description"] or "",
        "BulletPoints": [str(b) for b in bullets],
        "Price": price_tag,
        "pricing": pricing,
        "options": options,
        "category": p["category"],
        "query": str(p["query"]).lower().strip(),
        "product_category": p["product_category"],
        "Rating": "N.A.",  # the original disables ratings and reviews
        "Reviews": [],
    }


# --- cache build ---------------------------------------------------------------------------
def _price_cap(price: float, rng: random.Random) -> float:
    """The original's cap: max of two draws from the next four price buckets above ``price``."""
    price_range = [p for p in PRICE_RANGE if p > price][:4]
    if len(price_range) >= 2:
        return sorted(rng.sample(price_range, 2))[1]
    return NO_PRICE_CAP


def _n_combos(options: Mapping[str, list[str]]) -> int:
    n = 1
    for values in options.values():
        n *= len(values)
    return n


def build_cache(
    folder: Path,
    files: Mapping[str, Path],
    num_products: int | None,
    seed: int,
    index_builder: Any,
) -> dict[str, Any]:
    """Stream the data files into ``folder`` (a fresh directory); return the cache metadata.

    ``index_builder(texts)`` indexes an iterable of index texts and saves it into a folder
    (passed in by the shop, which owns the search index).
    """
    t0 = time.perf_counter()
    rng = random.Random(seed)
    path = files["products"]
    seen: dict[str, None] = {}
    offsets = [0]
    prices: list[float] = []
    n_combos: list[int] = []
    titles: list[str] = []
    pos = 0
    with open(folder / "products.jsonl", "wb") as out:
        stream = _stream(path, "[", kv=False)
        raw_iter = stream if num_products is None else itertools.islice(stream, num_products)
        for k, raw in enumerate(raw_iter):
            asin = str(raw.get("asin")) if isinstance(raw, dict) else ""
            if isinstance(raw, dict) and (asin == "nan" or len(asin) > 10 or asin in seen):
                continue
            p = transform_product(path, k, raw)
            seen[asin] = None
            pricing = p["pricing"]
            prices.append(pricing[0] if len(pricing) == 1 else rng.uniform(*pricing[:2]))
            n_combos.append(_n_combos(p["options"]))
            titles.append(p["Title"])
            line = json.dumps(p, ensure_ascii=False).encode() + b"\n"
            out.write(line)
            pos += len(line)
            offsets.append(pos)
    if not prices:
        raise WebShopDataError(f"{path}: contains no usable products")
    asins = list(seen)
    del seen
    n = len(asins)
    np.save(folder / "offsets.npy", np.asarray(offsets, dtype=np.int64), allow_pickle=False)
    np.save(folder / "prices.npy", np.asarray(prices, dtype=np.float64), allow_pickle=False)
    asin_arr = np.asarray(asins, dtype="S10")
    order = np.argsort(asin_arr, kind="stable")
    np.save(folder / "asins.npy", asin_arr, allow_pickle=False)
    np.save(folder / "asin_order.npy", order.astype(np.int64), allow_pickle=False)
    index_of = {a: i for i, a in enumerate(asins)}
    t1 = time.perf_counter()

    # attributes: streamed; kept as JSON lines addressed by product index
    attr_start = np.full(n, -1, dtype=np.int64)
    attr_len = np.zeros(n, dtype=np.int32)
    ins_attrs: dict[int, list[str]] = {}
    ins_text: set[int] = set()
    pos = 0
    with open(folder / "attributes.jsonl", "wb") as out:
        for asin, a in _stream(files["attributes"], "{", kv=True):
            i = index_of.get(asin)
            if i is None or attr_start[i] >= 0:
                continue
            if not isinstance(a, dict):
                raise WebShopDataError(
                    f"{files['attributes']}: entry {asin!r} is {type(a).__name__}; expected "
                    "{attributes, instruction, instruction_attributes}"
                )
            rec = {
                "Attributes": a.get("attributes") if "attributes" in a else None,
                "instruction_text": a.get("instruction"),
                "instruction_attributes": a.get("instruction_attributes"),
            }
            line = json.dumps(rec, ensure_ascii=False).encode() + b"\n"
            out.write(line)
            attr_start[i], attr_len[i] = pos, len(line)
            pos += len(line)
            if rec["instruction_text"] is not None and rec["instruction_attributes"]:
                ins_text.add(i)
                ins_attrs[i] = list(rec["instruction_attributes"])
    np.save(folder / "attr_start.npy", attr_start, allow_pickle=False)
    np.save(folder / "attr_len.npy", attr_len, allow_pickle=False)
    t2 = time.perf_counter()

    # synthetic goals: every option combination of every product with an instruction (the
    # original's get_synthetic_goals), in product order, then shuffled like the original
    goal_products = sorted(ins_text)
    caps = np.full(n, NO_PRICE_CAP, dtype=np.float64)
    for i in goal_products:
        caps[i] = _price_cap(prices[i], rng)
    cnt: dict[str, int] = {}
    for i in goal_products:
        for att in ins_attrs[i]:
            cnt[att] = cnt.get(att, 0) + n_combos[i]
    weight = np.zeros(n, dtype=np.float64)
    for i in goal_products:
        weight[i] = sum(1.0 / cnt[a] for a in ins_attrs[i]) / len(ins_attrs[i])
    counts = np.asarray([n_combos[i] for i in goal_products], dtype=np.int64)
    product = np.repeat(np.asarray(goal_products, dtype=np.int32), counts)
    starts = np.cumsum(counts) - counts
    combo = np.arange(product.size, dtype=np.int64) - np.repeat(starts, counts)
    perm = list(range(product.size))
    random.Random(SHUFFLE_SEED).shuffle(perm)  # the original: random.seed(233); shuffle(goals)
    perm_a = np.asarray(perm, dtype=np.int64)
    goals_dir = folder / "goals-synthetic"
    goals_dir.mkdir()
    np.save(goals_dir / "product.npy", product[perm_a], allow_pickle=False)
    np.save(goals_dir / "combo.npy", combo[perm_a].astype(np.int64), allow_pickle=False)
    np.save(goals_dir / "caps.npy", caps, allow_pickle=False)
    np.save(goals_dir / "weight.npy", weight, allow_pickle=False)
    del perm, perm_a

    # human goals: the instructions of items_human_ins, in product order (get_human_goals)
    if "human" in files:
        human: dict[int, list[Any]] = {}
        for asin, instructions in _stream(files["human"], "{", kv=True):
            i = index_of.get(asin)
            if i is not None and asin not in human:
                if not isinstance(instructions, list):
                    raise WebShopDataError(
                        f"{files['human']}: entry {asin!r} is {type(instructions).__name__}; "
                        "expected a list of {instruction, instruction_attributes, "
                        "instruction_options}"
                    )
                human[i] = instructions
        human_goals = []
        for i in sorted(human):
            for ins in human[i]:
                attributes = ins.get("instruction_attributes") or []
                if not attributes:
                    continue
                upper = _price_cap(prices[i], rng)
                human_goals.append(
                    {
                        "product_index": i,
                        "instruction_text": str(ins["instruction"]).strip(".") + price_text(upper),
                        "attributes": list(attributes),
                        "price_upper": upper,
                        "goal_options": list(ins.get("instruction_options") or []),
                        "weight": 1.0,
                    }
                )
        random.Random(SHUFFLE_SEED).shuffle(human_goals)
        write_json_atomic(folder / "goals-human.json", human_goals, ensure_ascii=False)
    t3 = time.perf_counter()

    del index_of
    NounTable.extract(titles).save(folder / "nouns")
    del titles
    t4 = time.perf_counter()
    cat = OriginalCatalogue(folder)
    index_builder((index_text(cat.product(i, with_attributes=False)) for i in range(n)), folder)
    t5 = time.perf_counter()
    return {
        "kind": "original",
        "num_products": n,
        "num_synthetic_goals": int(product.size),
        "has_human_goals": "human" in files,
        "files": {k: str(v) for k, v in files.items()},
        "timings_s": {
            "products": t1 - t0,
            "attributes": t2 - t1,
            "goals": t3 - t2,
            "nouns": t4 - t3,
            "index": t5 - t4,
        },
    }


# --- the cached catalogue and goals ----------------------------------------------------------
class OriginalCatalogue:
    """Products of the original files, read from a cache folder written by :func:`build_cache`.

    Products are JSON lines in a memory map, decoded on demand (the last few thousand kept),
    merged with their attributes and nouns; prices and ASINs are memory-mapped arrays.
    """

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._offsets = np.load(folder / "offsets.npy", mmap_mode="r")
        self._attr_start = np.load(folder / "attr_start.npy", mmap_mode="r")
        self._attr_len = np.load(folder / "attr_len.npy", mmap_mode="r")
        self.prices = np.load(folder / "prices.npy", mmap_mode="r")
        self._asins = np.load(folder / "asins.npy", mmap_mode="r")
        self._order = np.load(folder / "asin_order.npy", mmap_mode="r")
        self._products = _map(folder / "products.jsonl")
        self._attrs = _map(folder / "attributes.jsonl")
        nouns_dir = folder / "nouns"
        self.nouns = NounTable.load(nouns_dir) if (nouns_dir / "vocab.json").is_file() else None
        self.noun_method = self.nouns.method if self.nouns is not None else None
        self._n = int(self._offsets.size - 1)
        self._cached = functools.lru_cache(maxsize=4096)(self._product)

    def __len__(self) -> int:
        return self._n

    def product(self, i: int, with_attributes: bool = True) -> dict[str, Any]:
        """Product ``i`` as the original's dict (shared: treat as read-only)."""
        if not with_attributes:
            a, b = int(self._offsets[i]), int(self._offsets[i + 1])
            return json.loads(self._products[a:b])
        return self._cached(int(i))

    def _product(self, i: int) -> dict[str, Any]:
        if not 0 <= i < self._n:
            raise IndexError(f"product index {i} out of range 0..{self._n - 1}")
        a, b = int(self._offsets[i]), int(self._offsets[i + 1])
        p = json.loads(self._products[a:b])
        start = int(self._attr_start[i])
        rec = json.loads(self._attrs[start : start + int(self._attr_len[i])]) if start >= 0 else {}
        # the original: DUMMY_ATTR when the product has no attribute entry
        attrs = rec.get("Attributes")
        p["Attributes"] = attrs if attrs is not None else ["DUMMY_ATTR"]
        p["instruction_text"] = rec.get("instruction_text")
        p["instruction_attributes"] = rec.get("instruction_attributes")
        if self.nouns is not None:
            p["name_nouns"] = self.nouns[i]
            p["noun_method"] = self.nouns.method
        return p

    def asin(self, i: int) -> str:
        """ASIN of product ``i``."""
        return self._asins[int(i)].decode()

    def index_of(self, asin: str) -> int | None:
        """Index of an ASIN (any case), or None."""
        key = asin.strip().upper().encode()
        if len(key) > 10:
            return None
        lo, hi = 0, self._n
        while lo < hi:  # binary search over the sorted order (memory-mapped)
            mid = (lo + hi) // 2
            if self._asins[self._order[mid]] < key:
                lo = mid + 1
            else:
                hi = mid
        if lo < self._n and self._asins[self._order[lo]] == key:
            return int(self._order[lo])
        return None

    def price(self, i: int) -> float:
        """The price paid for product ``i``."""
        return float(self.prices[int(i)])


def _map(path: Path) -> mmap.mmap | bytes:
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return b""
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)


class OriginalGoals(GoalSet):
    """Synthetic goals of original data: (product, option combination) arrays in shuffled
    order; :meth:`goal` builds the original's goal dict on demand."""

    def __init__(self, catalogue: OriginalCatalogue, folder: Path):
        self.catalogue = catalogue
        self.source = "synthetic"
        self.product_of = np.load(folder / "product.npy", mmap_mode="r")
        self.combo_of = np.load(folder / "combo.npy", mmap_mode="r")
        self._caps = np.load(folder / "caps.npy", mmap_mode="r")
        self._weight = np.load(folder / "weight.npy", mmap_mode="r")

    def __len__(self) -> int:
        return int(self.product_of.size)

    def goal(self, i: int) -> dict[str, Any]:
        """Goal ``i``: the original's synthetic goal dict (plus ``product_index``, nouns)."""
        pi = int(self.product_of[int(i)])
        p = self.catalogue.product(pi)
        names = sorted(p["options"])
        combo = int(self.combo_of[int(i)])
        chosen: dict[str, str] = {}
        for name in reversed(names):  # itertools.product order: the last name varies fastest
            combo, k = divmod(combo, len(p["options"][name]))
            chosen[name] = p["options"][name][k]
        opts = {k: chosen[k] for k in names}
        option_text = ", and ".join(f"{k}: {v}" for k, v in opts.items())
        option_text = " with " + option_text if option_text else ""
        upper = float(self._caps[pi])
        return {
            "asin": p["asin"],
            "product_index": pi,
            "category": p["category"],
            "query": p["query"],
            "name": p["Title"],
            "product_category": p["product_category"],
            "instruction_text": f"{p['instruction_text']}{option_text}{price_text(upper)}",
            "attributes": list(p["instruction_attributes"]),
            "price_upper": upper,
            "goal_options": opts,
            "weight": float(self._weight[pi]),
            **goal_nouns(p),
        }

    def weights(self, split: str) -> np.ndarray:
        """The original's inverse-attribute-frequency weights of ``split``'s goals."""
        a, b = split_range(split, len(self))
        return np.asarray(self._weight)[np.asarray(self.product_of[a:b])]


class HumanGoals(ListGoals):
    """Human goals of original data (already shuffled in the cache), completed from products."""

    def __init__(self, catalogue: OriginalCatalogue, goals: list[dict[str, Any]]):
        super().__init__(goals, "human", shuffle=False)
        self.catalogue = catalogue

    def goal(self, i: int) -> dict[str, Any]:
        """Goal ``i``: the original's human goal dict (plus ``product_index``, nouns)."""
        g = super().goal(i)
        p = self.catalogue.product(g["product_index"])
        return {
            "asin": p["asin"],
            "category": p["category"],
            "query": p["query"],
            "name": p["name"],
            "product_category": p["product_category"],
            **g,
            **goal_nouns(p),
        }


def open_goals(catalogue: OriginalCatalogue, folder: Path) -> dict[str, GoalSet]:
    """The goal sets cached in ``folder`` (synthetic always; human when its file was given)."""
    sets: dict[str, GoalSet] = {"synthetic": OriginalGoals(catalogue, folder / "goals-synthetic")}
    human = folder / "goals-human.json"
    if human.is_file():
        sets["human"] = HumanGoals(catalogue, json.loads(human.read_text(encoding="utf-8")))
    return sets


def load_original(
    data_dir: str | os.PathLike[str],
    num_products: int | None = None,
    goal_source: str = "synthetic",
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
) -> tuple[OriginalCatalogue, GoalSet]:
    """Load the original WebShop files (through the shop cache) into a catalogue and goals.

    Args:
        data_dir: Folder with the files (see the module docstring).
        num_products: Keep only the first ``num_products`` products (None: all).
        goal_source: ``"synthetic"`` (from ``items_ins_v2``) or ``"human"``.
        seed: Seed of ranged prices and goal price caps.
        cache_dir: Cache folder override (default ``$EMPO_GYM_CACHE`` / user cache dir).

    Returns:
        ``(catalogue, goals)``.

    Raises:
        WebShopDataError: A file is missing or malformed; the message names it and the problem.
    """
    from empo_gym.webshop.shop import get_shop

    if goal_source not in GOAL_SOURCES:
        raise ValueError(f"unknown goal_source {goal_source!r}; expected one of {GOAL_SOURCES}")
    shop = get_shop(num_products, seed, data_dir, cache_dir, goal_source)
    goals = shop.goals(goal_source)
    if len(goals) == 0:
        raise WebShopDataError(
            f"{data_dir}: yields no {goal_source} goals for the {len(shop.catalogue)} products "
            "loaded (no instruction with attributes)"
        )
    return shop.catalogue, goals
