"""Recording episodes into EMPO² memory: one recorder for the wrapper, the agent and the trainer.

An :class:`EpisodeRecorder` follows running episodes step by step (the state the next action is
chosen in and that state's embedding), turns a finished one into an
:class:`~empo_gym.memory.episode.Episode` and queues it. :meth:`EpisodeRecorder.flush` then
asks a tip writer for the tips of all queued episodes in ONE call and stores one entry per step
(:func:`episode_entries`), keyed by the embeddings computed while recording: a state is embedded
once, when it is first seen, and that vector serves retrieval, the novelty bonus and the stored
key alike.

Who flushes decides when tips are written: the memory wrapper flushes at every episode end
(unless a trainer shares a recorder with it, see
:class:`~empo_gym.memory.wrapper.MemoryWrapper`'s ``recorder``), the ``memory-only`` agent before
its next batch of actions, the trainer's EMPO² algorithm after each iteration's rollouts, with
the policy as the tip writer.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from empo_gym.memory.episode import Episode, Step
from empo_gym.memory.store import MemoryEntry, MemoryStore
from empo_gym.memory.tips import TipWriter, clean_tip, format_memory

__all__ = ["EpisodeRecorder", "episode_entries"]

# Episode ids are unique within the process, so an id in a rollout's info can never name
# another recorder's episode.
_EPISODE_IDS = itertools.count()


def episode_entries(episode: Episode, tip: str | None = None) -> list[MemoryEntry]:
    """The memory entries of a finished episode: one per step, keyed by the step's state.

    Args:
        episode: The episode.
        tip: Its tip (default: ``episode.tip``).

    Raises:
        ValueError: No tip given and the episode has none yet.

    Example:
        >>> from empo_gym.memory.episode import Step
        >>> ep = Episode("boil", "boil/0", [Step("hall", "go kitchen"), Step("kitchen", "boil")],
        ...              final_score=40)
        >>> [(e.key, e.step, e.score) for e in episode_entries(ep, "Go boil.")]
        [('hall', 0, 40.0), ('kitchen', 1, 40.0)]
        >>> episode_entries(ep, "Go boil.")[1].text
        'Go boil.; At that timestep, the specific action you took was boil; Eventually you got \
the score 40/100.'
    """
    if tip is None:
        tip = episode.tip
    if tip is None:
        raise ValueError(
            f"episode {episode.episode_id} of partition {episode.partition!r} has no tip yet"
        )
    tip = clean_tip(tip)
    return [
        MemoryEntry(
            text=format_memory(tip, step.action, episode.final_score),
            key=step.state,
            score=episode.final_score,
            partition=episode.partition,
            step=k,
            action=step.action,
            metadata={"success": episode.success, "used_memory": episode.used_memory},
        )
        for k, step in enumerate(episode.steps)
    ]


@dataclass
class _Running:
    episode: Episode
    state: str | None = None  # the state the next action is chosen in
    key: np.ndarray | None = None  # its embedding
    keys: list[np.ndarray] = field(default_factory=list)  # one per recorded step

    def close(self) -> Episode:
        ep = self.episode
        ep.keys = np.stack(self.keys) if self.keys else None
        return ep


class EpisodeRecorder:
    """Running episodes in, finished :class:`Episode` objects queued, tips and entries out.

    Args:
        store: Where the memory entries are written.
        store_path: When set, every flush merges the store into this file (under a file lock;
            see :meth:`MemoryStore.save`), adopting what other processes merged.

    Example:
        >>> from empo_gym.memory.tips import TemplateTipWriter
        >>> rec = EpisodeRecorder(MemoryStore("hashing"))
        >>> eid = rec.start(task="Open the chest.", partition="toy/0")
        >>> for state, action in [("hall", "go north"), ("vault", "open chest")]:
        ...     rec.see(eid, state, rec.store.embedder([state])[0])
        ...     _ = rec.act(eid, action)
        >>> ep = rec.end(eid, final_score=100, success=True)
        >>> len(rec.pending), ep.keys.shape
        (1, (2, 384))
        >>> [e.tip[:12] for e in rec.flush(TemplateTipWriter())], len(rec.store), rec.pending
        (["In 'Open the"], 2, [])
    """

    def __init__(
        self, store: MemoryStore, *, store_path: str | os.PathLike[str] | None = None
    ) -> None:
        if not isinstance(store, MemoryStore):
            raise TypeError(f"store must be a MemoryStore, got {type(store).__name__}")
        self.store = store
        self.store_path = store_path
        self._running: dict[int, _Running] = {}
        self._stopped: dict[int, Episode] = {}  # left unfinished, kept for claim()
        self._finished: dict[int, Episode] = {}  # insertion order = the order episodes ended
        #: Entries the store accepted as new over all flushes (it de-duplicates by content).
        self.entries_added = 0

    # -- running episodes ---------------------------------------------------------------------
    def start(self, *, task: str, partition: str, used_memory: bool = False) -> int:
        """Begin recording an episode; returns its id."""
        eid = next(_EPISODE_IDS)
        ep = Episode(
            task=str(task), partition=str(partition), used_memory=bool(used_memory), episode_id=eid
        )
        self._running[eid] = _Running(ep)
        return eid

    def _get(self, episode_id: int) -> _Running:
        run = self._running.get(episode_id)
        if run is None:
            raise KeyError(
                f"episode {episode_id!r} is not running in this recorder (it ended, was dropped "
                "or claimed, or another recorder started it)"
            )
        return run

    def is_running(self, episode_id: int | None) -> bool:
        """Whether ``episode_id`` is an episode this recorder is still recording."""
        return episode_id in self._running

    def episode(self, episode_id: int) -> Episode:
        """The running episode (its steps so far; set ``used_memory`` on it when tips show)."""
        return self._get(episode_id).episode

    def see(self, episode_id: int, state: str, key: np.ndarray) -> None:
        """The state the episode's next action is chosen in, and that state's embedding."""
        run = self._get(episode_id)
        run.state, run.key = str(state), np.asarray(key, dtype=np.float32)

    def act(self, episode_id: int, action: str, *, reward: float = 0.0, score: float = 0.0) -> bool:
        """Record a step: ``action`` taken in the state last seen.

        Returns:
            False (nothing recorded) when no state was seen since the last step.
        """
        run = self._get(episode_id)
        if run.state is None or run.key is None:
            return False
        run.episode.steps.append(Step(run.state, str(action), float(reward), float(score)))
        run.keys.append(run.key)
        run.state, run.key = None, None
        return True

    def end(self, episode_id: int, *, final_score: float, success: bool) -> Episode | None:
        """Finish an episode and queue it for :meth:`flush` (None: it had no steps)."""
        ep = self._running.pop(episode_id, None)
        if ep is None:
            return None
        out = ep.close()
        out.final_score, out.success = float(final_score), bool(success)
        if not out.steps:
            return None
        self._finished[episode_id] = out
        return out

    def drop(self, episode_id: int | None) -> None:
        """Forget an unfinished episode (it writes nothing); None or an unknown id: no-op."""
        if episode_id is not None:
            self._running.pop(episode_id, None)

    def stop(self, episode_id: int | None) -> None:
        """Stop recording an unfinished episode but keep it for :meth:`claim` (a trainer that
        cut the episode short may still write it) until :meth:`discard`."""
        if episode_id is None or episode_id not in self._running:
            return
        run = self._running.pop(episode_id)
        if run.episode.steps:
            self._stopped[episode_id] = run.close()

    # -- finished episodes ---------------------------------------------------------------------
    @property
    def pending(self) -> list[Episode]:
        """Finished episodes waiting for :meth:`flush`, in the order they ended."""
        return list(self._finished.values())

    def claim(self, episode_id: int | None, *, final_score: float, success: bool) -> Episode | None:
        """Take one episode out of the recorder, however it ended, with the caller's outcome.

        A trainer's rollout may end an episode the env did not (its own turn limit): the
        caller's ``final_score`` / ``success`` are the episode's.

        Returns:
            The episode (finished, stopped or still running), or None when this recorder has
            no episode ``episode_id``.
        """
        if episode_id is None:
            return None
        ep = self._finished.pop(episode_id, None)
        if ep is None:
            ep = self._stopped.pop(episode_id, None)
        if ep is None and episode_id in self._running:
            ep = self._running.pop(episode_id).close()
        if ep is not None:
            ep.final_score, ep.success = float(final_score), bool(success)
        return ep

    def discard(self) -> int:
        """Drop every queued and stopped episode (running ones stay); returns how many."""
        n = len(self._finished) + len(self._stopped)
        self._finished.clear()
        self._stopped.clear()
        return n

    def flush(
        self, tip_writer: TipWriter, episodes: Sequence[Episode] | None = None
    ) -> list[Episode]:
        """Write tips with ONE ``tip_writer`` call and store one entry per step.

        Steps are keyed by the embeddings recorded with them; states of episodes built without
        keys are embedded here, in one batch.

        Args:
            tip_writer: ``list[Episode] -> list[str]`` (one tip per episode, same order).
            episodes: What to write, in this order (default: every queued episode); queued
                ones are taken out of the queue, others (claimed or built elsewhere) are
                written as given. Episodes without steps are skipped.

        Returns:
            The episodes written, each with its ``tip`` set.

        Raises:
            ValueError: The writer returned a different number of tips.
        """
        if episodes is None:
            todo = self.pending
            self._finished.clear()
        else:
            todo = list(episodes)
            for ep in todo:
                if ep.episode_id is not None and self._finished.get(ep.episode_id) is ep:
                    del self._finished[ep.episode_id]
        todo = [ep for ep in todo if ep.steps]
        if not todo:
            return []
        tips = list(tip_writer(todo))
        if len(tips) != len(todo):
            raise ValueError(f"tip writer returned {len(tips)} tips for {len(todo)} episodes")
        self.embed_missing(todo)
        entries: list[MemoryEntry] = []
        for ep, tip in zip(todo, tips, strict=True):
            ep.tip = clean_tip(tip)
            entries.extend(episode_entries(ep))
        keys = np.concatenate([ep.keys for ep in todo if ep.keys is not None])
        self.entries_added += self.store.add(entries, keys)
        if self.store_path is not None:
            self.store.save(self.store_path, merge=True)
        return todo

    def embed_missing(self, episodes: Sequence[Episode]) -> None:
        """Give episodes built without keys their step embeddings (one embedder call)."""
        bare = [ep for ep in episodes if ep.keys is None or len(ep.keys) != len(ep.steps)]
        if not bare:
            return
        vecs = np.asarray(
            self.store.embedder([s.state for ep in bare for s in ep.steps]), dtype=np.float32
        )
        k = 0
        for ep in bare:
            ep.keys, k = vecs[k : k + len(ep.steps)], k + len(ep.steps)

    def __repr__(self) -> str:
        return (
            f"EpisodeRecorder(running={len(self._running)}, pending={len(self._finished)}, "
            f"stopped={len(self._stopped)}, store={self.store!r})"
        )
