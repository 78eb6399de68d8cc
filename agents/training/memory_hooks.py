"""EMPO²'s memory side of training: policy-written tips, the tip store, the novelty bonus.

The training envs are wrapped in :class:`~empo_gym.memory.MemoryWrapper` s that share one
:class:`~empo_gym.memory.EpisodeRecorder` (and its :class:`~empo_gym.memory.MemoryStore`): the
wrappers retrieve tips for memory rollouts and record every training episode -- each state
embedded once, for retrieval and as its memory key -- but write nothing. After each iteration's
rollouts, :class:`EMPOMemory`

1. takes each rollout's recorded :class:`~empo_gym.memory.Episode` out of the recorder (matched
   by ``traj.info["memory_episode"]`` and checked step by step; a rollout no wrapper recorded is
   rebuilt from its turns by :func:`rollout_episode` and embedded once);
2. scores every turn's state with the novelty reward (memory rollouts only, the paper's
   ``r_int = 1/(n+1)``) into ``Turn.intrinsic_reward``, from those embeddings;
3. flushes the episodes with the policy as the tip writer -- all tips in **one** batched
   generation -- storing one entry per step keyed by the same embeddings.

Doing this in-process and batched, with no state embedded twice, is what keeps memory cheap
(the reference paid ~19% of rollout time for two HTTP memory servers).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from empo_gym.agents.llm.policy import SamplingConfig
from empo_gym.agents.llm.tip_writer import policy_tip_writer
from empo_gym.agents.llm.trajectory import Trajectory
from empo_gym.memory import (
    Episode,
    EpisodeRecorder,
    MemoryFileError,
    MemoryStore,
    MemoryVectorWrapper,
    MemoryWrapper,
    NoveltyReward,
    Step,
    TipWriter,
    memory_slot,
)

STORE_FILE = "memory.safetensors"
NOVELTY_FILE = "novelty.safetensors"


def rollout_episode(traj: Trajectory) -> Episode:
    """A rollout as memory sees it, rebuilt from its turns (task text, slot, steps, score).

    The slot is the one the memory wrapper assigned (``traj.info["memory_slot"]``), else
    :func:`~empo_gym.memory.memory_slot` of the rollout's info, else its group id.

    Example:
        >>> from empo_gym.agents.llm.trajectory import Turn
        >>> traj = Trajectory("g0", 0, [Turn([], [], [], [], observation="hall", action="go")],
        ...                   score=5.0, info={"task": "boil"})
        >>> ep = rollout_episode(traj)
        >>> ep.slot, ep.steps[0].state, ep.final_score
        ('boil', 'hall', 5.0)
    """
    steps = [Step(t.observation, t.action, float(t.reward)) for t in traj.turns]
    return Episode(
        task=str(traj.info.get("instruction") or traj.info.get("task") or ""),
        slot=str(traj.info.get("memory_slot") or memory_slot(traj.info, default=traj.group_id)),
        steps=steps,
        final_score=float(traj.score),
        success=bool(traj.success),
        used_memory=bool(traj.memory_mode),
    )


def _same_steps(ep: Episode, traj: Trajectory) -> bool:
    return len(ep.steps) == len(traj.turns) and all(
        s.state == t.observation and s.action == t.action
        for s, t in zip(ep.steps, traj.turns, strict=True)
    )


class EMPOMemory:
    """:class:`empo_gym.agents.training.trainer.MemoryHooks` over an
    :class:`~empo_gym.memory.MemoryStore`.

    Args:
        store: The store the training envs' memory wrappers read from.
        novelty: Novelty reward (None disables the intrinsic reward).
        tip_max_tokens: Token budget of a tip (the paper: one sentence, < 100 words).
        tip_temperature: Sampling temperature of tips.
        seed: Seed of the tip sampler.
        wrappers: The training envs' memory wrappers (their retrieval time is reported).
        recorder: The recorder the training wrappers share (``MemoryWrapper(...,
            recorder=...)``); its store must be ``store``. Its episodes are taken for the
            rollouts they match; others left in it (e.g. another run's on shared envs) are
            dropped. None: every rollout is rebuilt from its turns.
        tip_writer: Writes the tips instead of the policy (EMPO² has the policy write them;
            a rule is for policies too small to summarise, e.g. ``bench explore``'s).
    """

    def __init__(
        self,
        store: MemoryStore,
        *,
        novelty: NoveltyReward | None = None,
        tip_max_tokens: int = 64,
        tip_temperature: float = 0.7,
        seed: int | None = 0,
        wrappers: Sequence[MemoryWrapper | MemoryVectorWrapper] = (),
        recorder: EpisodeRecorder | None = None,
        tip_writer: TipWriter | None = None,
    ):
        if tip_max_tokens < 1:
            raise ValueError(f"tip_max_tokens must be >= 1, got {tip_max_tokens!r}")
        if recorder is not None and recorder.store is not store:
            raise ValueError(
                "recorder.store is not store: the hooks write where the wrappers read; pass "
                "the recorder the training wrappers share and its store"
            )
        self.store = store
        self.novelty = novelty
        self.tip_sampling = SamplingConfig(
            temperature=tip_temperature, max_new_tokens=tip_max_tokens, seed=seed
        )
        self.tips_written = 0
        self.wrappers = list(wrappers)
        self.recorder = recorder if recorder is not None else EpisodeRecorder(store)
        self.tip_writer = tip_writer
        self._shared = recorder is not None
        self._retrieval_seen = 0.0
        self.last_timings: dict[str, float] = {}

    def episodes(self, trajectories: Sequence[Trajectory]) -> list[Episode | None]:
        """Each rollout's episode (None for a rollout without turns), every step with its key.

        Recorded episodes are taken out of the recorder; the rest are rebuilt from their turns
        and embedded in one batch.
        """
        out: list[Episode | None] = []
        rebuilt: list[Episode] = []
        for traj in trajectories:
            if not traj.turns:
                out.append(None)
                continue
            eid = traj.info.get("memory_episode")
            ep = self.recorder.claim(eid, final_score=traj.score, success=traj.success)
            if ep is not None and not _same_steps(ep, traj):
                warnings.warn(
                    f"rollout {traj.group_id}/{traj.member} differs from the episode {eid} its "
                    "memory wrapper recorded (was the env stepped outside the rollout?); its "
                    "memory is rebuilt from the rollout's turns",
                    RuntimeWarning,
                    stacklevel=2,
                )
                ep = None
            if ep is None:
                ep = rollout_episode(traj)
                rebuilt.append(ep)
            out.append(ep)
        if self._shared:
            self.recorder.discard()  # episodes of rollouts that are not these
        self.recorder.embed_missing(rebuilt)
        return out

    def _score_novelty(
        self, trajectories: Sequence[Trajectory], episodes: Sequence[Episode | None]
    ) -> None:
        """Fill ``Turn.intrinsic_reward`` with the novelty of each turn's state.

        The members of a group are scored together against the counts from before the group
        (:meth:`~empo_gym.memory.NoveltyReward.score_group`): scored one after the other, the
        first member would find every state new and the last one none, and the group-normalised
        advantage would rank members by their index.
        """
        if self.novelty is None:
            return
        same = self.novelty.embedder is self.store.embedder  # else its own vectors
        groups: dict[tuple[str, str], list[tuple[Trajectory, Episode]]] = {}
        for traj, ep in zip(trajectories, episodes, strict=True):
            if ep is not None:
                groups.setdefault((traj.group_id, ep.slot), []).append((traj, ep))
        for (_, slot), members in groups.items():
            rewards = self.novelty.score_group(
                slot,
                [[s.state for s in ep.steps] for _, ep in members],
                [ep.keys if same else None for _, ep in members],
            )
            for (traj, _), member_rewards in zip(members, rewards, strict=True):
                for turn, r in zip(traj.turns, member_rewards, strict=True):
                    turn.intrinsic_reward = float(r)

    # -- MemoryHooks ---------------------------------------------------------------------
    def after_rollouts(
        self, policy: Any, trajectories: list[Trajectory], memory_mode: bool
    ) -> None:
        """Novelty for memory rollouts, then a policy-written tip for every trajectory.

        ``last_timings`` splits the cost: ``tip_generate_s`` (the policy writing tips, an LLM
        cost EMPO² adds), ``memory_store_s`` (matching, novelty, embedding and storing) and
        ``memory_retrieval_s`` (the wrappers' memory work during the rollouts just finished).
        """
        t0 = time.perf_counter()
        episodes = self.episodes(trajectories)
        if memory_mode:
            self._score_novelty(trajectories, episodes)
        else:
            for traj in trajectories:
                for turn in traj.turns:
                    turn.intrinsic_reward = 0.0
        t1 = time.perf_counter()
        writer = self.tip_writer or policy_tip_writer(policy, self.tip_sampling)
        written = self.recorder.flush(writer, [ep for ep in episodes if ep is not None])
        for traj, ep in zip(trajectories, episodes, strict=True):
            if ep is not None:
                traj.tip = ep.tip
        self.tips_written += len(written)
        t2 = time.perf_counter()
        retrieval = sum(float(w.memory_seconds) for w in self.wrappers)
        tip_s = float(getattr(writer, "seconds", 0.0))  # a rule writer needs no clock
        self.last_timings = {
            "tip_generate_s": tip_s,
            "memory_store_s": (t1 - t0) + (t2 - t1 - tip_s),
            "memory_retrieval_s": retrieval - self._retrieval_seen,
        }
        self._retrieval_seen = retrieval

    def size(self) -> int:
        """Entries in the store."""
        return len(self.store)

    def save(self, directory: Path) -> None:
        """Write the store and the novelty counts into ``directory`` (inside the trainer's
        atomic checkpoint)."""
        self.store.save(Path(directory) / STORE_FILE)
        if self.novelty is not None:
            self.novelty.save(Path(directory) / NOVELTY_FILE)

    def load(self, directory: Path) -> None:
        """Replace the store's contents (and the novelty counts) with those saved in
        ``directory`` (if any)."""
        path = Path(directory) / STORE_FILE
        if path.exists():
            loaded = MemoryStore.load(path, self.store.embedder)
            self.store.clear()
            self.store.add(loaded.entries())
        novelty_path = Path(directory) / NOVELTY_FILE
        if self.novelty is not None and novelty_path.exists():
            self.novelty.load(novelty_path)

    def stats(self) -> dict[str, Any]:
        """Counters for the run summary."""
        return {"memory_size": self.size(), "tips_written": self.tips_written}


__all__ = ["NOVELTY_FILE", "STORE_FILE", "EMPOMemory", "MemoryFileError", "rollout_episode"]
