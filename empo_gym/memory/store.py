"""The tip memory: per-partition entries keyed by state embeddings, retrieved by similarity.

Semantics (EMPO²'s memory):

* one *partition* per training task instance (a string such as ``"boil/3"``; see
  :func:`~empo_gym.memory.episode.memory_partition`); partitions never see each other's entries;
* an entry is de-duplicated by content -- its ``(key, text)`` pair: adding an entry whose key
  state and memory text already exist in the partition is a no-op (the older copy keeps its
  place);
* each partition is a FIFO of at most ``capacity`` entries (default 1000); the oldest entry goes
  first;
* retrieval: candidates whose cosine similarity to the query state exceeds ``threshold`` (0.5),
  ranked by stored score (ties: newer first), the top ``k`` (10).

Persistence is a single safetensors file (embeddings as tensors, entries as JSON in the header;
no pickle), written to a temporary file and moved into place with ``os.replace``, so a reader
or a crashed writer never sees half a file. The header holds a SHA-256 of the embeddings and
entries, so a damaged file (a flipped byte) is refused on load instead of silently retrieving
nothing; non-finite embeddings are refused on add and on load. ``save(path, merge=True)``
holds a file lock (``path + ".lock"``) and merges the file's entries first, so several
processes can append to one memory file without losing each other's entries.

File versions: ``2`` (written) keeps the partitions under the header key ``partitions``, each
entry's under ``partition``; ``1`` (files written before partitions were renamed from "slots")
used ``slots`` / ``slot`` and still loads.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from empo_gym.atomic_io import write_bytes_atomic
from empo_gym.memory.embedders import Embedder, cosine_matrix, make_embedder, normalize_rows
from empo_gym.spaces import replace_unencodable

__all__ = ["FILE_FORMAT", "MemoryEntry", "MemoryFileError", "MemoryStore"]

#: ``format`` marker in the header of memory files.
FILE_FORMAT = "empo_gym.memory"
_FILE_VERSION = "2"
#: Versions :meth:`MemoryStore.load` reads (1: partitions named "slots" in the header).
_READ_VERSIONS = ("1", "2")


class MemoryFileError(ValueError):
    """A memory file is corrupt, foreign, or made with an incompatible embedder."""


def _replace_unencodable_in(value: Any) -> Any:
    """``value`` (JSON-like) with unencodable code points replaced in every string."""
    if isinstance(value, str):
        return replace_unencodable(value)
    if isinstance(value, dict):
        return {_replace_unencodable_in(k): _replace_unencodable_in(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_replace_unencodable_in(v) for v in value)
    return value


@dataclass(frozen=True)
class MemoryEntry:
    """One memory: the text shown to the agent, keyed by the state it was recorded in.

    Attributes:
        text: The memory as injected into a prompt (tip + action + final score).
        key: The state text whose embedding retrieves this entry.
        score: Final score of the trajectory (retrieval ranks by it).
        partition: Memory partition the entry belongs to (see
            :func:`~empo_gym.memory.episode.memory_partition`).
        step: Step index inside its trajectory.
        action: The action taken at that step.
        metadata: Free JSON-serialisable data (episode id, env name, ...).

    Example:
        >>> MemoryEntry("tip", key="You see a door.", score=40.0, partition="t/0").partition
        't/0'
    """

    text: str
    key: str
    score: float
    partition: str
    step: int = 0
    action: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("text", "key", "partition", "action"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(
                    f"MemoryEntry.{name} must be a str, got {type(getattr(self, name)).__name__}"
                )
            # lone surrogates cannot be written to a file: stored as U+FFFD
            object.__setattr__(self, name, replace_unencodable(getattr(self, name)))
        try:
            object.__setattr__(self, "score", float(self.score))
            object.__setattr__(self, "step", int(self.step))
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"MemoryEntry.score must be a number and step an int, got {self.score!r}, "
                f"{self.step!r}"
            ) from exc
        if not isinstance(self.metadata, dict):
            raise TypeError(f"MemoryEntry.metadata must be a dict, got {self.metadata!r}")
        object.__setattr__(self, "metadata", _replace_unencodable_in(self.metadata))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MemoryEntry:
        """The entry of :meth:`to_json`'s dict (a version-1 file's ``slot`` key is read too).

        Example:
            >>> old = {"text": "t", "key": "k", "score": 1.0, "slot": "boil/0"}
            >>> MemoryEntry.from_json(old).partition
            'boil/0'
        """
        data = dict(data)
        if "slot" in data and "partition" not in data:
            data["partition"] = data.pop("slot")
        return cls(**data)

    def to_json(self) -> dict[str, Any]:
        """The entry as a JSON-serialisable dict."""
        return {
            "text": self.text,
            "key": self.key,
            "score": self.score,
            "partition": self.partition,
            "step": self.step,
            "action": self.action,
            "metadata": self.metadata,
        }


class _Partition:
    """Ring buffer of one partition's entries with a preallocated embedding matrix."""

    __slots__ = ("cap", "emb", "scores", "seq", "entries", "index", "n", "head")

    def __init__(self, cap: int, dim: int):
        self.cap = cap
        self.emb = np.zeros((min(cap, 64), dim), dtype=np.float32)  # grows by doubling
        self.scores = np.zeros(self.emb.shape[0], dtype=np.float64)
        self.seq = np.zeros(self.emb.shape[0], dtype=np.int64)
        self.entries: list[MemoryEntry | None] = [None] * self.emb.shape[0]
        self.index: dict[tuple[str, str], int] = {}
        self.n = 0
        self.head = 0  # position of the oldest entry once the ring is full

    def _grow(self) -> None:
        size = min(self.cap, self.emb.shape[0] * 2)
        extra = size - self.emb.shape[0]
        self.emb = np.concatenate([self.emb, np.zeros((extra, self.emb.shape[1]), np.float32)])
        self.scores = np.concatenate([self.scores, np.zeros(extra)])
        self.seq = np.concatenate([self.seq, np.zeros(extra, np.int64)])
        self.entries.extend([None] * extra)

    def add(self, entry: MemoryEntry, vec: np.ndarray, seq: int) -> bool:
        content = (entry.key, entry.text)
        if content in self.index:
            return False
        if self.n < self.cap:
            if self.n == self.emb.shape[0]:
                self._grow()
            pos = self.n
            self.n += 1
        else:
            pos = self.head
            old = self.entries[pos]
            assert old is not None
            del self.index[(old.key, old.text)]
            self.head = (self.head + 1) % self.cap
        self.emb[pos] = vec
        self.scores[pos] = entry.score
        self.seq[pos] = seq
        self.entries[pos] = entry
        self.index[content] = pos
        return True

    def order(self) -> list[int]:
        """Positions oldest first."""
        if self.n < self.cap:
            return list(range(self.n))
        return [(self.head + i) % self.cap for i in range(self.n)]


