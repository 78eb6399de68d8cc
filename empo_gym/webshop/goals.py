"""Goals (what to buy) and the fixed train / eval / test splits.

Synthetic goals follow the original: one goal per product and *every* combination of its
option values (option names sorted), the product's instruction, its instruction attributes and
a price cap drawn from the next price buckets (seeded here; the original's unseeded draw is a
known reproducibility bug). Each goal's sampling weight is the mean inverse frequency of its
attributes. Human-style goals (``goal_source="human"``) phrase the request freely and name only
some options. All goals are shuffled once with a fixed seed (233, as the original) and split:
test = goals[0:500], eval = goals[500:1500], train = goals[1500:].

Example:
    >>> split_range("test", 10_000), split_range("eval", 10_000), split_range("train", 10_000)
    ((0, 500), (500, 1500), (1500, 10000))
    >>> normalize_split("dev")
    'eval'
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from empo_gym.webshop import vocab as V
from empo_gym.webshop.catalogue import NO_PRICE_CAP, TYPES, GeneratedCatalogue, _article, _join_and

SPLITS = ("train", "eval", "test")
_ARTICLE = re.compile(r"\b(a|an) (\w)")


def _fix_article(m: re.Match[str]) -> str:
    return ("an " if m.group(2) in "aeiou" else "a ") + m.group(2)


#: Accepted aliases (the CLI / harness call the eval split "dev").
SPLIT_ALIASES = {"dev": "eval", "valid": "eval", "validation": "eval"}
SHUFFLE_SEED = 233
TEST_END, EVAL_END = 500, 1500
GOAL_SOURCES = ("synthetic", "human")


def normalize_split(split: str) -> str:
    """Canonical split name, or ValueError naming the accepted ones."""
    if not isinstance(split, str):
        raise ValueError(f"split must be a str, got {split!r}; expected one of {SPLITS}")
    s = SPLIT_ALIASES.get(split.lower(), split.lower())
    if s not in SPLITS:
        raise ValueError(
            f"unknown split {split!r}; expected one of: train, eval, test (alias: dev = eval)"
        )
    return s


def split_range(split: str, num_goals: int) -> tuple[int, int]:
    """``[start, stop)`` of ``split`` among ``num_goals`` shuffled goals."""
    s = normalize_split(split)
    if s == "test":
        return 0, min(TEST_END, num_goals)
    if s == "eval":
        return min(TEST_END, num_goals), min(EVAL_END, num_goals)
    return min(EVAL_END, num_goals), num_goals


def goal_nouns(product: Mapping[str, Any]) -> dict[str, Any]:
    """The nouns of ``product``'s name a goal carries for the reward's type match (with the
    extractor that made them), when the shop computed them; else nothing.

    Example:
        >>> goal_nouns({"name_nouns": ["shirt"], "noun_method": "spacy"}), goal_nouns({})
        ({'name_nouns': ['shirt'], 'noun_method': 'spacy'}, {})
    """
    return {k: product[k] for k in ("name_nouns", "noun_method") if k in product}


def price_text(price_upper: float) -> str:
    """The instruction's price clause (empty when there is no cap)."""
    if price_upper >= NO_PRICE_CAP:
        return ""
    return f", and price lower than {price_upper:.2f} dollars"


_PRICE_CLAUSE = re.compile(r",? and price lower than [\d.]+ dollars$")


def strip_price(instruction: str) -> str:
    """The instruction without its price clause (what a plain search query keeps).

    Example:
        >>> strip_price("i need a red hoodie, and price lower than 40.00 dollars")
        'i need a red hoodie'
    """
    return _PRICE_CLAUSE.sub("", instruction.strip())


