"""EMPO²: GRPO with a memory of self-written tips, trained hybrid on- and off-policy.

The method of "Exploratory Memory-Augmented LLM Agent via Hybrid On- and Off-Policy
Optimization" (ICLR 2026), as this project trains it. This module is the whole algorithm, read
top to bottom: the method (here), its settings (:class:`EMPOConfig`), the draw of an iteration's
modes (:func:`sample_modes`), the memory side (:func:`rollout_episode`,
:func:`policy_tip_writer`) and the object the training loop calls (:class:`EMPO`).

One iteration (the loop is :class:`~empo_gym.agents.training.trainer.TrainingRun`)::

    tasks                   <- B task instances (paper: 16), a group of N = 8 rollouts each,
                               every member of a group from the same initial state
    rollout mode            <- memory with probability p = 0.25, else plain      EMPO.modes
    trajectories            <- B x N multi-step episodes; in memory mode each turn's prompt
                               carries the tips retrieved for its state
    tips, intrinsic reward  <- the policy writes one tip per episode into memory;
                               memory rollouts earn r_int = 1/(n+1) per step     EMPO.after_rollouts
    update mode             <- memory iterations: off-policy with q = 2/3, else
                               on-policy with tips; plain iterations: on-policy  EMPO.modes
    policy update           <- GRPO's clipped group-relative objective           update.py

1. **Memory rollouts (p = 0.25).** ONE draw per iteration decides whether its rollouts use
   memory: p = 0.1 behaves like GRPO in the paper's ablation, 0.25 is the most stable. A memory
   turn's prompt gets ``<tip> Here are some memories you collected in your previous
   exploration:`` plus one memory per line ``</tip>``: up to 10 entries of the task instance's
   memory partition whose state embedding has cosine similarity > 0.5 with the current state, best
   stored score first. The block is separable from the observation (``Turn.prompt_ids`` vs
   ``Turn.prompt_ids_no_tips``), so an update can strip it again.
2. **Tips after every episode.** After EVERY training episode, with memory or not, the policy
   itself writes ONE sentence (< 100 words) summarising the episode, what it learned and how far
   it is from completing the task (all episodes of an iteration in one batched generation).
   The episode becomes one memory entry per step, keyed by that step's state: ``tip; At that
   timestep, the specific action you took was {a_t}; Eventually you got the score {R}/100.``
   One partition per training task instance, de-duplicated, FIFO cap 1000 per partition.
3. **Intrinsic reward (memory rollouts).** A state unlike those already seen is novel:
   ``r_int = 1/(n+1)``, n = the stored states whose cosine similarity with it is above a
   threshold. It fills ``Turn.intrinsic_reward``; the return the group normalises is the env
   return plus ``intrinsic_scale`` times the summed bonus
   (:attr:`EMPOConfig.intrinsic_return_scale`, used by
   :func:`empo_gym.agents.training.update.trajectory_return`; the reference adds each step's
   bonus on that turn's last token, the same under an outcome advantage). Without it the
   paper's runs plateau lower.
4. **Hybrid update (q = 2/3).** A memory iteration updates off-policy with probability q, else
   on-policy with the tips kept; a plain iteration updates on-policy. P(off-policy) = p * q =
   1/6 (the reference code: ``r < 0.17`` off-policy, ``r < 0.25`` on-policy with tips). q = 0.3
   or 0.95 underperform. The importance ratio of each update mode (u = task, s = state):

   | mode                  | numerator           | denominator                |
   |-----------------------|---------------------|----------------------------|
   | plain on-policy       | pi(a | s,u)         | pi_old(a | s,u)            |
   | on-policy with tips   | pi(a | s,u,tips)    | pi_old(a | s,u,tips)       |
   | off-policy            | pi(a | s,u)         | pi_old(a | s,u,tips)       |

   Off-policy scores the tip-guided response under the prompt WITHOUT tips: it distils
   tip-guided behaviour into the tip-free policy, pushing high-advantage actions up and
   low-advantage ones down (the modes as data: :mod:`empo_gym.agents.training.algorithm`).
5. **Objective** (shared with GRPO, :mod:`empo_gym.agents.training.losses`): advantage =
   (R - group mean) / (group std + eps) on every generated token of every turn; PPO clip 0.2
   below, 0.3 above; dual clip c = 10 for negative advantages; KL 0 (ScienceWorld) or 0.01
   (WebShop); low-probability masking -- a turn with a token whose old log-prob is < -5 is
   left out (without it off-policy training diverges to NaN).
6. **Evaluation without memory.** The trained policy acts with no memory at all (nothing
   retrieved, nothing written) at temperature 0.4: what is measured is what the weights learned.

The memory itself -- store, retrieval, the wrapper that puts tips into prompts, the recorder
that follows episodes, the novelty counts, the tip prompt -- is :mod:`empo_gym.memory`. Here it
runs in-process and batched, each state embedded once (the reference paid ~19 % of its rollout
time for two HTTP memory servers).
"""

