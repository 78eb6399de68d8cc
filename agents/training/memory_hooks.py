"""EMPO²'s memory side of training: policy-written tips, the tip store, the novelty bonus.

The training envs are wrapped in :class:`~empo_gym.memory.MemoryObservationWrapper` with
``write_tips=False`` and one shared :class:`~empo_gym.memory.MemoryStore`: the wrappers only
*retrieve* tips (memory rollouts). After each iteration's rollouts, :class:`EMPOMemory`

1. scores every turn's state with the novelty reward (memory rollouts only, EMPO2.md:
   ``r_int = 1/(n+1)``) into ``Turn.intrinsic_reward``;
2. asks the policy itself for one tip per trajectory -- all tips in **one** batched
   generation -- and stores one entry per step (``trajectory_entries``).

Doing both here, in-process and batched, is what keeps memory cheap (the reference paid ~19%
of rollout time for two HTTP memory servers).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from empo_gym.agents.llm.policy import SamplingConfig, one_sentence
from empo_gym.agents.llm.trajectory import Trajectory
from empo_gym.memory import (
    MemoryFileError,
    MemoryStore,
    NoveltyReward,
    Step,
    build_tip_prompt,
    trajectory_entries,
)
from empo_gym.memory import Trajectory as TipTrajectory
from empo_gym.memory.tips import clean_tip

STORE_FILE = "memory.safetensors"
NOVELTY_FILE = "novelty.safetensors"


def to_tip_trajectory(traj: Trajectory) -> TipTrajectory:
    """The memory layer's view of a rollout (task text, slot, (state, action) steps, score)."""
    steps = [Step(t.observation, t.action, float(t.reward)) for t in traj.turns]
    return TipTrajectory(
        task=str(traj.info.get("instruction") or traj.info.get("task") or ""),
        slot=str(traj.info.get("memory_slot") or traj.info.get("task") or traj.group_id),
        steps=steps,
        final_score=float(traj.score),
        success=bool(traj.success),
        used_memory=bool(traj.memory_mode),
    )


class EMPOMemory:
    """:class:`empo_gym.agents.training.trainer.MemoryHooks` over an
    :class:`~empo_gym.memory.MemoryStore`.

    Args:
        store: The store the training envs' memory wrappers read from.
        novelty: Novelty reward (None disables the intrinsic reward).
        tip_max_tokens: Token budget of a tip (EMPO2.md: one sentence, < 100 words).
        tip_temperature: Sampling temperature of tips.
        seed: Seed of the tip sampler.
        wrappers: The training envs' memory wrappers (their retrieval time is reported).
    """

    def __init__(
        self,
        store: MemoryStore,
        *,
        novelty: NoveltyReward | None = None,
        tip_max_tokens: int = 64,
        tip_temperature: float = 0.7,
        seed: int | None = 0,
        wrappers: Sequence[Any] = (),
    ):
        if tip_max_tokens < 1:
            raise ValueError(f"tip_max_tokens must be >= 1, got {tip_max_tokens!r}")
        self.store = store
        self.novelty = novelty
        self.tip_sampling = SamplingConfig(
            temperature=tip_temperature, max_new_tokens=tip_max_tokens, seed=seed
        )
        self.tips_written = 0
        self.wrappers = list(wrappers)
        self._retrieval_seen = 0.0
        self.last_timings: dict[str, float] = {}

    def write_tips(self, policy: Any, trajectories: Sequence[Trajectory]) -> float:
        """One tip per trajectory from ``policy`` (one batched generation); store the entries.

        Returns:
            Seconds spent in the policy's generation.
        """
        views = [to_tip_trajectory(t) for t in trajectories if t.turns]
        if not views:
            return 0.0
        prompts = [[{"role": "user", "content": build_tip_prompt(v)}] for v in views]
        t0 = time.perf_counter()
        gens = policy.generate(prompts, one_sentence(policy, self.tip_sampling))
        gen_s = time.perf_counter() - t0
        tips = [clean_tip(g.text) or "No tip." for g in gens]
        entries = []
        for traj, view, tip in zip([t for t in trajectories if t.turns], views, tips, strict=True):
            traj.tip = tip
            entries.extend(trajectory_entries(view, tip))
        self.store.add(entries)
        self.tips_written += len(tips)
        return gen_s

    def score_novelty(self, trajectories: Sequence[Trajectory]) -> None:
        """Fill ``Turn.intrinsic_reward`` with the novelty of each turn's state."""
        if self.novelty is None:
            return
        for traj in trajectories:
            if not traj.turns:
                continue
            slot = str(traj.info.get("memory_slot") or traj.group_id)
            rewards = self.novelty(slot, [t.observation for t in traj.turns])
            for turn, r in zip(traj.turns, rewards, strict=True):
                turn.intrinsic_reward = float(r)

    # -- MemoryHooks ---------------------------------------------------------------------
    def after_rollouts(
        self, policy: Any, trajectories: list[Trajectory], memory_mode: bool
    ) -> None:
        """Novelty for memory rollouts, then a policy-written tip for every trajectory.

        ``last_timings`` splits the cost: ``tip_generate_s`` (the policy writing tips, an LLM
        cost EMPO² adds), ``memory_store_s`` (novelty, embedding and storing) and
        ``memory_retrieval_s`` (the wrappers' retrieval during the rollouts just finished).
        """
        t0 = time.perf_counter()
        if memory_mode:
            self.score_novelty(trajectories)
        else:
            for traj in trajectories:
                for turn in traj.turns:
                    turn.intrinsic_reward = 0.0
        t1 = time.perf_counter()
        gen_s = self.write_tips(policy, trajectories)
        t2 = time.perf_counter()
        retrieval = sum(
            float(getattr(getattr(w, "core", w), "memory_seconds", 0.0)) for w in self.wrappers
        )
        self.last_timings = {
            "tip_generate_s": gen_s,
            "memory_store_s": (t1 - t0) + (t2 - t1 - gen_s),
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


__all__ = ["NOVELTY_FILE", "STORE_FILE", "EMPOMemory", "MemoryFileError", "to_tip_trajectory"]
