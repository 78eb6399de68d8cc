"""Product catalogues: the built-in generated one and the common interface of all catalogues.

A catalogue hands out products as dicts in the shape the original WebShop server uses after
loading (``asin``, ``name``, ``Title``, ``Description``, ``BulletPoints``, ``Price``,
``pricing``, ``options``, ``Attributes``, ``category``, ``query``, ``product_category``,
``Rating``, ``Reviews``), plus ``name_nouns`` / ``noun_method`` once the shop attached the
nouns it computed (:mod:`empo_gym.webshop.nouns`).

:class:`GeneratedCatalogue` is deterministic from ``(num_products, seed)``: a handful of small
numpy arrays (type, brand, attributes, offered option values, prices, ...) describe every
product, and text is rendered on demand from :mod:`empo_gym.webshop.vocab`, so a million
products cost tens of megabytes and load from disk as memory maps. Products are generated in
blocks, so the first ``n`` products of a larger catalogue with the same seed are the products of
the size-``n`` catalogue (like the original's ``items_shuffle`` prefixes).

Example:
    >>> cat = GeneratedCatalogue.generate(20, seed=0)
    >>> p = cat.product(3)
    >>> p["asin"] == cat.asin(3) and cat.index_of(p["asin"]) == 3
    True
    >>> p["category"] in ("beauty", "fashion", "food", "furniture", "electronics")
    True
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from empo_gym.webshop import vocab as V
from empo_gym.webshop.search import index_text, tokenize

#: Bump when generation changes in a way the vocabulary hash does not see.
GENERATOR_VERSION = 1
#: Products generated per RNG block (prefix stability across sizes).
BLOCK = 8192
#: The original's price buckets for goal price caps.
PRICE_RANGE = tuple(10.0 * i for i in range(1, 100))
#: Cap used when a product is too expensive for a price bucket (the original's 1,000,000).
NO_PRICE_CAP = 1_000_000.0
MAX_ATTRS = 4
MAX_SLOTS = 3

_ASIN_MOD = 36**8
_ASIN_MUL = 2654435761  # odd and not a multiple of 3: invertible modulo 36**8
_ASIN_INV = pow(_ASIN_MUL, -1, _ASIN_MOD)
_B36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

TYPES = V.PRODUCT_TYPES
CATEGORY_NAMES = tuple(sorted(V.CATEGORIES))


def _attribute_table() -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for t in TYPES:
        for a in t.attributes + V.CATEGORIES[t.category]["attributes"]:
            seen.setdefault(a, None)
    return tuple(seen)


ATTRIBUTES = _attribute_table()
_ATTR_ID = {a: i for i, a in enumerate(ATTRIBUTES)}
_TYPE_POOLS = [
    [_ATTR_ID[a] for a in dict.fromkeys(t.attributes + V.CATEGORIES[t.category]["attributes"])]
    for t in TYPES
]


def vocabulary_hash() -> str:
    """Hash of the generator's tables and version (part of every generated catalogue's key)."""
    blob = json.dumps(
        {
            "version": GENERATOR_VERSION,
            "categories": V.CATEGORIES,
            "pools": V.OPTION_POOLS,
            "types": [t.__dict__ for t in TYPES],
            "templates": [
                V.DESCRIPTION_TEMPLATES,
                V.BULLET_TEMPLATES,
                V.REVIEW_TEMPLATES,
                V.INSTRUCTION_TEMPLATES,
                V.HUMAN_INSTRUCTION_TEMPLATES,
            ],
        },
        sort_keys=True,
        default=list,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def _price_tag(x: float) -> str:
    return f"${x:.2f}"


def _titlecase(s: str) -> str:
    return " ".join(w[:1].upper() + w[1:] for w in s.split(" "))


def _article(type_name: str, first: str) -> str:
    if type_name.endswith("s") and not type_name.endswith("ss"):
        return ""
    return "an" if first[:1] in "aeiou" else "a"


def _join_and(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


_SLOT = re.compile(r"\{(\w+)\}")


def _split_template(template: str) -> list[tuple[bool, str]]:
    """Template -> [(is_slot, text)]."""
    out: list[tuple[bool, str]] = []
    pos = 0
    for m in _SLOT.finditer(template):
        if m.start() > pos:
            out.append((False, template[pos : m.start()]))
        out.append((True, m.group(1)))
        pos = m.end()
    if pos < len(template):
        out.append((False, template[pos:]))
    return out


_DESC_PARTS = [_split_template(t) for t in V.DESCRIPTION_TEMPLATES]
_BULLET_PARTS = [_split_template(t) for t in V.BULLET_TEMPLATES]


def _fill(parts: list[tuple[bool, str]], slots: Mapping[str, str]) -> list[str]:
    return [slots[x] if is_slot else x for is_slot, x in parts]


def _generate_block(seed: int, block: int, n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng([seed, block, GENERATOR_VERSION])
    nt = len(TYPES)
    type_id = rng.integers(0, nt, n).astype(np.int16)
    brand = rng.integers(0, 10, n).astype(np.int8)
    adj = np.stack([rng.integers(0, 10, n), rng.integers(0, 9, n)], 1).astype(np.int8)
    adj[:, 1] += adj[:, 1] >= adj[:, 0]  # two distinct adjectives
    attrs = np.full((n, MAX_ATTRS), -1, np.int16)
    n_attrs = rng.integers(3, MAX_ATTRS + 1, n)
    n_ins = np.minimum(rng.choice([1, 2, 3], n, p=[0.35, 0.45, 0.2]), n_attrs)
    optmask = np.zeros((n, MAX_SLOTS), np.uint32)
    lo = np.array([t.price[0] for t in TYPES])[type_id]
    hi = np.array([t.price[1] for t in TYPES])[type_id]
    keys_all = rng.random((n, 16))
    ranks = np.argsort(np.argsort(keys_all, axis=1), axis=1)
    for t_idx, t in enumerate(TYPES):
        rows = np.flatnonzero(type_id == t_idx)
        if rows.size == 0:
            continue
        pool = np.array(_TYPE_POOLS[t_idx], np.int16)
        order = np.argsort(keys_all[rows, : pool.size], axis=1)[:, :MAX_ATTRS]
        chosen = pool[order]
        chosen[np.arange(MAX_ATTRS)[None, :] >= n_attrs[rows, None]] = -1
        attrs[rows] = chosen
        for s, (_, pool_name) in enumerate(t.options):
            q = len(V.OPTION_POOLS[pool_name])
            m = rng.integers(2, min(5, q) + 1, rows.size)
            r = ranks[rows, s * 5 % 16 :][:, :q] if q <= 16 - s * 5 % 16 else ranks[rows, :q]
            r = np.argsort(np.argsort(r, axis=1), axis=1)  # a permutation of 0..q-1 per row
            bits = (r < m[:, None]).astype(np.uint32) << np.arange(q, dtype=np.uint32)[None, :]
            optmask[rows, s] = bits.sum(axis=1, dtype=np.uint32)
    u = rng.random(n)
    base = np.floor(lo * (hi / lo) ** u) + 0.99
    ranged = rng.random(n) < 0.15
    top = np.where(ranged, np.floor(base * rng.uniform(1.2, 1.6, n)) + 0.99, base)
    price = np.where(ranged, rng.uniform(base, top), base)
    # the original: price_range = [p for p in PRICE_RANGE if p > price][:4];
    # price_upper = max of two distinct draws from it (when it has >= 2 entries).
    first = np.floor(price / 10.0).astype(np.int64) + 1  # bucket index (1-based) of first p > x
    avail = np.clip(100 - first, 0, 4)
    a = rng.integers(0, 4, n) % np.maximum(avail, 1)
    b = rng.integers(0, 3, n) % np.maximum(avail - 1, 1)
    b = b + (b >= a)
    upper = 10.0 * (first + np.maximum(a, b))
    upper = np.where(avail >= 2, upper, NO_PRICE_CAP)
    rating = np.where(rng.random(n) < 0.3, 0, rng.integers(30, 51, n)).astype(np.uint8)
    variant = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    return {
        "type_id": type_id,
        "brand": brand,
        "adj": adj,
        "attrs": attrs,
        "n_ins": n_ins.astype(np.uint8),
        "optmask": optmask,
        "price_lo": base.astype(np.float64),
        "price_hi": top.astype(np.float64),
        "price": price.astype(np.float64),
        "price_upper": upper.astype(np.float64),
        "rating": rating,
        "variant": variant,
    }


def _popcount(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.uint32)
    return np.unpackbits(x.view(np.uint8).reshape(*x.shape, 4), axis=-1).sum(-1)


class GeneratedCatalogue:
    """The built-in catalogue, rendered on demand from per-product arrays.

    Args:
        arrays: The arrays of :meth:`generate` (possibly memory-mapped from the cache).
        seed: The catalogue seed (enters the ASINs).
    """

    def __init__(self, arrays: Mapping[str, np.ndarray], seed: int):
        self.arrays = dict(arrays)
        self.seed = int(seed)
        #: The products' nouns (:class:`~empo_gym.webshop.nouns.NounTable`), set by the shop
        #: from its cache; without it the reward extracts nouns itself.
        self.nouns: Any = None
        self._n = int(len(self.arrays["type_id"]))
        self._offset = (self.seed * 7919 + 12345) % _ASIN_MOD
        self.product = functools.lru_cache(maxsize=4096)(self._product)

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def generate(cls, num_products: int, seed: int = 0) -> GeneratedCatalogue:
        """Generate ``num_products`` products from ``seed``."""
        if not isinstance(num_products, int) or not 1 <= num_products <= 10_000_000:
            raise ValueError(f"num_products must be an int in 1..10,000,000, got {num_products!r}")
        blocks = [
            _generate_block(seed, b, BLOCK) for b in range((num_products + BLOCK - 1) // BLOCK)
        ]
        arrays = {k: np.concatenate([b[k] for b in blocks])[:num_products] for k in blocks[0]}
        arrays["n_combos"] = cls.combos_of(arrays)
        return cls(arrays, seed)

    @staticmethod
    def combos_of(arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        """Number of option combinations of every product."""
        counts = _popcount(np.asarray(arrays["optmask"]))
        return np.prod(np.where(counts > 0, counts, 1), axis=1).astype(np.int32)

    def save(self, directory: Path) -> None:
        """Write the arrays as ``.npy`` files into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        for k, v in self.arrays.items():
            np.save(directory / f"{k}.npy", np.ascontiguousarray(v), allow_pickle=False)

    @classmethod
    def load(cls, directory: Path, seed: int) -> GeneratedCatalogue:
        """Open arrays written by :meth:`save` (memory-mapped)."""
        names = (
            "type_id",
            "brand",
            "adj",
            "attrs",
            "n_ins",
            "optmask",
            "price_lo",
            "price_hi",
            "price",
            "price_upper",
            "rating",
            "variant",
            "n_combos",
        )
        arrays = {}
        for k in names:
            path = directory / f"{k}.npy"
            if not path.is_file():
                raise ValueError(f"catalogue cache file {path} is missing")
            arrays[k] = np.load(path, mmap_mode="r", allow_pickle=False)
        return cls(arrays, seed)

    # -- identity -------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._n

    def asin(self, i: int) -> str:
        """The ASIN-like id of product ``i`` (``B0`` + 8 base-36 characters)."""
        x = (int(i) * _ASIN_MUL + self._offset) % _ASIN_MOD
        chars = []
        for _ in range(8):
            x, r = divmod(x, 36)
            chars.append(_B36[r])
        return "B0" + "".join(reversed(chars))

    def index_of(self, asin: str) -> int | None:
        """Product index of an ASIN, or None when it names no product of this catalogue."""
        asin = asin.strip().upper()
        if len(asin) != 10 or not asin.startswith("B0"):
            return None
        try:
            x = int(asin[2:], 36)
        except ValueError:
            return None
        i = ((x - self._offset) * _ASIN_INV) % _ASIN_MOD
        return i if i < self._n else None

    def price(self, i: int) -> float:
        """The price paid when product ``i`` is bought."""
        return float(self.arrays["price"][i])

    # -- rendering ------------------------------------------------------------------------
    def _slots(self, i: int) -> dict[str, Any]:
        a = self.arrays
        t = TYPES[int(a["type_id"][i])]
        cat = V.CATEGORIES[t.category]
        attrs = [ATTRIBUTES[x] for x in a["attrs"][i] if x >= 0]
        adj = a["adj"][i]
        options: dict[str, list[str]] = {}
        for s, (name, pool_name) in enumerate(t.options):
            mask = int(a["optmask"][i, s])
            pool = V.OPTION_POOLS[pool_name]
            options[name] = [v for k, v in enumerate(pool) if mask >> k & 1]
        return {
            "type": t,
            "brand": cat["brands"][int(a["brand"][i])],
            "adj1": cat["adjectives"][int(adj[0])],
            "adj2": cat["adjectives"][int(adj[1])],
            "attrs": attrs,
            "n_ins": int(a["n_ins"][i]),
            "options": options,
            "variant": int(a["variant"][i]),
        }

    def _text_pieces(self, s: Mapping[str, Any]) -> dict[str, list[str]]:
        t, attrs, v = s["type"], s["attrs"], s["variant"]
        tn = t.name
        a0, a1 = attrs[0], attrs[1]
        a2 = attrs[2] if len(attrs) > 2 else attrs[0]
        if v & 1:
            title = [
                s["brand"],
                " ",
                _titlecase(s["adj1"]),
                " ",
                _titlecase(tn),
                ", ",
                _titlecase(a0),
                " & ",
                _titlecase(a1),
            ]
        else:
            title = [
                s["brand"],
                " ",
                _titlecase(s["adj1"]),
                " ",
                _titlecase(s["adj2"]),
                " ",
                _titlecase(tn),
                " - ",
                _titlecase(a0),
            ]
        slots = {
            "brand": s["brand"],
            "type": tn,
            "adj": s["adj1"],
            "a0": a0,
            "a1": a1,
            "a2": a2,
            "A0": _titlecase(a0),
            "A1": _titlecase(a1),
        }
        desc = _fill(_DESC_PARTS[(v >> 1) % len(_DESC_PARTS)], slots)
        nb = 3 + (v >> 3) % 3
        first = (v >> 5) % len(_BULLET_PARTS)
        bullets = [_fill(_BULLET_PARTS[(first + k) % len(_BULLET_PARTS)], slots) for k in range(nb)]
        return {"title": title, "desc": desc, "bullets": bullets}

    def title(self, i: int) -> str:
        """The title (= name) of product ``i``."""
        return "".join(self._text_pieces(self._slots(int(i)))["title"])

    def _product(self, i: int) -> dict[str, Any]:
        i = int(i)
        if not 0 <= i < self._n:
            raise IndexError(f"product index {i} out of range 0..{self._n - 1}")
        a = self.arrays
        s = self._slots(i)
        t = s["type"]
        pieces = self._text_pieces(s)
        title = "".join(pieces["title"])
        lo, hi = float(a["price_lo"][i]), float(a["price_hi"][i])
        pricing = [lo] if lo == hi else [lo, hi]
        v = s["variant"]
        rev_slots = {
            "type": t.name,
            "brand": s["brand"],
            "a0": s["attrs"][0],
            "a1": s["attrs"][1],
            "adj": s["adj1"],
        }
        reviews = []
        for k in range((v >> 8) % 3):
            rt, body = V.REVIEW_TEMPLATES[(v >> 10 + k) % len(V.REVIEW_TEMPLATES)]
            reviews.append(
                {"title": rt, "score": 5 - (v >> 14 + k) % 3, "body": body.format(**rev_slots)}
            )
        return {
            "asin": self.asin(i),
            "name": title,
            "Title": title,
            "Description": "".join(pieces["desc"]),
            "BulletPoints": ["".join(b) for b in pieces["bullets"]],
            "Price": " to ".join(_price_tag(p) for p in pricing),
            "pricing": pricing,
            "options": s["options"],
            "Attributes": list(s["attrs"]),
            "instruction_attributes": list(s["attrs"][: s["n_ins"]]),
            "category": t.category,
            "query": t.query,
            "product_category": t.path,
            # the original disables ratings: every item page reads "Rating: N.A."
            "Rating": "N.A.",
            "Reviews": reviews,
        } | self._nouns_of(i)

    def _nouns_of(self, i: int) -> dict[str, Any]:
        if self.nouns is None:
            return {}
        return {"name_nouns": self.nouns[i], "noun_method": self.nouns.method}

    def index_text(self, i: int) -> str:
        """The text the search indexes for product ``i`` (see :func:`search.index_text`)."""
        return index_text(self.product(i))

    def index_token_ids(self, vocab: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
        """Token ids (over ``vocab``, extended in place) of every product's indexed text.

        Returns ``(flat, lengths)``: all documents' ids concatenated, and each one's length.
        Equivalent to ``tokenize(self.index_text(i))`` for every ``i``, but assembled from the
        pre-tokenised pieces of the vocabulary tables (no text is rendered), which is what makes
        indexing a million products take seconds rather than minutes.
        """

        def ids(text: str) -> list[int]:
            return [vocab.setdefault(t, len(vocab)) for t in tokenize(text)]

        def parts_ids(parts: list[tuple[bool, str]]) -> list[Any]:
            return [x if is_slot else ids(x) for is_slot, x in parts]

        cats = [V.CATEGORIES[t.category] for t in TYPES]
        brand_t = [[ids(b) for b in c["brands"]] for c in cats]
        adj_t = [[ids(a) for a in c["adjectives"]] for c in cats]
        type_t = [ids(t.name) for t in TYPES]
        attr_t = [ids(a) for a in ATTRIBUTES]
        opt_t = [[[ids(v) for v in V.OPTION_POOLS[pool]] for _, pool in t.options] for t in TYPES]
        opt_name_t = [[ids(name) for name, _ in t.options] for t in TYPES]
        desc_t = [parts_ids(p) for p in _DESC_PARTS]
        bullet_t = [parts_ids(p) for p in _BULLET_PARTS]
        n_desc, n_bullet = len(desc_t), len(bullet_t)

        a = self.arrays
        type_l = np.asarray(a["type_id"]).tolist()
        brand_l = np.asarray(a["brand"]).tolist()
        adj_l = np.asarray(a["adj"]).tolist()
        attrs_l = np.asarray(a["attrs"]).tolist()
        mask_l = np.asarray(a["optmask"]).tolist()
        var_l = np.asarray(a["variant"]).tolist()
        flat: list[int] = []
        lengths = np.empty(self._n, dtype=np.int64)
        for i in range(self._n):
            t, v = type_l[i], var_l[i]
            at = [attr_t[x] for x in attrs_l[i] if x >= 0]
            slot = {
                "brand": brand_t[t][brand_l[i]],
                "type": type_t[t],
                "adj": adj_t[t][adj_l[i][0]],
                "a0": at[0],
                "a1": at[1],
                "a2": at[2] if len(at) > 2 else at[0],
                "A0": at[0],
                "A1": at[1],
            }
            start = len(flat)
            flat += slot["brand"]
            flat += slot["adj"]
            if not v & 1:
                flat += adj_t[t][adj_l[i][1]]
            flat += type_t[t]
            flat += at[0]
            if v & 1:
                flat += at[1]
            for piece in desc_t[(v >> 1) % n_desc]:
                flat += slot[piece] if isinstance(piece, str) else piece
            for piece in bullet_t[((v >> 5) % n_bullet)]:
                flat += slot[piece] if isinstance(piece, str) else piece
            for s_idx, values in enumerate(opt_t[t]):
                flat += opt_name_t[t][
                    s_idx
                ]  # option text "name: v1, v2, and ...": "and" is a stop word
                m = mask_l[i][s_idx]
                for k, val in enumerate(values):
                    if m >> k & 1:
                        flat += val
            lengths[i] = len(flat) - start
        return np.asarray(flat, dtype=np.int32), lengths


__all__ = [
    "ATTRIBUTES",
    "GeneratedCatalogue",
    "NO_PRICE_CAP",
    "PRICE_RANGE",
    "tokenize",
    "vocabulary_hash",
]
