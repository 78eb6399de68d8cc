"""A shop = catalogue + search index + goals, built once, cached on disk, shared in-process.

The on-disk cache lives under ``$EMPO_GYM_CACHE/webshop`` (default: the platform's user cache
directory for ``empo-gym``), one folder per key: for the generated catalogue the key covers the
generator's tables and version, the size and the seed; for original data files it covers the
files' paths, sizes and modification times, the size and the seed; both cover the cache format
and the noun extractor. Every folder holds the products' nouns (computed once, at build, so no
episode runs spaCy) and the search index. A folder is written under a temporary name and
renamed into place (atomic), under a file lock so concurrent processes build it once. Arrays are
``.npy`` (memory-mapped when loaded, so processes share pages), the index is bm25s' own format,
metadata is JSON; nothing is pickled. Within a process, every env asks :func:`get_shop` and gets
the same read-only :class:`Shop`, so N envs cost about one catalogue.

Example:
    >>> import tempfile
    >>> shop = get_shop(num_products=50, cache_dir=tempfile.mkdtemp())
    >>> len(shop.catalogue), shop.noun_method.split("-")[0]
    (50, 'spacy:en_core_web_sm')
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs
from filelock import FileLock

from empo_gym.atomic_io import atomic_dir, write_json_atomic
from empo_gym.webshop.catalogue import GeneratedCatalogue, vocabulary_hash
from empo_gym.webshop.goals import GOAL_SOURCES, GeneratedGoals, GoalSet
from empo_gym.webshop.nouns import NounTable, expected_noun_method
from empo_gym.webshop.search import SearchIndex, tokenize

CACHE_FORMAT = 3


@dataclass
class Shop:
    """Everything an env reads: catalogue, search index and goal lists (read-only)."""

    key: str
    catalogue: Any
    index: SearchIndex
    goal_sets: dict[str, GoalSet]
    noun_method: str
    source: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """One line naming the catalogue (generated, or the data files) and its size.

        Example:
            >>> Shop("k", [0] * 3, None, {}, "m", {"kind": "generated", "seed": 0}).describe()
            'generated (3 products, seed 0)'
        """
        n = len(self.catalogue)
        if self.source.get("kind") == "original":
            return f"original data {self.source['data_dir']} ({n} products)"
        return f"generated ({n} products, seed {self.source.get('seed', 0)})"

    def goals(self, source: str) -> GoalSet:
        """The goal set of ``source`` (``synthetic`` or ``human``)."""
        if source not in self.goal_sets:
            raise ValueError(
                f"goal_source {source!r} is not available for this catalogue; available: "
                f"{', '.join(sorted(self.goal_sets))}"
            )
        return self.goal_sets[source]


_SHOPS: dict[str, Shop] = {}
_LOCK = threading.Lock()


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The WebShop cache folder (``cache_dir``, else ``$EMPO_GYM_CACHE``, else user cache)."""
    base = cache_dir or os.environ.get("EMPO_GYM_CACHE") or platformdirs.user_cache_dir("empo-gym")
    return Path(base).expanduser() / "webshop"


def generated_key(num_products: int, seed: int) -> str:
    """Cache folder name of a generated catalogue."""
    h = hashlib.sha256(
        f"{CACHE_FORMAT}|{vocabulary_hash()}|{num_products}|{seed}|{expected_noun_method()}".encode()
    ).hexdigest()
    return f"gen-n{num_products}-s{seed}-{h[:16]}"


def _validate(num_products: Any, seed: Any, data_dir: Any) -> None:
    if num_products is None and data_dir is not None:
        return  # all the products of the data files
    if (
        isinstance(num_products, bool)
        or not isinstance(num_products, int)
        or not (1 <= num_products <= 10_000_000)
    ):
        allowed = " (or None: every product of data_dir)" if data_dir is not None else ""
        raise ValueError(
            f"num_products must be an int in 1..10,000,000{allowed} (default 1000), "
            f"got {num_products!r}"
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"catalogue_seed must be a non-negative int, got {seed!r}")


def original_key(files: dict[str, Path], num_products: int | None, seed: int) -> str:
    """Cache folder name of original data files (their paths, sizes and mtimes, not bytes)."""
    from empo_gym.webshop.loader import fingerprint

    h = hashlib.sha256(
        f"{CACHE_FORMAT}|{fingerprint(files)}|{num_products}|{seed}|{expected_noun_method()}".encode()
    ).hexdigest()
    return f"orig-n{num_products or 'all'}-s{seed}-{h[:16]}"


