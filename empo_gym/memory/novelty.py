"""Count-based novelty (intrinsic) reward over state embeddings.

EMPO²'s intrinsic exploration reward: a state is novel when its
embedding is not similar to the states already seen; ``r_int = 1 / (n + 1)`` where ``n`` counts
the stored states with cosine similarity above ``threshold``. Every scored state is then stored
(revisits make a state less novel). States are counted per partition (task instance).

The rollouts of one GRPO group are scored together (:meth:`NoveltyReward.score_group`): every
member against the same counts, those from before the group. Scoring them one after the other
would make the first member's states novel and the last member's seen, so the group-normalised
advantage would rank members by their index rather than by what they explored.

The threshold is per embedder (:data:`DEFAULT_THRESHOLDS`), measured on distinct states of
one task: ScienceWorld ``boil`` observations reach cosine 0.874 with the hashing embedder (99th
percentile 0.859) and 0.883 with MiniLM, rooms phrased "You are in the X" about 0.78 (hashing),
while the same state with a short prefix ("Nothing happens. ...") stays above 0.94 (hashing),
so 0.9 for both. A threshold below the distinct-state similarities makes every state "seen"
and the bonus vanishes; texts that differ in one word only (the Doors env's rooms reach 0.95)
need a higher one (``bench explore`` counts exact repeats: 0.99).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from empo_gym.memory.embedders import Embedder, cosine_matrix, make_embedder, normalize_rows

__all__ = ["DEFAULT_THRESHOLDS", "NoveltyReward", "default_threshold"]

#: Novelty threshold per embedder family (measured; see the module docstring).
DEFAULT_THRESHOLDS: dict[str, float] = {"hashing": 0.9, "minilm": 0.9}


def default_threshold(embedder: Embedder | str) -> float:
    """The calibrated novelty threshold of ``embedder`` (by its name's family).

    Example:
        >>> default_threshold("hashing"), default_threshold("minilm")
        (0.9, 0.9)
    """
    name = embedder if isinstance(embedder, str) else str(getattr(embedder, "name", ""))
    family = name.split("-")[0].split(":")[0]
    if family not in DEFAULT_THRESHOLDS:
        raise ValueError(
            f"no calibrated novelty threshold for embedder {name!r}; pass threshold=... "
            f"(calibrated: {sorted(DEFAULT_THRESHOLDS)})"
        )
    return DEFAULT_THRESHOLDS[family]


class NoveltyReward:
    """``r = scale / (n + 1)``, n = similar states already seen in the partition.

    Args:
        embedder: Embedder or its name.
        threshold: Cosine similarity above which a stored state counts as "the same"; None =
            the embedder's calibrated default (:data:`DEFAULT_THRESHOLDS`).
        scale: Multiplier of the reward (a setting in EMPO²).
        capacity: States kept per partition (FIFO), bounding memory and time.

    Example:
        >>> nov = NoveltyReward("hashing")
        >>> nov("task/0", ["You are in the kitchen.", "You are in the kitchen."]).tolist()
        [1.0, 0.5]
        >>> nov("task/0", ["You are in the garden."]).tolist()
        [1.0]
        >>> nov("task/1", ["You are in the kitchen."]).tolist()
        [1.0]
    """

    def __init__(
        self,
        embedder: Embedder | str = "hashing",
        *,
        threshold: float | None = None,
        scale: float = 1.0,
        capacity: int = 10_000,
    ):
        self.embedder: Embedder = make_embedder(embedder)
        if threshold is None:
            threshold = default_threshold(self.embedder)
        if not -1.0 <= float(threshold) <= 1.0:
            raise ValueError(f"threshold is a cosine similarity in [-1, 1], got {threshold!r}")
        if not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be a positive int, got {capacity!r}")
        self.threshold = float(threshold)
        self.scale = float(scale)
        self.capacity = capacity
        self._seen: dict[str, _RingBuffer] = {}

    def __call__(
        self,
        partition: str,
        states: Sequence[str],
        embeddings: np.ndarray | None = None,
    ) -> np.ndarray:
        """Score ``states`` in order (each sees the ones before it) and remember them.

        Args:
            partition: Memory partition.
            states: State texts.
            embeddings: Precomputed embeddings ``[n, dim]`` (skips the embedder).

        Returns:
            float32 rewards, one per state.
        """
        return self.score_group(partition, [states], [embeddings])[0]

    def score_group(
        self,
        partition: str,
        members: Sequence[Sequence[str]],
        embeddings: Sequence[np.ndarray | None] | None = None,
    ) -> list[np.ndarray]:
        """Score the trajectories of one group against the same counts, then remember them all.

        Each state counts the states remembered before the group plus the earlier states of its
        own trajectory, never those of the other members, so no member is favoured by its
        position in the group.

        Args:
            partition: Memory partition (shared by the group).
            members: Each member's state texts, in order.
            embeddings: Each member's precomputed embeddings ``[n_i, dim]`` (or None).

        Returns:
            float32 rewards per member, one per state.

        Example:
            >>> nov = NoveltyReward("hashing")
            >>> [r.tolist() for r in nov.score_group("t", [["a red room"], ["a red room"]])]
            [[1.0], [1.0]]
            >>> nov("t", ["a red room"]).tolist()
            [0.3333333432674408]
        """
        if not isinstance(partition, str):
            raise TypeError(f"partition must be a str, got {partition!r}")
        members = [list(m) for m in members]
        given = list(embeddings) if embeddings is not None else [None] * len(members)
        if len(given) != len(members):
            raise ValueError(f"{len(members)} members but {len(given)} embedding arrays")
        vecs = [self._vectors(m, e) for m, e in zip(members, given, strict=True)]
        buf = self._seen.get(partition)
        if buf is None:
            buf = self._seen[partition] = _RingBuffer(self.capacity, self.embedder.dim)
        seen = buf.view()
        out = []
        for v in vecs:
            n_prev = (cosine_matrix(seen, v) > self.threshold).sum(axis=0) if len(seen) else 0
            # similarity within the trajectory: state i sees states j < i
            within = np.tril(cosine_matrix(v, v) > self.threshold, k=-1).sum(axis=1)
            out.append((self.scale / (n_prev + within + 1.0)).astype(np.float32))
        for v in vecs:
            buf.extend(v)
        return out

    def _vectors(self, states: list[str], embeddings: np.ndarray | None) -> np.ndarray:
        if embeddings is None:
            vecs = np.asarray(self.embedder(states), dtype=np.float32).reshape(
                len(states), self.embedder.dim
            )
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
        return vecs

    def count(self, partition: str) -> int:
        """States remembered for ``partition``."""
        buf = self._seen.get(partition)
        return 0 if buf is None else buf.n

    def state_dict(self) -> dict[str, tuple[np.ndarray, int]]:
        """The remembered states, ``{partition: (rows, ring position)}`` (training checkpoints)."""
        return {partition: (buf.view().copy(), buf.pos) for partition, buf in self._seen.items()}

    def load_state_dict(self, state: dict[str, tuple[np.ndarray, int]]) -> None:
        """Replace the remembered states with those :meth:`state_dict` returned.

        Example:
            >>> nov = NoveltyReward("hashing"); _ = nov("t", ["a red room"])
            >>> fresh = NoveltyReward("hashing"); fresh.load_state_dict(nov.state_dict())
            >>> fresh("t", ["a red room"]).tolist()
            [0.5]
        """
        self._seen.clear()
        for partition, (rows, pos) in state.items():
            buf = self._seen[partition] = _RingBuffer(self.capacity, self.embedder.dim)
            buf.extend(np.asarray(rows, dtype=np.float32))
            buf.pos = int(pos) if buf.n == self.capacity else 0

    def save(self, path: str | Path) -> None:
        """Write the remembered states to one safetensors file (partition names in its metadata).

        Not atomic by itself: the trainer writes it inside its atomic checkpoint directory.
        """
        from safetensors.numpy import save_file

        state = self.state_dict()
        tensors = {f"partition{i}": rows for i, (rows, _) in enumerate(state.values())}
        names = [[name, f"partition{i}", pos] for i, (name, (_, pos)) in enumerate(state.items())]
        save_file(tensors, str(path), metadata={"partitions": json.dumps(names)})

    def load(self, path: str | Path) -> None:
        """Replace the remembered states with those :meth:`save` wrote to ``path``.

        Files written before partitions were renamed from "slots" keep their names under the
        metadata key ``slots``; they load too.
        """
        from safetensors import safe_open

        with safe_open(str(path), framework="np") as f:
            meta = f.metadata() or {}
            names = json.loads(meta["partitions"] if "partitions" in meta else meta["slots"])
            self.load_state_dict({s: (f.get_tensor(t), pos) for s, t, pos in names})

    def reset(self, partition: str | None = None) -> None:
        """Forget the states of ``partition`` (all partitions when None)."""
        if partition is None:
            self._seen.clear()
        else:
            self._seen.pop(partition, None)


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