class MemoryStore:
    """Tip memory with per-partition FIFO, content de-duplication and similarity retrieval.

    Args:
        embedder: An :class:`~empo_gym.memory.embedders.Embedder` or its name.
        capacity: Maximum entries per partition (FIFO eviction).
        threshold: Retrieval keeps candidates with cosine similarity strictly above this.
        top_k: Number of entries retrieved.

    Example:
        >>> store = MemoryStore("hashing")
        >>> store.add([
        ...     MemoryEntry("go to the kitchen first", key="You are in the hallway.",
        ...                 score=20, partition="boil/0"),
        ...     MemoryEntry("open the door", key="You are in the hallway. A door.",
        ...                 score=80, partition="boil/0"),
        ...     MemoryEntry("unrelated", key="Mars weather report", score=99, partition="boil/0"),
        ... ])
        3
        >>> [e.text for e in store.query("boil/0", "You are in the hallway.")]
        ['open the door', 'go to the kitchen first']
        >>> store.query("boil/1", "You are in the hallway.")
        []
    """

    def __init__(
        self,
        embedder: Embedder | str = "hashing",
        *,
        capacity: int = 1000,
        threshold: float = 0.5,
        top_k: int = 10,
    ):
        if not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be a positive int, got {capacity!r}")
        if not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k must be a positive int, got {top_k!r}")
        if not -1.0 <= float(threshold) <= 1.0:
            raise ValueError(f"threshold is a cosine similarity in [-1, 1], got {threshold!r}")
        self.embedder: Embedder = make_embedder(embedder)
        self.capacity = capacity
        self.threshold = float(threshold)
        self.top_k = top_k
        self._partitions: dict[str, _Partition] = {}
        self._seq = 0

    # -- inspection -----------------------------------------------------------------------
    def __len__(self) -> int:
        return sum(s.n for s in self._partitions.values())

    def partitions(self) -> list[str]:
        """Partition names that hold at least one entry (insertion order)."""
        return [name for name, s in self._partitions.items() if s.n]

    def entries(self, partition: str | None = None) -> list[MemoryEntry]:
        """Entries of ``partition`` (all partitions when None), oldest first."""
        names = self.partitions() if partition is None else [partition]
        out: list[MemoryEntry] = []
        for name in names:
            s = self._partitions.get(name)
            if s is not None:
                out.extend(s.entries[i] for i in s.order())  # type: ignore[misc]
        return out

    def embeddings(self, partition: str) -> np.ndarray:
        """Key embeddings of ``partition`` aligned with :meth:`entries` (oldest first)."""
        s = self._partitions.get(partition)
        if s is None:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        return s.emb[s.order()].copy()

    def clear(self, partition: str | None = None) -> None:
        """Remove all entries of ``partition`` (every partition when None)."""
        if partition is None:
            self._partitions.clear()
        else:
            self._partitions.pop(partition, None)

    # -- add / query ----------------------------------------------------------------------
    def _embed(self, texts: list[str]) -> np.ndarray:
        vecs = np.asarray(self.embedder(texts), dtype=np.float32)
        if vecs.shape != (len(texts), self.embedder.dim):
            raise ValueError(
                f"embedder {self.embedder.name!r} returned shape {vecs.shape}, "
                f"expected {(len(texts), self.embedder.dim)}"
            )
        _check_finite(vecs, f"embedder {self.embedder.name!r}")
        return vecs

    def _check_embeddings(self, embeddings: Any, n: int) -> np.ndarray:
        vecs = np.asarray(embeddings, dtype=np.float32)
        if vecs.shape != (n, self.embedder.dim):
            raise ValueError(
                f"embeddings must have shape {(n, self.embedder.dim)}, got {vecs.shape}"
            )
        _check_finite(vecs, "the given embeddings")
        norms = np.linalg.norm(vecs, axis=1)
        if np.any(np.abs(norms - 1.0) > 1e-4):  # keep unit rows bit-exact (identical reloads)
            vecs = normalize_rows(vecs)
        return vecs

    def add(self, entries: Iterable[MemoryEntry], embeddings: np.ndarray | None = None) -> int:
        """Add entries (one batched embedder call for their keys); return how many were new.

        Args:
            entries: Entries to add, in order (later = newer).
            embeddings: Precomputed key embeddings ``[n, dim]``; computed when None.
        """
        entries = list(entries)
        for e in entries:
            if not isinstance(e, MemoryEntry):
                raise TypeError(f"add() takes MemoryEntry objects, got {type(e).__name__}")
        if not entries:
            return 0
        if embeddings is None:
            vecs = self._embed([e.key for e in entries])
        else:
            vecs = self._check_embeddings(embeddings, len(entries))
        added = 0
        for e, v in zip(entries, vecs, strict=True):
            s = self._partitions.get(e.partition)
            if s is None:
                s = self._partitions[e.partition] = _Partition(self.capacity, self.embedder.dim)
            self._seq += 1
            added += s.add(e, v, self._seq)
        return added

    def query(self, partition: str, state: str, k: int | None = None) -> list[MemoryEntry]:
        """Entries of ``partition`` similar to ``state`` (cosine > threshold), best score first."""
        return self.query_batch([partition], [state], k=k)[0]

    def query_batch(
        self,
        partitions: Sequence[str],
        states: Sequence[str] | None = None,
        *,
        embeddings: np.ndarray | None = None,
        k: int | None = None,
        with_similarity: bool = False,
    ) -> list[list[Any]]:
        """Retrieve for several (partition, state) pairs with one embedder call.

        Args:
            partitions: Partition of each query.
            states: State text of each query (embedded in one batch), or None with
                ``embeddings``.
            embeddings: Precomputed query embeddings ``[n, dim]``.
            k: Entries per query (default :attr:`top_k`).
            with_similarity: Return ``(entry, cosine)`` pairs instead of entries.

        Returns:
            One list per query, ranked by stored score (ties: newer first), each text once.
        """
        partitions = list(partitions)
        for s in partitions:
            if not isinstance(s, str):
                raise TypeError(f"partitions are strings, got {s!r}")
        if embeddings is None:
            if states is None:
                raise ValueError("query_batch needs states or embeddings")
            states = list(states)
            if len(states) != len(partitions):
                raise ValueError(f"{len(partitions)} partitions but {len(states)} states")
            # embed only queries whose partition holds entries (empty memory costs nothing)
            held = {name for name, s in self._partitions.items() if s.n}
            live = [i for i, p in enumerate(partitions) if p in held]
            vecs = np.zeros((len(partitions), self.embedder.dim), np.float32)
            if live:
                vecs[live] = self._embed([states[i] for i in live])
        else:
            vecs = self._check_embeddings(embeddings, len(partitions))
        k = self.top_k if k is None else k
        out: list[list[Any]] = []
        for partition, v in zip(partitions, vecs, strict=True):
            s = self._partitions.get(partition)
            if s is None or s.n == 0:
                out.append([])
                continue
            sims = cosine_matrix(s.emb[: s.n], v[None, :])[:, 0]
            (cand,) = np.nonzero(sims > self.threshold)
            # rank by score desc, then newer first; a text already picked is skipped (many
            # episodes repeat a memory word for word, and a copy tells the policy nothing new
            # while costing prompt tokens)
            ranked = cand[np.lexsort((-s.seq[cand], -s.scores[cand]))]
            picked, texts = [], set()
            for i in ranked:
                if len(picked) == k:
                    break
                text = s.entries[i].text
                if text not in texts:
                    texts.add(text)
                    picked.append(i)
            if with_similarity:
                out.append([(s.entries[i], float(sims[i])) for i in picked])
            else:
                out.append([s.entries[i] for i in picked])
        return out

    def count_similar(self, partition: str, embeddings: np.ndarray, threshold: float) -> np.ndarray:
        """Number of ``partition`` entries with cosine > ``threshold`` to each query embedding."""
        vecs = self._check_embeddings(embeddings, len(embeddings))
        s = self._partitions.get(partition)
        if s is None or s.n == 0:
            return np.zeros(len(vecs), dtype=np.int64)
        return (cosine_matrix(s.emb[: s.n], vecs) > threshold).sum(axis=0)

    # -- persistence ----------------------------------------------------------------------
    def _to_bytes(self) -> bytes:
        from safetensors.numpy import save

        tensors: dict[str, np.ndarray] = {}
        partitions_meta = []
        for i, name in enumerate(self.partitions()):
            s = self._partitions[name]
            order = s.order()
            tensors[f"partition{i}"] = np.ascontiguousarray(s.emb[order])
            partitions_meta.append(
                {
                    "partition": name,
                    "tensor": f"partition{i}",
                    "entries": [s.entries[j].to_json() for j in order],  # type: ignore[union-attr]
                }
            )
        header = {
            "checksum": _checksum(tensors, partitions_meta),
            "format": FILE_FORMAT,
            "version": _FILE_VERSION,
            "embedder": self.embedder.name,
            "dim": str(self.embedder.dim),
            "capacity": str(self.capacity),
            "threshold": repr(self.threshold),
            "top_k": str(self.top_k),
            "partitions": json.dumps(partitions_meta, ensure_ascii=False),
        }
        if not tensors:  # safetensors needs no tensor, but keep one marker for clarity
            tensors["empty"] = np.zeros((0, self.embedder.dim), dtype=np.float32)
        return save(tensors, metadata=header)

    def save(self, path: str | os.PathLike[str], *, merge: bool = False) -> Path:
        """Write the store to ``path`` atomically (temp file + ``os.replace``).

        Args:
            path: Target file (conventionally ``*.memory.safetensors``).
            merge: Under a file lock, first merge the entries already in ``path`` (kept older
                than this store's), then write and adopt the merged contents: several
                processes can append to one file this way. A failed merge or write leaves
                both the file and this store unchanged.

        Returns:
            The path written.
        """
        path = Path(path)
        if not merge:
            write_bytes_atomic(path, self._to_bytes())
            return path
        from filelock import FileLock

        with FileLock(str(path) + ".lock"):
            merged = self._empty_like()
            if path.exists():
                merged = MemoryStore.load(path, self.embedder)
                merged.capacity, merged.threshold, merged.top_k = (
                    self.capacity,
                    self.threshold,
                    self.top_k,
                )
            for name in self.partitions():
                merged.add(self.entries(name), self.embeddings(name))
            write_bytes_atomic(path, merged._to_bytes())
        self._partitions, self._seq = merged._partitions, merged._seq
        return path

    def _empty_like(self) -> MemoryStore:
        return MemoryStore(
            self.embedder, capacity=self.capacity, threshold=self.threshold, top_k=self.top_k
        )

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], embedder: Embedder | str | None = None
    ) -> MemoryStore:
        """Load a store written by :meth:`save`.

        Args:
            path: The memory file.
            embedder: The embedder to query with; must have the file's embedder name and
                dimension. None: build it from the file's recorded name.

        Raises:
            MemoryFileError: (a ``ValueError``) naming the file when it is missing, corrupt, not
                a memory file, or made with a different embedder.
        """
        path = Path(path)
        try:
            from safetensors import safe_open

            with safe_open(str(path), framework="np") as f:
                header = f.metadata() or {}
                if header.get("format") != FILE_FORMAT:
                    raise MemoryFileError(
                        f"{path} is not an empo_gym memory file (no format={FILE_FORMAT!r} in its "
                        "header); pass a file written by MemoryStore.save"
                    )
                version = header.get("version")
                if version not in _READ_VERSIONS:
                    raise MemoryFileError(
                        f"{path} has memory file version {version!r}, this "
                        f"empo_gym reads versions {', '.join(_READ_VERSIONS)}"
                    )
                name, dim = header["embedder"], int(header["dim"])
                if embedder is None:
                    embedder = _embedder_from_name(name, dim, path)
                emb = make_embedder(embedder)
                if emb.name != name or emb.dim != dim:
                    raise MemoryFileError(
                        f"{path} was written with embedder {name!r} (dim {dim}); got "
                        f"{emb.name!r} (dim {emb.dim}); load it with the same embedder"
                    )
                store = cls(
                    emb,
                    capacity=int(header["capacity"]),
                    threshold=float(header["threshold"]),
                    top_k=int(header["top_k"]),
                )
                # version 1 named the partitions "slots" (the checksum covers the meta as stored)
                partitions_meta = json.loads(header["slots" if version == "1" else "partitions"])
                tensors = {m["tensor"]: f.get_tensor(m["tensor"]) for m in partitions_meta}
                stored = header.get("checksum")  # absent in files of older empo_gym versions
                if stored is not None and stored != _checksum(tensors, partitions_meta):
                    raise MemoryFileError(
                        f"{path} is corrupt: its contents do not match the checksum in its "
                        "header (a damaged copy?); restore it from a good copy or delete it"
                    )
                for partition_meta in partitions_meta:
                    name = partition_meta["slot" if version == "1" else "partition"]
                    vecs = tensors[partition_meta["tensor"]]
                    if not np.all(np.isfinite(vecs)):
                        raise MemoryFileError(
                            f"{path}: partition {name!r} has non-finite (NaN or "
                            "infinite) embeddings; expected finite vectors: the file is corrupt"
                        )
                    entries = [MemoryEntry.from_json(e) for e in partition_meta["entries"]]
                    if vecs.shape != (len(entries), dim):
                        raise MemoryFileError(
                            f"{path}: partition {name!r} has {len(entries)} entries but "
                            f"embeddings of shape {vecs.shape}"
                        )
                    store.add(entries, vecs)
        except MemoryFileError:
            raise
        except FileNotFoundError as exc:
            raise MemoryFileError(f"memory file {path} does not exist") from exc
        except Exception as exc:  # noqa: BLE001 - any parse failure is a corrupt file
            raise MemoryFileError(
                f"{path} is corrupt or not an empo_gym memory file "
                f"({type(exc).__name__}: {str(exc)[:200]})"
            ) from exc
        return store

    def __repr__(self) -> str:
        return (
            f"MemoryStore(embedder={self.embedder.name!r}, partitions={len(self.partitions())}, "
            f"entries={len(self)}, capacity={self.capacity})"
        )


