"""One memory session: the embed -> retrieve -> record driver of every memory user.

A :class:`MemorySession` drives one :class:`~empo_gym.memory.recorder.EpisodeRecorder` (and
its store) for a batch of running episodes: it starts an episode, and at every state embeds the
states that need a vector in ONE embedder call, gives each recorded episode its state and that
state's embedding, retrieves the tips of the states that ask for memory in ONE batched query
(with the same vectors), records the action taken, and ends the episode. Finished episodes are
written by :meth:`MemorySession.flush` with a tip writer.

The memory wrappers (:mod:`empo_gym.memory.wrapper`) and the ``memory-only`` agent
(``empo_gym.agents.llm.memory_only``) both act through it; they differ only in policy: the
wrappers decide per episode whether to retrieve and add a novelty bonus from the same vectors,
the agent retrieves at every step and writes tips with its LLM.

Example:
    >>> from empo_gym.memory.store import MemoryStore
    >>> from empo_gym.memory.tips import TemplateTipWriter
    >>> session = MemorySession(EpisodeRecorder(MemoryStore("hashing")))
    >>> for _ in range(2):  # the second episode retrieves what the first wrote
    ...     eid = session.start(task="Open the chest.", partition="toy/0")
    ...     tips, _ = session.look(["hall"], episodes=[eid], partitions=["toy/0"])
    ...     _ = session.record(eid, "go north", score=100)
    ...     _ = session.end(eid, score=100, success=True)
    ...     _ = session.flush(TemplateTipWriter())
    >>> len(tips[0]), tips[0][0].endswith("the specific action you took was go north; "
    ...                                   "Eventually you got the score 100/100.")
    (1, True)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from empo_gym.memory.episode import Episode
from empo_gym.memory.recorder import EpisodeRecorder
from empo_gym.memory.store import MemoryStore
from empo_gym.memory.tips import TipWriter

__all__ = ["MemorySession"]


class MemorySession:
    """Drives an :class:`EpisodeRecorder`: start, look (embed, see, retrieve), record, end.

    Args:
        recorder: The recorder of the episodes (its store is the one retrieved from).
        max_tips_chars: When set, the tips of one state keep whole memories (whitespace
            flattened) up to this many characters in all; None keeps every retrieved memory
            as stored.

    Raises:
        TypeError: ``recorder`` is not an :class:`EpisodeRecorder`.
    """

    def __init__(self, recorder: EpisodeRecorder, *, max_tips_chars: int | None = None) -> None:
        if not isinstance(recorder, EpisodeRecorder):
            raise TypeError(f"recorder must be an EpisodeRecorder, got {type(recorder).__name__}")
        self.recorder = recorder
        self.max_tips_chars = None if max_tips_chars is None else int(max_tips_chars)

    @property
    def store(self) -> MemoryStore:
        """The tip memory (the recorder's store)."""
        return self.recorder.store

    # -- episodes --------------------------------------------------------------------------
    def start(self, *, task: str, partition: str, used_memory: bool = False) -> int:
        """Begin recording an episode of memory partition ``partition``; returns its id."""
        return self.recorder.start(task=task, partition=partition, used_memory=used_memory)

    def is_running(self, episode_id: int | None) -> bool:
        """Whether the recorder still records ``episode_id``."""
        return self.recorder.is_running(episode_id)

    def episode(self, episode_id: int) -> Episode:
        """The running episode (its steps so far)."""
        return self.recorder.episode(episode_id)

    def record(
        self, episode_id: int, action: str, *, reward: float = 0.0, score: float = 0.0
    ) -> bool:
        """Record ``action`` taken in the state last seen (False: no state was seen)."""
        return self.recorder.act(episode_id, str(action), reward=float(reward), score=score)

    def end(self, episode_id: int, *, score: float, success: bool) -> Episode | None:
        """Finish an episode and queue it for :meth:`flush` (None: it had no steps)."""
        return self.recorder.end(episode_id, final_score=score, success=success)

    def drop(self, episode_id: int | None) -> None:
        """Forget an unfinished episode (it writes nothing)."""
        self.recorder.drop(episode_id)

    def stop(self, episode_id: int | None) -> None:
        """Stop an unfinished episode but keep it for the recorder's owner to claim."""
        self.recorder.stop(episode_id)

    def flush(
        self, tip_writer: TipWriter, episodes: Sequence[Episode] | None = None
    ) -> list[Episode]:
        """Write the tips of finished episodes with one writer call; store their entries."""
        return self.recorder.flush(tip_writer, episodes)

    # -- states ----------------------------------------------------------------------------
    def embed(self, states: Sequence[str], need: Sequence[bool] | None = None) -> np.ndarray:
        """One embedder call for the states that need a vector (rows of the others are zero).

        Args:
            states: The states.
            need: Which states to embed (default: all).

        Returns:
            ``float32 [len(states), dim]``.
        """
        vecs = np.zeros((len(states), self.store.embedder.dim), dtype=np.float32)
        idx = [i for i in range(len(states)) if need is None or need[i]]
        if idx:
            vecs[idx] = self.store.embedder([states[i] for i in idx])
        return vecs

    def retrieve(self, partitions: Sequence[str], embeddings: np.ndarray) -> list[list[str]]:
        """The memories similar to each embedded state, in its partition (one batched query)."""
        if not len(partitions):
            return []
        found = self.store.query_batch(list(partitions), embeddings=embeddings)
        return [self._fit([e.text for e in entries]) for entries in found]

    def look(
        self,
        states: Sequence[str],
        *,
        episodes: Sequence[int | None],
        partitions: Sequence[str],
        retrieve: Sequence[bool] | bool = True,
        embed: Sequence[bool] | None = None,
    ) -> tuple[list[list[str]], np.ndarray]:
        """The states the episodes' next actions are chosen in: embed, record, retrieve.

        Each state is embedded once (when recorded, retrieved, or asked for by ``embed``);
        that vector becomes the key of the recorded step and the retrieval query.

        Args:
            states: One raw observation per episode (tips excluded).
            episodes: The recorder's episode id per state; None = not recorded.
            partitions: Memory partition per state.
            retrieve: Whether each state asks for tips (one bool for all).
            embed: States to embed although neither recorded nor retrieved (a caller's own
                use of the vector, such as a novelty bonus).

        Returns:
            ``(tips, embeddings)``: the memories per state (``[]`` when not retrieved) and the
            ``float32 [len(states), dim]`` vectors (zero rows where nothing needed one).
        """
        n = len(states)
        want = [bool(retrieve)] * n if isinstance(retrieve, bool) else [bool(r) for r in retrieve]
        if not len(episodes) == len(partitions) == len(want) == n:
            raise ValueError(
                f"{n} states but {len(episodes)} episodes, {len(partitions)} partitions and "
                f"{len(want)} retrieve flags; expected one of each per state"
            )
        need = [
            want[i] or episodes[i] is not None or (embed is not None and bool(embed[i]))
            for i in range(n)
        ]
        vecs = self.embed(states, need)
        for eid, state, vec in zip(episodes, states, vecs, strict=True):
            if eid is not None:
                self.recorder.see(eid, state, vec)
        tips: list[list[str]] = [[] for _ in range(n)]
        asked = [i for i in range(n) if want[i]]
        found = self.retrieve([partitions[i] for i in asked], vecs[asked])
        for i, t in zip(asked, found, strict=True):
            tips[i] = t
        return tips, vecs

    def _fit(self, tips: list[str]) -> list[str]:
        # keep whole memories within the field's length (the observation space is bounded)
        if self.max_tips_chars is None:
            return tips
        out, used = [], 0
        for t in tips:
            t = " ".join(t.split())
            if used + len(t) + 1 > self.max_tips_chars:
                break
            out.append(t)
            used += len(t) + 1
        return out

    def __repr__(self) -> str:
        return f"MemorySession(recorder={self.recorder!r}, max_tips_chars={self.max_tips_chars})"