from __future__ import annotations

import random
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from empo_gym.agents.llm.policy import SamplingConfig, one_sentence
from empo_gym.agents.llm.trajectory import Trajectory
from empo_gym.agents.training.algorithm import RolloutMode, UpdateMode
from empo_gym.agents.training.config import GRPOConfig, _require
from empo_gym.memory import (
    Episode,
    EpisodeRecorder,
    MemoryStore,
    MemoryVectorWrapper,
    MemoryWrapper,
    NoveltyReward,
    Step,
    TipWriter,
    memory_partition,
)
from empo_gym.memory.embedders import EMBEDDER_NAMES
from empo_gym.memory.tips import PromptTipWriter

__all__ = [
    "EMPO",
    "NOVELTY_FILE",
    "STORE_FILE",
    "EMPOConfig",
    "policy_tip_writer",
    "rollout_episode",
    "sample_modes",
    "sample_rollout_mode",
    "sample_update_mode",
]

STORE_FILE = "memory.safetensors"
"""The memory store's file inside a checkpoint."""
NOVELTY_FILE = "novelty.safetensors"
"""The novelty counts' file inside a checkpoint."""
TIP_TEMPERATURE = 0.7
"""Sampling temperature of the tips."""


# --- 1. settings ---------------------------------------------------------------------------------
@dataclass
class EMPOConfig(GRPOConfig):
    """EMPO² trainer settings: GRPO's plus memory rollouts, tip distillation, intrinsic reward."""

    memory_prob: float = 0.25
    """p: probability that an iteration's rollouts are memory-augmented."""
    off_policy_prob: float = 2.0 / 3.0
    """q: probability that a memory iteration updates off-policy (tips stripped)."""
    intrinsic_reward: bool = True
    """Add the novelty bonus r_int = 1/(n+1) of memory rollouts to the returns."""
    intrinsic_scale: float = 1.0
    """Scale of the intrinsic reward relative to the env reward."""
    novelty_threshold: float | None = None
    """Cosine similarity above which two states count as the same for the novelty bonus; None =
    the embedder's calibrated default (0.9 for hashing and minilm). Set too low, every state
    counts as seen and the bonus vanishes."""
    memory_embedder: str = "hashing"
    """Embedder of memory keys and novelty: ``hashing`` (no model) or ``minilm``."""
    memory_top_k: int = 10
    """Memories retrieved per turn."""
    memory_min_similarity: float = 0.5
    """Cosine similarity a stored state must exceed to be retrieved."""
    memory_capacity: int = 1000
    """FIFO cap of entries per memory partition (one per training task instance)."""
    tip_max_tokens: int = 128
    """Generated tokens for the one-sentence tip written after each trajectory."""

    @property
    def agent(self) -> str:
        """``grpo`` or ``empo``."""
        return "empo"

    @property
    def intrinsic_return_scale(self) -> float:
        """Weight of ``Turn.intrinsic_reward`` in the return the update normalises:
        ``intrinsic_scale``, or 0 when ``intrinsic_reward`` is off.

        Example:
            >>> EMPOConfig(intrinsic_scale=2.0).intrinsic_return_scale
            2.0
            >>> EMPOConfig(intrinsic_reward=False).intrinsic_return_scale
            0.0
        """
        return self.intrinsic_scale if self.intrinsic_reward else 0.0

    def validate(self) -> None:
        """Raise ValueError naming the first field whose value is out of range."""
        super().validate()
        _require(self, "memory_prob", 0 <= self.memory_prob <= 1, "a probability in [0, 1]")
        _require(self, "off_policy_prob", 0 <= self.off_policy_prob <= 1, "a probability in [0, 1]")
        _require(self, "intrinsic_scale", self.intrinsic_scale >= 0, ">= 0")
        _require(
            self,
            "novelty_threshold",
            self.novelty_threshold is None or -1 <= self.novelty_threshold <= 1,
            "a cosine in [-1, 1] or null (the embedder's calibrated default)",
        )
        _require(
            self,
            "memory_embedder",
            self.memory_embedder in EMBEDDER_NAMES,
            f"one of {list(EMBEDDER_NAMES)}",
        )
        _require(self, "memory_top_k", self.memory_top_k >= 1, ">= 1")
        _require(self, "memory_min_similarity", -1 <= self.memory_min_similarity <= 1, "in [-1, 1]")
        _require(self, "memory_capacity", self.memory_capacity >= 1, ">= 1")
        _require(self, "tip_max_tokens", self.tip_max_tokens >= 1, ">= 1")