def _check_finite(vecs: np.ndarray, source: str) -> None:
    """Refuse NaN / infinite embeddings (cosine similarity with them matches nothing)."""
    bad = np.flatnonzero(~np.all(np.isfinite(vecs), axis=1))
    if bad.size:
        raise ValueError(
            f"{source} has non-finite (NaN or infinite) values in row(s) {bad[:5].tolist()}; "
            "expected finite vectors: check the embedder or the vectors passed"
        )


def _checksum(tensors: dict[str, np.ndarray], partitions_meta: list[dict[str, Any]]) -> str:
    """SHA-256 over every partition's embedding bytes and entries (the file's integrity check)."""
    digest = hashlib.sha256()
    for meta in partitions_meta:
        vecs = np.ascontiguousarray(tensors[meta["tensor"]], dtype=np.float32)
        digest.update(meta["tensor"].encode() + str(vecs.shape).encode() + vecs.tobytes())
    text = json.dumps(partitions_meta, ensure_ascii=False, sort_keys=True)
    digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def _embedder_from_name(name: str, dim: int, path: Path) -> Embedder:
    if name.startswith("hashing-"):
        return make_embedder("hashing", dim=dim, bigrams=not name.endswith("-unigram"))
    if name == "minilm":
        return make_embedder("minilm")
    raise MemoryFileError(
        f"{path} was written with embedder {name!r}; pass that embedder to MemoryStore.load"
    )
