"""Count-based novelty (intrinsic) reward over state embeddings.

EMPO²'s intrinsic exploration reward: a state is novel when its
embedding is not similar to the states already seen; ``r_int = 1 / (n + 1)`` where ``n`` counts
the stored states with cosine similarity above ``threshold``. Every scored state is then stored
(revisits make a state less novel). States are counted per slot (task instance).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from empo_gym.memory.embedders import Embedder, cosine_matrix, make_embedder, normalize_rows

__all__ = ["NoveltyReward"]


class NoveltyReward:
    """``r = scale / (n + 1)``, n = similar states already seen in the slot.

    Args:
        embedder: Embedder or its name.
        threshold: Cosine similarity above which a stored state counts as "the same" (the spec
            gives no figure; 0.5 matches the memory retrieval threshold).
        scale: Multiplier of the reward (a setting in EMPO²).
        capacity: States kept per slot (FIFO), bounding memory and time.

    Example:
        >>> nov = NoveltyReward("hashing")
        >>> nov("task/0", ["You are in the kitchen.", "You are in the kitchen."]).tolist()
        [1.0, 0.5]
        >>> nov("task/0", ["A completely different garden view"]).tolist()
        [1.0]
        >>> nov("task/1", ["You are in the kitchen."]).tolist()
        [1.0]
    """

    def __init__(
        self,
        embedder: Embedder | str = "hashing",
        *,
        threshold: float = 0.5,
        scale: float = 1.0,
        capacity: int = 10_000,
    ):
        if not -1.0 <= float(threshold) <= 1.0:
            raise ValueError(f"threshold is a cosine similarity in [-1, 1], got {threshold!r}")
        if not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be a positive int, got {capacity!r}")
        self.embedder: Embedder = make_embedder(embedder)
        self.threshold = float(threshold)
        self.scale = float(scale)
        self.capacity = capacity
        self._seen: dict[str, _RingBuffer] = {}

    def __call__(
        self,
        slot: str,
        states: Sequence[str],
        embeddings: np.ndarray | None = None,
    ) -> np.ndarray:
        """Score ``states`` in order (each sees the ones before it) and remember them.

        Args:
            slot: Task slot.
            states: State texts.
            embeddings: Precomputed embeddings ``[n, dim]`` (skips the embedder).

        Returns:
            float32 rewards, one per state.
        """
        if not isinstance(slot, str):
            raise TypeError(f"slot must be a str, got {slot!r}")
        states = list(states)
        if embeddings is None:
            vecs = np.asarray(self.embedder(states), dtype=np.float32)
        else:
            vecs = np.asarray(embeddings, dtype=np.float32)
            # the embedder's unit rows are kept bit-exact: a state scored from the vector its
            # recorder computed counts exactly as one the embedder is asked for again
            if vecs.ndim != 2 or np.any(np.abs(np.linalg.norm(vecs, axis=1) - 1.0) > 1e-4):
                vecs = normalize_rows(vecs)
        if vecs.shape != (len(states), self.embedder.dim):
            raise ValueError(
                f"embeddings must have shape {(len(states), self.embedder.dim)}, got {vecs.shape}"
            )
        buf = self._seen.get(slot)
        if buf is None:
            buf = self._seen[slot] = _RingBuffer(self.capacity, self.embedder.dim)
        seen = buf.view()
        n_prev = (cosine_matrix(seen, vecs) > self.threshold).sum(axis=0) if len(seen) else 0
        # similarity among the new states themselves: state i sees states j < i
        within = np.tril(cosine_matrix(vecs, vecs) > self.threshold, k=-1).sum(axis=1)
        counts = n_prev + within
        buf.extend(vecs)
        return (self.scale / (counts + 1.0)).astype(np.float32)

    def count(self, slot: str) -> int:
        """States remembered for ``slot``."""
        buf = self._seen.get(slot)
        return 0 if buf is None else buf.n

    def state_dict(self) -> dict[str, tuple[np.ndarray, int]]:
        """The remembered states, ``{slot: (rows, ring position)}`` (training checkpoints)."""
        return {slot: (buf.view().copy(), buf.pos) for slot, buf in self._seen.items()}

    def load_state_dict(self, state: dict[str, tuple[np.ndarray, int]]) -> None:
        """Replace the remembered states with those :meth:`state_dict` returned.

        Example:
            >>> nov = NoveltyReward("hashing"); _ = nov("t", ["a red room"])
            >>> fresh = NoveltyReward("hashing"); fresh.load_state_dict(nov.state_dict())
            >>> fresh("t", ["a red room"]).tolist()
            [0.5]
        """
        self._seen.clear()
        for slot, (rows, pos) in state.items():
            buf = self._seen[slot] = _RingBuffer(self.capacity, self.embedder.dim)
            buf.extend(np.asarray(rows, dtype=np.float32))
            buf.pos = int(pos) if buf.n == self.capacity else 0

    def save(self, path: str | Path) -> None:
        """Write the remembered states to one safetensors file (slot names in its metadata).

        Not atomic by itself: the trainer writes it inside its atomic checkpoint directory.
        """
        from safetensors.numpy import save_file

        state = self.state_dict()
        tensors = {f"slot{i}": rows for i, (rows, _) in enumerate(state.values())}
        slots = [[slot, f"slot{i}", pos] for i, (slot, (_, pos)) in enumerate(state.items())]
        save_file(tensors, str(path), metadata={"slots": json.dumps(slots)})

    def load(self, path: str | Path) -> None:
        """Replace the remembered states with those :meth:`save` wrote to ``path``."""
        from safetensors import safe_open

        with safe_open(str(path), framework="np") as f:
            slots = json.loads((f.metadata() or {})["slots"])
            self.load_state_dict({s: (f.get_tensor(t), pos) for s, t, pos in slots})

    def reset(self, slot: str | None = None) -> None:
        """Forget the states of ``slot`` (all slots when None)."""
        if slot is None:
            self._seen.clear()
        else:
            self._seen.pop(slot, None)


class _RingBuffer:
    """Rows kept FIFO up to ``cap``; order is irrelevant for counting."""

    def __init__(self, cap: int, dim: int):
        self.cap = cap
        self.data = np.zeros((min(cap, 64), dim), np.float32)
        self.n = 0
        self.pos = 0

    def view(self) -> np.ndarray:
        return self.data[: self.n]

    def extend(self, rows: np.ndarray) -> None:
        for row in rows[-self.cap :]:
            if self.n < self.cap:
                if self.n == len(self.data):
                    extra = min(self.cap, 2 * len(self.data)) - len(self.data)
                    self.data = np.concatenate([self.data, np.zeros((extra, self.data.shape[1]))])
                    self.data = self.data.astype(np.float32, copy=False)
                self.data[self.n] = row
                self.n += 1
            else:
                self.data[self.pos] = row
                self.pos = (self.pos + 1) % self.cap