# --- 2. the modes of an iteration ----------------------------------------------------------------
def _check_prob(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}={value!r}; expected a probability in [0, 1]")


def sample_rollout_mode(rng: random.Random, p: float) -> RolloutMode:
    """Draw the iteration's rollout mode: memory with probability ``p`` (paper: 0.25).

    Example:
        >>> sample_rollout_mode(random.Random(0), 1.0)
        <RolloutMode.MEMORY: 'memory'>
        >>> sample_rollout_mode(random.Random(0), 0.0)
        <RolloutMode.PLAIN: 'plain'>
    """
    _check_prob("p", p)
    return RolloutMode.MEMORY if rng.random() < p else RolloutMode.PLAIN


def sample_update_mode(rng: random.Random, q: float) -> UpdateMode:
    """Draw the update mode of a memory iteration: off-policy with probability ``q`` (2/3).

    Only called when the rollouts used memory; plain rollouts always update
    :attr:`UpdateMode.ON_POLICY` (see :func:`sample_modes`).

    Example:
        >>> sample_update_mode(random.Random(0), 1.0)
        <UpdateMode.OFF_POLICY: ('off_policy', True)>
    """
    _check_prob("q", q)
    return UpdateMode.OFF_POLICY if rng.random() < q else UpdateMode.ON_POLICY_TIPS


def sample_modes(rng: random.Random, p: float, q: float) -> tuple[RolloutMode, UpdateMode]:
    """Draw both modes of one iteration (P(off-policy) = p*q = 1/6 with the paper's values).

    Example:
        >>> sample_modes(random.Random(0), 0.0, 1.0)
        (<RolloutMode.PLAIN: 'plain'>, <UpdateMode.ON_POLICY: ('on_policy', False)>)
    """
    rollout = sample_rollout_mode(rng, p)
    if not rollout.use_memory:
        return rollout, UpdateMode.ON_POLICY
    return rollout, sample_update_mode(rng, q)


