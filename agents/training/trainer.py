"""The GRPO / EMPO² training loop (CleanRL style: one iteration, read top to bottom).

One iteration, as in the EMPO² paper::

    tasks            <- B task instances
    rollout, update  <- algorithm.modes(rng)   (GRPO: plain / on-policy; EMPO²: memory with p,
                                                then off-policy with q)
    trajectories     <- rollout_fn(policy, tasks, G, use_memory)       # B x G episodes
    after rollouts   <- algorithm.after_rollouts(...)   (EMPO²: tips into memory, intrinsic
                                                rewards into the turns)
    policy update    <- empo_gym.agents.training.update.policy_update(...)
    metrics.jsonl    <- one line; checkpoint every `checkpoint_every` iterations

The rollouts (:class:`~empo_gym.agents.llm.rollout.RolloutRunner` is a rollout function) and
the algorithm (:class:`~empo_gym.agents.training.algorithm.Algorithm`: GRPO, or EMPO² in
:mod:`empo_gym.agents.training.empo`) are injected, so the loop is tested with fakes and
wired to :mod:`empo_gym.agents.llm.rollout` / :mod:`empo_gym.memory` by
:mod:`empo_gym.agents.training.setup`.
The :class:`~empo_gym.agents.training.engine.Engine` holds the weights (DDP replicas or FSDP2
shards, fp32 masters, activation checkpointing) and its
:class:`~empo_gym.agents.training.process_group.ProcessGroup` the processes, so
``accelerate launch`` / ``torchrun`` work: each process rolls out its share of the tasks.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from empo_gym.agents.llm.policy import ServedPolicy, TrainablePolicy, check_policy
from empo_gym.agents.llm.trajectory import Trajectory
from empo_gym.agents.training.algorithm import Algorithm, make_algorithm
from empo_gym.agents.training.checkpoint import (
    load_checkpoint,
    load_newest_intact,
    save_checkpoint,
)
from empo_gym.agents.training.config import GRPOConfig
from empo_gym.agents.training.engine import DCP_DIR, Engine
from empo_gym.agents.training.process_group import ProcessGroup
from empo_gym.agents.training.run_lock import RunLock
from empo_gym.agents.training.update import make_optimizer, policy_update
from empo_gym.atomic_io import find_temps, make_temp_dir, write_text_atomic
from empo_gym.protocols import missing_members
from empo_gym.run_metrics import (
    METRICS_FILE,
    append_metrics,
    read_metrics,
    write_metrics,
)

RolloutFn = Callable[[Any, Sequence[Any], int, bool], list[Trajectory]]
"""``rollout_fn(policy, tasks, group_size, use_memory) -> trajectories`` (B x G, group order)."""

CHECKPOINTS_DIR = "checkpoints"
FINAL_MODEL_DIR = "model"
"""Under FSDP2: the HF-format model gathered from the shards at the end of the run."""


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        iterations: Iterations completed (including those before a resume).
        history: One metrics dict per iteration run in this call.
        resumed_from: Iteration the run resumed from (0 for a fresh run).
        output_dir: Directory of metrics.jsonl and checkpoints/.
        main_process: False on the non-main processes of an ``accelerate launch`` run (they
            write nothing; rank 0 owns metrics, checkpoints and evaluation).
    """

    iterations: int
    history: list[dict[str, Any]] = field(default_factory=list)
    resumed_from: int = 0
    output_dir: Path | None = None
    main_process: bool = True


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch generators.

    Example:
        >>> seed_everything(3); a = random.random(); seed_everything(3); a == random.random()
        True
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def group_trajectories(trajectories: Sequence[Trajectory]) -> list[list[Trajectory]]:
    """Group trajectories by ``group_id`` in order of first appearance.

    Example:
        >>> ts = [Trajectory("a", 0), Trajectory("b", 0), Trajectory("a", 1)]
        >>> [[t.member for t in g] for g in group_trajectories(ts)]
        [[0, 1], [0]]
    """
    groups: dict[str, list[Trajectory]] = {}
    for traj in trajectories:
        groups.setdefault(traj.group_id, []).append(traj)
    return list(groups.values())