class GoalSet:
    """An indexable, shuffled goal list (``goal(i)`` -> goal dict) with split bookkeeping."""

    source: str = "synthetic"

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def goal(self, i: int) -> dict[str, Any]:  # pragma: no cover - abstract
        """Goal ``i`` of the shuffled list."""
        raise NotImplementedError

    def goal_key(self, i: int) -> tuple:
        """Identity of goal ``i`` (product and options) used by the split-disjointness check."""
        g = self.goal(i)
        opts = g["goal_options"]
        opts = sorted(opts.items()) if isinstance(opts, Mapping) else sorted(opts)
        return (g["asin"], tuple(opts), g["instruction_text"])

    def split_size(self, split: str) -> int:
        """Number of goals in ``split``."""
        a, b = split_range(split, len(self))
        return b - a

    def split_goal_index(self, split: str, position: int) -> int:
        """Index (into the shuffled list) of the ``position``-th goal of ``split``."""
        a, b = split_range(split, len(self))
        if not 0 <= position < b - a:
            raise ValueError(
                f"goal_index {position!r} out of range for split {split!r}: expected 0..{b - a - 1}"
            )
        return a + position

    def weights(self, split: str) -> np.ndarray:
        """Sampling weights of the split's goals (the original's inverse attribute frequency)."""
        a, b = split_range(split, len(self))
        return np.ones(b - a)

    def check_splits_disjoint(self, limit: int | None = 20_000) -> None:
        """Raise ValueError if a goal (product, options, instruction) is in two splits.

        Only the first ``limit`` goals of train are compared (None: all of them).
        """
        seen: dict[tuple, str] = {}
        for split in ("test", "eval", "train"):
            a, b = split_range(split, len(self))
            if split == "train" and limit is not None:
                b = min(b, a + limit)
            for i in range(a, b):
                key = self.goal_key(i)
                other = seen.get(key)
                if other is not None and other != split:
                    raise ValueError(f"goal {key!r} is in both split {other!r} and {split!r}")
                seen[key] = split