# --- 3. the memory side: rollouts as episodes, the policy as tip writer --------------------------
def rollout_episode(traj: Trajectory) -> Episode:
    """A rollout as memory sees it, rebuilt from its turns (task text, partition, steps, score).

    Its partition follows the one rule, :func:`~empo_gym.memory.memory_partition`: the memory
    wrapper's assignment (``traj.info["memory_partition"]``), else the task of the rollout's
    info, else its group id.

    Example:
        >>> from empo_gym.agents.llm.trajectory import Turn
        >>> traj = Trajectory("g0", 0, [Turn([], [], [], [], observation="hall", action="go")],
        ...                   score=5.0, info={"task": "boil"})
        >>> ep = rollout_episode(traj)
        >>> ep.partition, ep.steps[0].state, ep.final_score
        ('boil', 'hall', 5.0)
    """
    steps = [Step(t.observation, t.action, float(t.reward)) for t in traj.turns]
    return Episode(
        task=str(traj.info.get("instruction") or traj.info.get("task") or ""),
        partition=memory_partition(traj.info, default=traj.group_id),
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


def policy_tip_writer(policy: Any, sampling: SamplingConfig) -> PromptTipWriter:
    """The policy as tip writer (``list[Episode] -> list[str]``): ONE batched generation.

    Each episode becomes the memory module's tip prompt
    (:func:`empo_gym.memory.tips.build_tip_prompt`) as one user message; generation stops at the
    first sentence end and the answers are flattened (:class:`empo_gym.memory.tips.
    PromptTipWriter`). The ``memory-only`` agent writes its tips with it too.

    Args:
        policy: Anything with the policy ``generate(conversations, sampling)`` API.
        sampling: Temperature, token budget and seed of the tips.

    Example:
        >>> from empo_gym.agents.llm.policy import Generation
        >>> class Echo:
        ...     def generate(self, conversations, sampling=None):
        ...         return [Generation([], [], [], " Open it.\\n", "stop") for _ in conversations]
        >>> writer = policy_tip_writer(Echo(), SamplingConfig(max_new_tokens=8))
        >>> writer([Episode("open the box", "box/0", [Step("a box", "open box")])] * 2)
        ['Open it.', 'Open it.']
    """

    def generate(prompts: list[str]) -> list[str]:
        conversations = [[{"role": "user", "content": p}] for p in prompts]
        return [g.text for g in policy.generate(conversations, one_sentence(policy, sampling))]

    return PromptTipWriter(generate)


# --- 4. the algorithm the training loop calls ----------------------------------------------------
class EMPO:
    """EMPO² for the training loop: the mode draws with p and q, memory-wrapped training envs,
    and after each iteration's rollouts the novelty bonus and the policy's tips.

    The training envs are wrapped (:meth:`wrap_envs`) in :class:`~empo_gym.memory.MemoryWrapper`
    s that share one :class:`~empo_gym.memory.EpisodeRecorder` over :attr:`store`: they retrieve
    tips in memory rollouts and record every training episode -- each state embedded once, for
    retrieval and as its memory key -- but write nothing. After the rollouts,
    :meth:`after_rollouts`

    1. takes each rollout's recorded :class:`~empo_gym.memory.Episode` out of the recorder
       (matched by ``traj.info["memory_episode"]`` and checked step by step; a rollout no
       wrapper recorded is rebuilt from its turns by :func:`rollout_episode` and embedded once);
    2. scores every turn's state with the novelty reward (memory rollouts only) into
       ``Turn.intrinsic_reward``, from those embeddings;
    3. flushes the episodes with the policy as the tip writer -- all tips in **one** batched
       generation -- storing one entry per step keyed by the same embeddings.

    Args:
        cfg: The EMPO² settings (p, q, memory, novelty, tip budget; ``seed`` seeds the tips).
        store: The tip store (default: a new one with ``cfg``'s embedder, capacity, retrieval
            threshold and top-k).
        novelty: The novelty reward (default: one over the store's embedder at
            ``cfg.novelty_threshold`` when ``cfg.intrinsic_reward``, else none).
        tip_writer: Writes the tips instead of the policy (EMPO² has the policy write them;
            a rule is for policies too small to summarise, e.g. ``bench explore``'s).

    Example:
        >>> from empo_gym.toy import ToyTextEnv
        >>> empo = EMPO(EMPOConfig(memory_prob=1.0, off_policy_prob=1.0))
        >>> empo.modes(random.Random(0))
        (<RolloutMode.MEMORY: 'memory'>, <UpdateMode.OFF_POLICY: ('off_policy', True)>)
        >>> [type(env).__name__ for env in empo.wrap_envs([ToyTextEnv()])]
        ['MemoryWrapper']
    """

    name: ClassVar[str] = "empo"

    def __init__(
        self,
        cfg: EMPOConfig,
        *,
        store: MemoryStore | None = None,
        novelty: NoveltyReward | None = None,
        tip_writer: TipWriter | None = None,
    ) -> None:
        if not isinstance(cfg, EMPOConfig):
            raise TypeError(
                f"EMPO needs an EMPOConfig (agent 'empo'); got {type(cfg).__name__} "
                f"(agent {getattr(cfg, 'agent', None)!r})"
            )
        self.cfg = cfg
        if store is None:
            store = MemoryStore(
                cfg.memory_embedder,
                capacity=cfg.memory_capacity,
                threshold=cfg.memory_min_similarity,
                top_k=cfg.memory_top_k,
            )
        self.store = store
        self.recorder = EpisodeRecorder(self.store)
        if novelty is None and cfg.intrinsic_reward:
            novelty = NoveltyReward(self.store.embedder, threshold=cfg.novelty_threshold)
        self.novelty = novelty
        self.tip_sampling = SamplingConfig(
            temperature=TIP_TEMPERATURE, max_new_tokens=cfg.tip_max_tokens, seed=cfg.seed
        )
        self.tip_writer = tip_writer
        self.wrappers: list[MemoryWrapper | MemoryVectorWrapper] = []
        self.tips_written = 0
        self._retrieval_seen = 0.0
        self.timings: dict[str, float] = {}

    # -- the modes: memory rollouts with p, off-policy updates of those with q --------------------
    def modes(self, rng: random.Random) -> tuple[RolloutMode, UpdateMode]:
        """This iteration's modes (:func:`sample_modes` with ``cfg.memory_prob`` and
        ``cfg.off_policy_prob``)."""
        return sample_modes(rng, self.cfg.memory_prob, self.cfg.off_policy_prob)

    # -- the envs: retrieval in memory rollouts, every episode recorded ---------------------------
    def wrap_envs(self, envs: Sequence[Any]) -> list[Any]:
        """Each env in a training :class:`~empo_gym.memory.MemoryWrapper` that retrieves from
        :attr:`store` and records into :attr:`recorder` (it writes no tips itself)."""
        wrapped = [
            MemoryWrapper(env, recorder=self.recorder, novelty=False, training=True) for env in envs
        ]
        self.wrappers.extend(wrapped)  # their retrieval seconds join the timings
        return wrapped

    # -- after the rollouts: novelty, then tips ---------------------------------------------------
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
                groups.setdefault((traj.group_id, ep.partition), []).append((traj, ep))
        for (_, partition), members in groups.items():
            rewards = self.novelty.score_group(
                partition,
                [[s.state for s in ep.steps] for _, ep in members],
                [ep.keys if same else None for _, ep in members],
            )
            for (traj, _), member_rewards in zip(members, rewards, strict=True):
                for turn, r in zip(traj.turns, member_rewards, strict=True):
                    turn.intrinsic_reward = float(r)

    def after_rollouts(
        self, policy: Any, trajectories: list[Trajectory], rollout_mode: RolloutMode
    ) -> None:
        """Novelty for memory rollouts (0 for plain ones), then a policy-written tip for every
        trajectory (``Trajectory.tip``) and its entries in the store.

        :attr:`timings` splits the cost: ``tip_generate_s`` (the policy writing tips, an LLM
        cost EMPO² adds), ``memory_store_s`` (matching, novelty, embedding and storing) and
        ``memory_retrieval_s`` (the wrappers' memory work during the rollouts just finished).
        """
        t0 = time.perf_counter()
        episodes = self.episodes(trajectories)
        if rollout_mode.use_memory:
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
        self.timings = {
            "tip_generate_s": tip_s,
            "memory_store_s": (t1 - t0) + (t2 - t1 - tip_s),
            "memory_retrieval_s": retrieval - self._retrieval_seen,
        }
        self._retrieval_seen = retrieval

    # -- metrics and checkpoints ------------------------------------------------------------------
    def size(self) -> int:
        """Entries in the store."""
        return len(self.store)

    def stats(self) -> dict[str, Any]:
        """Counters for the run summary."""
        return {"memory_size": self.size(), "tips_written": self.tips_written}

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