class TrainingRun:
    """A GRPO / EMPO² run advanced one iteration at a time (:func:`train` drives it to the end).

    Stepping lets ``empo-gym bench train`` interleave a GRPO and an EMPO² run iteration by
    iteration, so both see the same machine load. Arguments are those of :func:`train`.
    """

    def __init__(
        self,
        cfg: GRPOConfig,
        policy: TrainablePolicy,
        rollout_fn: RolloutFn,
        tasks: Sequence[Any],
        *,
        algorithm: Algorithm | None = None,
        ref_model: torch.nn.Module | None = None,
        resume: bool = True,
        on_iteration: Callable[[dict[str, Any]], None] | None = None,
        run_lock: RunLock | None = None,
    ) -> None:
        if not tasks:
            raise ValueError("tasks is empty; expected at least one training task instance")
        check_policy(policy, TrainablePolicy, needed_by="the trainer")
        algorithm = _check_algorithm(cfg, algorithm)
        # the engine holds the weights (fp32 masters, FSDP2 shards) and the process group
        self.engine = Engine.from_config(cfg, ProcessGroup.join())
        group = self.group = self.engine.group
        self.cfg, self.policy, self.rollout_fn, self.tasks = cfg, policy, rollout_fn, tasks
        self.algorithm, self.ref_model = algorithm, ref_model
        self.on_iteration = on_iteration
        self.out_dir = Path(cfg.output_dir)
        self.ckpt_root = self.out_dir / CHECKPOINTS_DIR
        self.metrics_path = self.out_dir / METRICS_FILE
        self.main = group.is_main
        self._lock: RunLock | None = None  # the lock this run took (and releases at close)
        if self.main:  # one run per output_dir (the other ranks share rank 0's)
            if run_lock is None:
                self._lock = RunLock(self.out_dir).acquire()
            self.out_dir.mkdir(parents=True, exist_ok=True)
            write_text_atomic(
                self.out_dir / "config.json", json.dumps(cfg.to_dict(), indent=1) + "\n"
            )

        # seeds, device, rank 0's initial weights everywhere (e.g. a LoRA adapter's random
        # init; the averaged gradients then keep them identical), engine, optimizer, resume
        seed_everything(cfg.seed + group.rank)
        self.trainer_rng = random.Random(cfg.seed)  # same on every process: identical mode draws
        self.model = policy.model.to(group.device)
        group.broadcast_(t.data for t in [*self.model.parameters(), *self.model.buffers()])
        self.model = self.engine.wrap_model(self.model)
        if ref_model is not None:
            self.ref_model = self.engine.wrap_reference(ref_model)
        self.optimizer = make_optimizer(self.model, cfg)
        self.start = 0
        state = load_newest_intact(self.ckpt_root, self._resume) if resume else None
        saved_row = None
        if state is not None:
            self.start = state.iteration
            saved_row = state.extra.get("metrics_row")
            sampling = state.extra.get("policy_sampling")
            if sampling is not None:
                policy.load_sampling_state(sampling)  # the seeds of the next rollouts
            _weights_changed(policy, self.model, self.engine)
        _check_same_start(self.start, group)
        if self.main:  # drop metric lines of iterations after the checkpoint (killed mid-way)
            rows = []
            if self.metrics_path.exists():
                rows = [r for r in read_metrics(self.metrics_path) if r["iteration"] < self.start]
            # killed after the checkpoint, before its iteration's line: take it from the checkpoint
            if saved_row is not None and all(
                r["iteration"] != saved_row["iteration"] for r in rows
            ):
                rows.append(saved_row)
            write_metrics(self.metrics_path, rows)
        self.iteration = self.start
        self.history: list[dict[str, Any]] = []
        self._b_local = group.local_share(cfg.tasks_per_iter)

    @property
    def done(self) -> bool:
        """True once ``cfg.iterations`` iterations are complete."""
        return self.iteration >= self.cfg.iterations

    def step(self) -> dict[str, Any]:
        """Run one iteration (rollouts, the algorithm's turn, update, checkpoint); returns its
        metrics row."""
        if self.done:
            raise RuntimeError(f"the run already completed its {self.cfg.iterations} iterations")
        cfg, model, algorithm, policy = self.cfg, self.model, self.algorithm, self.policy
        iteration = self.iteration
        t_iter = time.perf_counter()

        # 1. tasks and modes of this iteration
        picks = [self.trainer_rng.randrange(len(self.tasks)) for _ in range(cfg.tasks_per_iter)]
        my_tasks = [self.tasks[i] for i in picks][self._b_local]
        rollout_mode, update_mode = algorithm.modes(self.trainer_rng)

        # 2. rollouts: B x G episodes (sampling needs no gradients; FSDP2 gathers the weights)
        # 3. the algorithm's turn (EMPO²: tips into memory, intrinsic rewards into the turns)
        t0 = time.perf_counter()
        model.eval()
        with torch.no_grad(), self.engine.generation(model):
            trajectories = self.rollout_fn(
                policy, my_tasks, cfg.group_size, rollout_mode.use_memory
            )
            rollout_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            algorithm.after_rollouts(policy, trajectories, rollout_mode)
            memory_s = time.perf_counter() - t0

        # 4. policy update on group-relative advantages (a colocated sampler sleeps meanwhile),
        #    then the new weights go to the sampler
        if isinstance(policy, ServedPolicy):
            policy.pause()
        upd = policy_update(
            model,
            self.optimizer,
            group_trajectories(trajectories),
            update_mode,
            cfg,
            policy.pad_id,
            ref_model=self.ref_model,
            engine=self.engine,
        )
        weight_sync_s = _weights_changed(policy, model, self.engine)

        # 5. metrics row, checkpoint (holding the row: a kill before the row is appended must
        #    not lose it), metrics line
        done = iteration + 1
        row = {
            "iteration": iteration,
            "agent": cfg.agent,
            "rollout_mode": rollout_mode.value,
            "update_mode": update_mode.label,
            "return": float(np.mean([t.episode_return for t in trajectories] or [0.0])),
            "score": float(np.mean([t.score for t in trajectories] or [0.0])),
            "success": float(np.mean([t.success for t in trajectories] or [0.0])),
            "episode_len": float(np.mean([len(t.turns) for t in trajectories] or [0.0])),
            "intrinsic": float(
                np.mean([sum(x.intrinsic_reward for x in t.turns) for t in trajectories] or [0.0])
            ),
            "memory_size": algorithm.size(),
            "rollout_s": rollout_s,
            "memory_s": memory_s,
            "weight_sync_s": weight_sync_s,
            **{k: v for k, v in upd.items() if k != "return_mean"},
            **algorithm.timings,
        }
        # each process rolled out its share of the tasks: their metrics are averaged
        means = self.group.mean([row[k] for k in _PER_PROCESS_MEANS])
        row.update(zip(_PER_PROCESS_MEANS, means, strict=True))
        t0 = time.perf_counter()
        if cfg.checkpoint_every and done % cfg.checkpoint_every == 0:
            self._checkpoint(done, row)
        checkpoint_s = time.perf_counter() - t0
        iter_s = time.perf_counter() - t_iter
        row["checkpoint_s"] = checkpoint_s
        row["iter_s"] = iter_s
        row["memory_share"] = memory_s / iter_s if iter_s > 0 else 0.0
        self.history.append(row)
        self.iteration = done
        if self.main:
            append_metrics(self.metrics_path, row)
        if self.on_iteration is not None:
            self.on_iteration(row)
        return row

    def finish(self) -> None:
        """Checkpoint the final state once (when the last iteration did not already)."""
        cfg = self.cfg
        if not (self.done and self.history):
            return
        if not cfg.checkpoint_every or self.iteration % cfg.checkpoint_every:
            self._checkpoint(self.iteration)
        if self.engine.sharded:  # DDP checkpoints already hold the whole model
            self.engine.export(self.model, self.out_dir / FINAL_MODEL_DIR)

    def close(self) -> None:
        """Release the output directory's run lock (:func:`train` does it at the end)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _resume(self, found: Path) -> Any:
        """Load checkpoint ``found``: full weights, or (FSDP2) this rank's DCP shards, and the
        algorithm's state (EMPO²: memory); raises when it does not load (the caller then tries
        an older one)."""
        sharded = (found / DCP_DIR).is_dir()
        if sharded != self.engine.sharded:
            written, now = ("fsdp2", "ddp") if sharded else ("ddp", "fsdp2")
            raise ValueError(
                f"checkpoint {found} was written by the {written} backend; this run uses {now} "
                f"(set backend: {written} to resume it, or use a new output_dir)"
            )
        model = None if sharded else self.model
        optimizer = None if sharded else self.optimizer
        state = load_checkpoint(found, model, optimizer, trainer_rng=self.trainer_rng)
        if sharded:  # after load_checkpoint: each rank's own RNG states replace rank 0's
            self.engine.load_sharded(found / DCP_DIR, self.model, self.optimizer)
        self.algorithm.load(found)
        return state

    def _checkpoint(self, iteration: int, row: dict[str, Any] | None = None) -> Path | None:
        """Rank 0 writes the checkpoint; under FSDP2 every rank first writes its shards."""
        model, algorithm = self.model, self.algorithm
        extra: dict[str, Any] = {
            "config": self.cfg.to_dict(),
            "policy_sampling": self.policy.sampling_state(),
        }
        if row is not None:
            extra["metrics_row"] = row
        write_extra = algorithm.save
        weights: torch.nn.Module | None = model
        if self.engine.sharded:
            staged = f"dcp-{iteration:06d}"  # rank 0's temp dir for every rank's shards
            if self.main:
                self.ckpt_root.mkdir(parents=True, exist_ok=True)
                for old in find_temps(self.ckpt_root, staged):  # a killed save's (run lock held)
                    shutil.rmtree(old, ignore_errors=True)
                make_temp_dir(self.ckpt_root, staged)
            self.group.barrier()
            (staging,) = find_temps(self.ckpt_root, staged)
            self.engine.save_sharded(staging, model, self.optimizer)
            self.group.barrier()
            if not self.main:
                return None

            def write_extra(tmp: Path) -> None:  # the shards join the atomic checkpoint write
                os.replace(staging, tmp / DCP_DIR)
                algorithm.save(tmp)

            weights = None
        elif not self.main:
            return None
        return save_checkpoint(
            self.ckpt_root,
            iteration,
            weights,
            None if weights is None else self.optimizer,
            trainer_rng=self.trainer_rng,
            extra=extra,
            write_extra=write_extra,
            keep=self.cfg.keep_checkpoints,
        )


def train(
    cfg: GRPOConfig,
    policy: TrainablePolicy,
    rollout_fn: RolloutFn,
    tasks: Sequence[Any],
    *,
    algorithm: Algorithm | None = None,
    ref_model: torch.nn.Module | None = None,
    resume: bool = True,
    stop_after: int | None = None,
    on_iteration: Callable[[dict[str, Any]], None] | None = None,
    run_lock: RunLock | None = None,
) -> TrainResult:
    """Train ``policy`` with GRPO or EMPO² (the algorithm ``cfg.agent`` names).

    Args:
        cfg: The trainer settings (GRPO's, or EMPO²'s which extend them).
        policy: A :class:`~empo_gym.agents.llm.policy.TrainablePolicy` (its ``model`` is trained
            in place and also samples); passed through to ``rollout_fn`` and ``algorithm``.
        rollout_fn: ``(policy, tasks, group_size, use_memory) -> list[Trajectory]``.
        tasks: Training task instances; each iteration draws ``cfg.tasks_per_iter`` of them.
        algorithm: The :class:`~empo_gym.agents.training.algorithm.Algorithm` (modes, what
            happens after the rollouts, its checkpointed state); None: the one ``cfg``
            configures (:func:`~empo_gym.agents.training.algorithm.make_algorithm`). Its
            ``name`` must be ``cfg.agent``. Wrap the training envs with its ``wrap_envs``.
        ref_model: Frozen reference policy for ``kl_coef > 0`` (LoRA uses its base model).
        resume: Continue from ``<output_dir>/checkpoints`` when a checkpoint exists.
        stop_after: Stop after this many iterations of this call (tests simulate a kill).
        on_iteration: Called with each iteration's metrics row (progress display).
        run_lock: The run lock of ``cfg.output_dir`` the caller already holds (a learning
            agent takes it before its model loads); None: the main process takes it here.

    Returns:
        A :class:`TrainResult`.

    Raises:
        ValueError: ``tasks`` is empty, or ``algorithm`` is not the one ``cfg`` names.
        TypeError: ``policy`` is not a ``TrainablePolicy`` or ``algorithm`` not an
            ``Algorithm`` (the message names what it lacks).
    """
    run = TrainingRun(
        cfg,
        policy,
        rollout_fn,
        tasks,
        algorithm=algorithm,
        ref_model=ref_model,
        resume=resume,
        on_iteration=on_iteration,
        run_lock=run_lock,
    )
    try:
        while not run.done and (stop_after is None or len(run.history) < stop_after):
            run.step()
        run.finish()
        run.engine.gather_for_inference(run.model)  # FSDP2: rank 0 evaluates without the others
    finally:
        run.close()
    return TrainResult(
        iterations=run.iteration,
        history=run.history,
        resumed_from=run.start,
        output_dir=run.out_dir,
        main_process=run.main,
    )


def _check_algorithm(cfg: GRPOConfig, algorithm: Algorithm | None) -> Algorithm:
    """``algorithm``, or the one ``cfg`` configures; raises when it does not fit ``cfg``."""
    if algorithm is None:
        return make_algorithm(cfg)
    missing = missing_members(algorithm, Algorithm)
    if missing:
        raise TypeError(
            f"the trainer needs an Algorithm; got {type(algorithm).__name__}, which lacks "
            f"{', '.join(missing)} (see empo_gym.agents.training.algorithm)"
        )
    if algorithm.name != cfg.agent:
        raise ValueError(
            f"algorithm {algorithm.name!r} does not match the config's agent {cfg.agent!r}; "
            "expected the algorithm the config is for (make_algorithm(cfg) builds it)"
        )
    return algorithm


#: Metrics of each process's own share of the trajectories, averaged over processes.
_PER_PROCESS_MEANS = ("return", "score", "success", "episode_len", "intrinsic")


def _check_same_start(start: int, group: ProcessGroup) -> None:
    """All processes must resume from the same checkpoint (else their updates never match)."""
    starts = group.gather(start)
    if len(set(starts)) != 1:
        raise RuntimeError(
            f"processes resumed from different iterations {starts}; expected one shared "
            "output_dir (set it in the config) visible to every process"
        )


def _weights_changed(policy: TrainablePolicy, model: torch.nn.Module, engine: Engine) -> float:
    """Drop caches computed with the old weights (TransformersPolicy's prefix KV cache: a stale
    cache makes the sampling log-probs disagree with the trainer's, so on-policy ratios != 1)
    and give a separate sampler (vLLM) the new weights; returns the sync's seconds.

    Under FSDP2 every rank joins the gathering of the full weights (collectives), and the sync
    runs with the layers unsharded, so rank 0's probe forward passes need no other rank."""
    policy.clear_prefix_cache()
    if not isinstance(policy, ServedPolicy):
        return 0.0
    group = engine.group
    state = engine.full_state_dict(model) if engine.sharded else None
    with engine.generation(model) if engine.sharded else contextlib.nullcontext():
        seconds = policy.sync_weights(
            model, main=group.is_main, rank=group.rank, state_dict=state or None
        )
    group.barrier()  # nobody samples before the sync is done
    return seconds