class GeneratedGoals(GoalSet):
    """Goals over a :class:`GeneratedCatalogue`, stored as two int32 arrays (product, combo)."""

    def __init__(
        self, catalogue: GeneratedCatalogue, product: np.ndarray, combo: np.ndarray, source: str
    ):
        self.catalogue = catalogue
        self.product_of = product
        self.combo_of = combo
        self.source = source
        self._weights: dict[str, np.ndarray] = {}

    @staticmethod
    def build_arrays(catalogue: GeneratedCatalogue, source: str) -> dict[str, np.ndarray]:
        """Goal arrays ``{"product", "combo"}`` in shuffled order."""
        if source not in GOAL_SOURCES:
            raise ValueError(f"unknown goal_source {source!r}; expected one of {GOAL_SOURCES}")
        n = len(catalogue)
        n_combos = np.asarray(catalogue.arrays["n_combos"], dtype=np.int64)
        if source == "synthetic":
            product = np.repeat(np.arange(n, dtype=np.int32), n_combos)
            starts = np.cumsum(n_combos) - n_combos
            combo = (np.arange(product.size, dtype=np.int64) - starts[product]).astype(np.int32)
        else:
            product = np.arange(n, dtype=np.int32)
            variant = np.asarray(catalogue.arrays["variant"], dtype=np.int64)
            combo = ((variant >> 7) % n_combos).astype(np.int32)
        perm = np.random.default_rng(SHUFFLE_SEED).permutation(product.size)
        return {"product": product[perm], "combo": combo[perm]}

    def __len__(self) -> int:
        return int(self.product_of.size)

    def _options(self, p: dict[str, Any], combo: int) -> dict[str, str]:
        names = sorted(p["options"])
        radices = [len(p["options"][k]) for k in names]
        chosen: dict[str, str] = {}
        for name, r in zip(reversed(names), reversed(radices), strict=True):
            combo, k = divmod(combo, r)
            chosen[name] = p["options"][name][k]
        return {k: chosen[k] for k in names}

    def goal(self, i: int) -> dict[str, Any]:
        """Goal ``i`` as the original's goal dict (plus ``product_index`` and the nouns)."""
        i = int(i)
        pi = int(self.product_of[i])
        cat = self.catalogue
        p = cat.product(pi)
        variant = int(cat.arrays["variant"][pi])
        t = TYPES[int(cat.arrays["type_id"][pi])]
        opts = self._options(p, int(self.combo_of[i]))
        ins_attrs = p["instruction_attributes"]
        attrs_text = _join_and(ins_attrs)
        price_upper = float(cat.arrays["price_upper"][pi])
        if self.source == "synthetic":
            template = V.INSTRUCTION_TEMPLATES[(variant >> 16) % len(V.INSTRUCTION_TEMPLATES)]
            base = template.format(art=_article(t.name, attrs_text), attrs=attrs_text, type=t.name)
            option_text = ", and ".join(f"{k}: {v}" for k, v in opts.items())
            text = base + (" with " + option_text if option_text else "")
            goal_options: dict[str, str] | list[str] = opts
        else:
            names = list(opts)
            keep_mask = (variant >> 20) % (2 ** len(names)) or 1
            kept = [n for k, n in enumerate(names) if keep_mask >> k & 1]
            phrase = " and ".join(
                f"{opts[n]} {'color' if n == 'color' else n.replace(' name', '')}" for n in kept
            )
            template = V.HUMAN_INSTRUCTION_TEMPLATES[(variant >> 24) % 4]
            text = template.format(
                art=_article(t.name, attrs_text),
                attrs=attrs_text,
                type=t.name,
                opts=f" in {phrase}" if phrase else "",
            )
            text = text.rstrip("?")
            goal_options = [opts[n] for n in kept]
        text = _ARTICLE.sub(_fix_article, " ".join(text.split())) + price_text(price_upper)
        return {
            "asin": p["asin"],
            "product_index": pi,
            "category": p["category"],
            "query": p["query"],
            "name": p["Title"],
            "product_category": p["product_category"],
            "instruction_text": text,
            "attributes": list(ins_attrs),
            "price_upper": price_upper,
            "goal_options": goal_options,
            **goal_nouns(p),
        }

    def weights(self, split: str) -> np.ndarray:
        """Inverse-attribute-frequency weights of the split's goals (cached per split)."""
        if split in self._weights:
            return self._weights[split]
        if self.source == "human":  # the original gives human goals weight 1
            return super().weights(split)
        cat = self.catalogue
        attrs = np.asarray(cat.arrays["attrs"], dtype=np.int64)
        n_ins = np.asarray(cat.arrays["n_ins"], dtype=np.int64)
        per_goal = (
            np.asarray(cat.arrays["n_combos"], dtype=np.float64)
            if self.source == "synthetic"
            else np.ones(len(cat))
        )
        ins = np.arange(attrs.shape[1])[None, :] < n_ins[:, None]
        cnt = np.bincount(
            attrs[ins],
            weights=np.broadcast_to(per_goal[:, None], attrs.shape)[ins],
            minlength=int(attrs.max()) + 1,
        )
        inv = np.where(ins, 1.0 / np.maximum(cnt[np.maximum(attrs, 0)], 1), 0.0)
        w_product = inv.sum(1) / np.maximum(n_ins, 1)
        a, b = split_range(split, len(self))
        w = w_product[np.asarray(self.product_of[a:b])]
        self._weights[split] = w
        return w


class ListGoals(GoalSet):
    """Goals held as a list of dicts (original data files), shuffled like the original."""

    def __init__(self, goals: Sequence[dict[str, Any]], source: str, shuffle: bool = True):
        goals = list(goals)
        if shuffle:
            # the original: random.seed(233); random.shuffle(goals)
            random.Random(SHUFFLE_SEED).shuffle(goals)
        self._goals = goals
        self.source = source

    def __len__(self) -> int:
        return len(self._goals)

    def goal(self, i: int) -> dict[str, Any]:
        """Goal ``i`` of the shuffled list."""
        return self._goals[int(i)]

    def weights(self, split: str) -> np.ndarray:
        """The goals' ``weight`` fields for ``split``."""
        a, b = split_range(split, len(self))
        return np.array([g.get("weight", 1.0) for g in self._goals[a:b]], dtype=np.float64)