def get_shop(
    num_products: int | None = 1000,
    catalogue_seed: int = 0,
    data_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    goal_source: str = "synthetic",
) -> Shop:
    """The shared :class:`Shop` for these settings (built and cached on first use).

    Args:
        num_products: Catalogue size (generated: exactly this many; data files: the first
            ``num_products``, None for all of them).
        catalogue_seed: Seed of the generated catalogue (and of prices / price caps).
        data_dir: Folder of the original WebShop files; None uses the generated catalogue.
        cache_dir: Cache folder override (default ``$EMPO_GYM_CACHE`` / user cache dir).
        goal_source: The goals the caller needs (checked to exist for data files).
    """
    _validate(num_products, catalogue_seed, data_dir)
    if goal_source not in GOAL_SOURCES:
        raise ValueError(f"unknown goal_source {goal_source!r}; expected one of {GOAL_SOURCES}")
    root = cache_root(cache_dir)
    if data_dir is None:
        assert num_products is not None
        folder = root / generated_key(num_products, catalogue_seed)
        loader = functools.partial(_generated_shop, root, num_products, catalogue_seed)
    else:
        from empo_gym.webshop.loader import data_files

        files = data_files(data_dir, num_products, goal_source)
        folder = root / original_key(files, num_products, catalogue_seed)
        loader = functools.partial(_original_shop, folder, files, num_products, catalogue_seed)
    key = str(folder)
    with _LOCK:
        shop = _SHOPS.get(key)
        if shop is None:
            shop = loader()
            shop.key = key
            _SHOPS[key] = shop
        return shop


def clear_memory_cache() -> None:
    """Forget the in-process shops (tests, benchmarks)."""
    with _LOCK:
        _SHOPS.clear()


def _atomic_build(final: Path, build) -> None:
    """Run ``build(tmp_dir)`` and publish the result as ``final`` (:func:`atomic_dir`, under a
    file lock); a broken folder (no meta.json) is replaced."""
    final.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(final) + ".lock"):
        if (final / "meta.json").is_file():
            return
        with atomic_dir(final) as tmp:
            meta = build(tmp)
            write_json_atomic(tmp / "meta.json", meta, ensure_ascii=False)


def build_generated(root: Path, num_products: int, seed: int) -> Path:
    """Build the generated catalogue's cache folder (if absent) and return its path."""
    final = root / generated_key(num_products, seed)

    def build(tmp: Path) -> dict[str, Any]:
        t0 = time.perf_counter()
        cat = GeneratedCatalogue.generate(num_products, seed)
        cat.save(tmp / "catalogue")
        t1 = time.perf_counter()
        NounTable.extract(cat.title(i) for i in range(num_products)).save(tmp / "nouns")
        t_nouns = time.perf_counter()
        for source in GOAL_SOURCES:
            arrays = GeneratedGoals.build_arrays(cat, source)
            (tmp / f"goals-{source}").mkdir()
            for k, v in arrays.items():
                np.save(tmp / f"goals-{source}" / f"{k}.npy", v, allow_pickle=False)
        t2 = time.perf_counter()
        vocab: dict[str, int] = {}
        flat, lengths = cat.index_token_ids(vocab)
        t3 = time.perf_counter()
        index = SearchIndex.build_from_flat(flat, lengths, vocab)
        del flat
        index.save(tmp / "index")
        t4 = time.perf_counter()
        return {
            "kind": "generated",
            "format": CACHE_FORMAT,
            "num_products": num_products,
            "seed": seed,
            "vocabulary_hash": vocabulary_hash(),
            "timings_s": {
                "generate": t1 - t0,
                "nouns": t_nouns - t1,
                "goals": t2 - t_nouns,
                "tokenize": t3 - t2,
                "index": t4 - t3,
            },
        }

    _atomic_build(final, build)
    return final


def _read_meta(folder: Path) -> dict[str, Any]:
    path = folder / "meta.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"cache file {path} is unreadable ({e}); delete {folder}") from e


def _generated_shop(root: Path, num_products: int, seed: int) -> Shop:
    folder = build_generated(root, num_products, seed)
    meta = _read_meta(folder)
    cat = GeneratedCatalogue.load(folder / "catalogue", seed)
    cat.nouns = NounTable.load(folder / "nouns")
    goal_sets: dict[str, GoalSet] = {}
    for source in GOAL_SOURCES:
        d = folder / f"goals-{source}"
        arrays = {k: np.load(d / f"{k}.npy", mmap_mode="r") for k in ("product", "combo")}
        goal_sets[source] = GeneratedGoals(cat, arrays["product"], arrays["combo"], source)
    index = SearchIndex.load(folder / "index")
    return Shop(
        key=str(folder),
        catalogue=cat,
        index=index,
        goal_sets=goal_sets,
        noun_method=cat.nouns.method,
        source={
            "kind": "generated",
            **{k: meta[k] for k in ("num_products", "seed", "vocabulary_hash")},
        },
    )


def _index_texts(texts, folder: Path) -> None:
    SearchIndex.build(tokenize(t) for t in texts).save(folder / "index")


def _original_shop(
    folder: Path, files: dict[str, Path], num_products: int | None, seed: int
) -> Shop:
    from empo_gym.webshop.loader import OriginalCatalogue, build_cache, open_goals

    def build(tmp: Path) -> dict[str, Any]:
        meta = build_cache(tmp, files, num_products, seed, _index_texts)
        return {**meta, "format": CACHE_FORMAT, "seed": seed}

    _atomic_build(folder, build)
    meta = _read_meta(folder)
    cat = OriginalCatalogue(folder)
    return Shop(
        key=str(folder),
        catalogue=cat,
        index=SearchIndex.load(folder / "index"),
        goal_sets=open_goals(cat, folder),
        noun_method=cat.noun_method or "given",
        source={
            "kind": "original",
            "data_dir": str(files["products"].parent),
            "files": meta["files"],
            "num_products": len(cat),
        },
    )
