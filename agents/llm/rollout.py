"""Batched multi-turn rollouts: many envs and one policy in lockstep.

Each turn, the :class:`RolloutRunner` builds the prompts of all *active* episodes and answers
them with ONE batched generation, parses and projects the outputs onto admissible actions, steps
the envs and records a :class:`~empo_gym.agents.llm.trajectory.Turn` per episode. Rollouts come
in groups of ``G`` that start from the identical initial state (same reset seed and options).
An env whose episode ends leaves the batch; while rollouts are still queued it takes the next
one. The runner is also the trainer's rollout function: ``runner(policy, tasks, group_size,
use_memory)``.

Observations may be plain strings or the memory wrapper's dicts (raw observation + tips); only
:func:`~empo_gym.memory.observation.split_observation` (the env layer's contract) reads that
format.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import gymnasium as gym

from empo_gym.agents.llm.acting import Actor, ActStats
from empo_gym.agents.llm.policy import Policy, SamplingConfig
from empo_gym.agents.llm.prompts import EpisodeState, Prompt
from empo_gym.agents.llm.trajectory import Trajectory, Turn
from empo_gym.memory.episode import PARTITION_KEY, memory_partition
from empo_gym.memory.observation import (
    USE_MEMORY_OPTION,
    is_memory_env,
    split_observation,
)


@dataclass
class ResetSpec:
    """How to reset the envs of one group (every member uses the same seed and options).

    Attributes:
        seed: Reset seed.
        options: Reset options (task, variation, ...).
        group_id: Name of the group (defaults to ``"g{index}"``).
    """

    seed: int | None = None
    options: dict[str, Any] | None = None
    group_id: str | None = None


@dataclass
class RolloutStats(ActStats):
    """Timings and counts of the last :meth:`RolloutRunner.run` (the actor's, plus the envs').

    Attributes:
        env_seconds: Time inside env ``reset`` / ``step``.
        wall_seconds: Whole run.
    """

    env_seconds: float = 0.0
    wall_seconds: float = 0.0

    @property
    def tokens_per_second(self) -> float:
        """Generated tokens per wall-clock second of the run."""
        return self.generated_tokens / self.wall_seconds if self.wall_seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "generations": len(self.batch_sizes),
            "mean_batch_size": (
                sum(self.batch_sizes) / len(self.batch_sizes) if self.batch_sizes else 0.0
            ),
            "generated_tokens": self.generated_tokens,
            "generate_seconds": self.generate_seconds,
            "env_seconds": self.env_seconds,
            "wall_seconds": self.wall_seconds,
            "tokens_per_second": self.tokens_per_second,
            "parse": self.parse.as_dict(),
            "history_dropped": self.history_dropped,
        }


def _as_env_list(envs: Sequence[gym.Env] | gym.vector.VectorEnv) -> list[gym.Env]:
    if isinstance(envs, gym.vector.VectorEnv):
        sub = getattr(envs, "envs", None)
        if sub is None:
            raise TypeError(
                f"{type(envs).__name__} does not expose its sub-envs; the rollout runner steps "
                "envs individually (finished ones leave the batch). Pass a list of envs or a "
                "gymnasium.vector.SyncVectorEnv."
            )
        return list(sub)
    env_list = list(envs)
    if not env_list:
        raise ValueError("got no envs; expected at least one gymnasium env")
    return env_list


@dataclass
class _Slot:
    env: gym.Env
    traj: Trajectory | None = None
    state: EpisodeState | None = None
    tips: list[str] | str | None = None
    turns: int = 0


class RolloutRunner:
    """Runs groups of rollouts over many envs with one batched generation per turn.

    Call :meth:`run` with reset specs, or call the runner itself as the trainer's rollout
    function (:data:`~empo_gym.agents.training.trainer.RolloutFn`): ``runner(policy, tasks,
    group_size, use_memory)``.

    Args:
        policy: A :class:`~empo_gym.agents.llm.policy.Policy`; a
            :class:`~empo_gym.agents.llm.policy.TokenPolicy` gets full token records. None:
            the policy each call passes (the trainer's rollout function; :meth:`run` needs one).
        envs: A list of gymnasium envs or a ``SyncVectorEnv`` (its sub-envs are used).
        env_name: Env short name choosing prompt and parsing (``scienceworld``, ``webshop``).
        prompt_style: A prompt style instead of the env profile's (see :class:`Actor`).
        action_format: An answer format instead of the env profile's.
        max_turns: Episodes are truncated after this many actions.
        sampling: Sampling override for these rollouts (else the policy's own).
        prompt_kwargs: Extra arguments of the prompt builder (``max_history``, ...).
        prompt_fn: Replaces :func:`~empo_gym.agents.llm.prompts.build_prompt` (same signature).
        max_context_tokens: Longest prompt in tokens; older history is dropped first (see
            :class:`~empo_gym.agents.llm.acting.Actor`).
    """

    def __init__(
        self,
        policy: Policy | None,
        envs: Sequence[gym.Env] | gym.vector.VectorEnv,
        env_name: str = "scienceworld",
        *,
        prompt_style: str | None = None,
        action_format: str | None = None,
        max_turns: int = 30,
        sampling: SamplingConfig | None = None,
        prompt_kwargs: dict[str, Any] | None = None,
        prompt_fn: Callable[..., Prompt] | None = None,
        max_context_tokens: int | None = None,
    ) -> None:
        if max_turns < 1:
            raise ValueError(f"max_turns={max_turns!r}; expected >= 1")
        self.envs = _as_env_list(envs)
        self._acting: dict[str, Any] = {
            "env_name": env_name,
            "prompt_style": prompt_style,
            "action_format": action_format,
            "sampling": sampling,
            "prompt_kwargs": prompt_kwargs,
            "prompt_fn": prompt_fn,
            "max_context_tokens": max_context_tokens,
        }
        self._actor = None if policy is None else self._actor_for(policy)
        self.max_turns = max_turns
        self.stats = RolloutStats()

    def _actor_for(self, policy: Policy) -> Actor:
        # token-level policies record the exact ids (with and without tips) the trainer needs
        acting = dict(self._acting)
        return Actor(policy, acting.pop("env_name"), needed_by="RolloutRunner", **acting)

    @property
    def actor(self) -> Actor:
        """The prompt -> generate -> parse path of the current policy."""
        if self._actor is None:
            raise RuntimeError(
                "RolloutRunner has no policy yet; expected RolloutRunner(policy, ...) or a call "
                "runner(policy, tasks, group_size, use_memory)"
            )
        return self._actor

    @property
    def policy(self) -> Policy:
        """The policy the runner generates with."""
        return self.actor.policy

    @property
    def token_level(self) -> bool:
        """Whether the policy is token-level (turns then carry exact token ids)."""
        return self.actor.token_level

    # ------------------------------------------------------------------ api
    def __call__(
        self, policy: Policy, tasks: Sequence[Any], group_size: int, use_memory: bool
    ) -> list[Trajectory]:
        """The trainer's rollout function: ``group_size`` episodes per task with ``policy``.

        Tasks are :class:`ResetSpec` (or bare seeds); each becomes a group with a fresh id
        (``g0``, ``g1``, ...), so one task drawn twice still forms two groups.

        Args:
            policy: The policy to generate with (the runner switches to it when it changes).
            tasks: One task instance per group.
            group_size: Rollouts per group (G).
            use_memory: Memory rollouts (tips in the prompts).
        """
        if self._actor is None or self._actor.policy is not policy:
            self._actor = self._actor_for(policy)
        specs = []
        for i, task in enumerate(tasks):
            spec = task if isinstance(task, ResetSpec) else ResetSpec(seed=task)
            specs.append(ResetSpec(seed=spec.seed, options=spec.options, group_id=f"g{i}"))
        return self.run(specs, group_size, memory_mode=use_memory)

    def run(
        self,
        specs: Sequence[ResetSpec | int | None],
        group_size: int = 8,
        *,
        memory_mode: bool = False,
    ) -> list[Trajectory]:
        """Roll out ``group_size`` episodes per spec; return trajectories in (group, member) order.

        Args:
            specs: One :class:`ResetSpec` (or a bare seed) per group.
            group_size: Rollouts per group (G), all from the identical initial state.
            memory_mode: Put the tips carried by observations into the prompts.
        """
        if group_size < 1:
            raise ValueError(f"group_size={group_size!r}; expected >= 1")
        jobs: deque[tuple[ResetSpec, str, int]] = deque()
        rank: dict[tuple[str, int], int] = {}
        for g, spec in enumerate(specs):
            spec = spec if isinstance(spec, ResetSpec) else ResetSpec(seed=spec)
            gid = spec.group_id or f"g{g}"
            for m in range(group_size):
                if (gid, m) in rank:
                    raise ValueError(f"group_id {gid!r} appears twice; expected unique ids")
                rank[(gid, m)] = len(jobs)
                jobs.append((spec, gid, m))
        self.stats = RolloutStats()
        start = time.perf_counter()
        slots = [_Slot(env) for env in self.envs]
        done: list[Trajectory] = []
        while jobs or any(s.traj is not None for s in slots):
            for slot in slots:
                if slot.traj is None and jobs:
                    self._start(slot, *jobs.popleft(), memory_mode=memory_mode)
            active = [s for s in slots if s.traj is not None]
            if active:
                done.extend(self._turn(active, memory_mode))
        self.stats.wall_seconds = time.perf_counter() - start
        return sorted(done, key=lambda t: rank[(t.group_id, t.member)])

    # ------------------------------------------------------------- internals
    def _start(
        self, slot: _Slot, spec: ResetSpec, gid: str, member: int, *, memory_mode: bool
    ) -> None:
        options = spec.options
        if is_memory_env(slot.env):  # retrieval on for memory rollouts only
            options = {**(options or {}), USE_MEMORY_OPTION: memory_mode}
        t0 = time.perf_counter()
        obs, info = slot.env.reset(seed=spec.seed, options=options)
        self.stats.env_seconds += time.perf_counter() - t0
        text, tips = split_observation(obs)
        slot.state = EpisodeState.start(text, info)
        slot.tips = tips if memory_mode else None
        slot.turns = 0
        slot.traj = Trajectory(
            group_id=gid,
            member=member,
            memory_mode=memory_mode,
            info={
                "seed": spec.seed,
                "options": spec.options,
                "task": info.get("task"),
                "instruction": slot.state.instruction,
                "first_observation": text,
                # the one partition rule; an env whose info has no task: the group id
                PARTITION_KEY: memory_partition(info, default=gid),
                # the memory wrapper's id of the episode it records: the trainer's EMPO² algorithm
                # takes that record (and its state embeddings) instead of rebuilding it
                "memory_episode": info.get("memory_episode"),
            },
        )

    def _turn(self, active: Sequence[_Slot], memory_mode: bool) -> list[Trajectory]:
        # one route key per trajectory: a multi-server backend keeps it on one server, whose
        # prefix cache then serves its growing prompts
        keys = [f"{s.traj.group_id}/{s.traj.member}" for s in active if s.traj is not None]
        decisions = self.actor.decide(
            [cast(EpisodeState, s.state) for s in active],
            [s.tips for s in active],
            self.stats,
            route_keys=keys if self.token_level else None,
        )
        finished: list[Trajectory] = []
        token_level = self.token_level
        for slot, decision in zip(active, decisions, strict=True):
            assert slot.state is not None and slot.traj is not None
            prompt, enc, gen, parsed = (
                decision.prompt,
                decision.encoded,
                decision.generation,
                decision.parsed,
            )
            t0 = time.perf_counter()
            obs, reward, terminated, truncated, info = slot.env.step(parsed.action)
            self.stats.env_seconds += time.perf_counter() - t0
            used_tips = bool(prompt.has_tips and token_level and enc.used_tips) or (
                prompt.has_tips and not token_level
            )
            slot.traj.turns.append(
                Turn(
                    prompt_ids=list(enc.ids),
                    prompt_ids_no_tips=list(enc.ids_no_tips),
                    response_ids=list(gen.response_ids),
                    logprobs=list(gen.logprobs),
                    reward=float(reward),
                    used_tips=used_tips,
                    action=parsed.action,
                    raw_output=gen.text,
                    parse_ok=parsed.ok,
                    tip_span=enc.tip_span if used_tips else None,
                    tips=list(prompt.tips) if used_tips else [],
                    observation=slot.state.observation,
                    intrinsic_reward=float(info.get("intrinsic_reward", 0.0) or 0.0),
                )
            )
            text, tips = split_observation(obs)
            slot.state.advance(parsed.action, text, info)
            slot.tips = tips if memory_mode else None
            slot.turns += 1
            over_limit = slot.turns >= self.max_turns
            if terminated or truncated or over_limit:
                traj = slot.traj
                traj.score = float(info.get("score", traj.episode_return))
                traj.success = bool(info.get("success", False))
                traj.info.update(
                    steps=slot.turns,
                    terminated=bool(terminated),
                    truncated=bool(truncated or (over_limit and not terminated)),
                    parse_failures=sum(not t.parse_ok for t in traj.turns),
                    history=list(slot.state.history),
                    final_observation=text,
                    final_info=dict(info),
                )
                finished.append(traj)
                slot.traj, slot.state, slot.tips = None, None, None
        return finished
