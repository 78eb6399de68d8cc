"""Train a tiny Llama with ``train`` under FSDP2 on 2 gloo processes (helper of test_fsdp.py).

Launched as ``python -m torch.distributed.run --standalone --nproc_per_node 2 fsdp_train.py
OUT_DIR [KILL_AT MARKER]`` (with ``KILL_AT``: the SIGKILL scenario of :func:`main`). Each case
trains :data:`ITERATIONS` iterations (one task per rank and iteration); the sharded run exports
its final model (``OUT_DIR/<case>/run/model``, written by rank 0) and every rank writes
``rank<r>.json`` (the process group it saw and its local metrics). The test imports
:func:`run_case` to train the same case in one process (the reference).

Rollouts are deterministic and score every turn with the (gathered) model, so ranks run
different numbers of forward passes while they roll out; in ``unequal`` cases task ``t``
answers with ``1 + t`` turns, so ranks also hold different numbers of turns (and micro-batches)
in the update: FSDP2 deadlocks unless the engine balances them.
"""

from __future__ import annotations

import faulthandler
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[2]
CASES = ("equal", "unequal", "unequal_kl", "equal_lora", "unequal_lora_kl")
"""Turn counts per rank (``equal`` / ``unequal``), with the KL term and / or LoRA."""
TASKS = [0, 1, 2, 3]
SEED = 4
"""With 4 tasks, seed 4 draws two different tasks in each of the first 3 iterations."""
ITERATIONS = 3
DEADLOCK_S = 150
"""Dump every thread's stack and exit after this long (a collective waiting for a peer)."""
BLOCK_S = 300.0
"""How long the kill point sleeps (the test kills the processes long before)."""
RESUME_CASE = "unequal_kl"
"""The case also trained as 2 iterations + a resumed third (DCP round trip)."""


def make_rollout(case: str):
    """A fake ``rollout_fn``: fixed prompts, responses and rewards per (task, member, turn)."""
    from empo_gym.agents.llm.trajectory import Trajectory
    from tests.training.train_helpers import VOCAB, make_turn

    def rollout(policy: Any, tasks: list[int], group_size: int, use_memory: bool):
        trajs = []
        for gi, task in enumerate(tasks):
            for m in range(group_size):
                turns = []
                for k in range(1 + task if case.startswith("unequal") else 2):
                    length = 1 + (m + k) % 3
                    response = [
                        3 + (7 * task + 5 * m + 3 * j + k) % (VOCAB - 3) for j in range(length)
                    ]
                    prompt = [1, 10 + task, 20 + m % 2, 30 + k, 5]
                    reward = float((m + task) % 2) if k == 0 else 0.0
                    turns.append(make_turn(policy.model, prompt, response, reward=reward))
                trajs.append(Trajectory(f"g{gi}", m, turns))
        return trajs

    return rollout


def make_config(case: str, output_dir: Path, backend: str, **overrides: Any):
    """The trainer config of ``case``."""
    from empo_gym.agents.training.config import GRPOConfig

    settings: dict[str, Any] = {
        "iterations": ITERATIONS,
        "tasks_per_iter": 2,
        "group_size": 4,
        "lr": 1e-2,
        "weight_decay": 0.0,
        # Adam divides by sqrt(v) + eps: an entry whose gradient is 0 up to rounding (~1e-10,
        # e.g. LoRA's first steps) would move by a random-signed step at eps 1e-8, turning
        # summation-order noise into 1e-4 relative differences between 1 and 2 processes
        "adam_eps": 1e-5,
        "micro_batch_size": 3,  # several micro-batches: gradient accumulation and padding
        "checkpoint_every": 1,
        "keep_checkpoints": ITERATIONS,
        "low_prob_masking": False,  # masking could drop turns and change the token counts
        "kl_coef": 0.05 if "kl" in case else 0.0,
        "lora": "lora" in case,
        "seed": SEED,
        "backend": backend,
        "output_dir": str(output_dir),
    }
    return GRPOConfig(**{**settings, **overrides})


def make_policy(case: str):
    """A bandit policy over the tiny model (a LoRA adapter on q/v in ``lora`` cases)."""
    from tests.training.train_helpers import BanditPolicy, make_tiny_model

    model = make_tiny_model(0)
    if "lora" in case:
        from peft import LoraConfig, get_peft_model

        torch.manual_seed(1)  # the adapter's init: the same on every rank and in the reference
        model = get_peft_model(
            model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
        )
    return BanditPolicy(model)


def run_case(case: str, output_dir: Path, backend: str = "ddp", **kwargs: Any):
    """Train ``case`` from a fresh model; return ``(policy, result)``."""
    from empo_gym.agents.training.setup import reference_model
    from empo_gym.agents.training.trainer import train

    cfg = make_config(case, output_dir, backend)
    policy = make_policy(case)
    ref = reference_model(cfg, policy)  # LoRA: the adapter-free model (None)
    result = train(cfg, policy, make_rollout(case), TASKS, ref_model=ref, **kwargs)
    return policy, result


def trained_weights(policy: Any) -> dict[str, torch.Tensor]:
    """What the export holds: the adapter of a PEFT model, else every weight (CPU copies)."""
    from empo_gym.agents.llm.lora import is_lora

    model = policy.model
    if is_lora(model):
        from peft import get_peft_model_state_dict

        state = get_peft_model_state_dict(model)
    else:
        state = model.state_dict()
    return {k: v.detach().cpu().clone().contiguous() for k, v in state.items()}


def install_kill_point(iteration: int, marker: Path) -> None:
    """Block rank 0 inside the write of checkpoint ``iteration``, after the DCP shards joined
    its temporary directory and before it is published (the test SIGKILLs every process)."""
    from empo_gym.agents.training import trainer

    original = trainer.save_checkpoint  # AttributeError when renamed: fail loudly

    def save(root: Path, it: int, *args: Any, write_extra: Any = None, **kwargs: Any) -> Path:
        def extra(tmp: Path) -> None:
            if write_extra is not None:
                write_extra(tmp)
            if it == iteration:
                tmp_marker = marker.with_name(marker.name + ".tmp")
                tmp_marker.write_text(f"{it}\n", encoding="utf-8")
                os.replace(tmp_marker, marker)
                time.sleep(BLOCK_S)
                raise SystemExit(f"kill point {it} was not killed within {BLOCK_S} s")

        return original(root, it, *args, write_extra=extra, **kwargs)

    trainer.save_checkpoint = save


def main(out: Path, kill_at: int | None = None, marker: Path | None = None) -> None:
    """All cases (no ``kill_at``), or the kill run / its resume of :data:`RESUME_CASE` in
    ``OUT/killed`` (``kill_at`` set: block at that checkpoint; 0: resume)."""
    import torch.distributed as dist

    faulthandler.dump_traceback_later(DEADLOCK_S, exit=True)  # a hang shows where it hangs
    torch.set_num_threads(1)  # tiny matrices; 2 ranks share 2 cores
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    if kill_at is not None:
        if kill_at and rank == 0:
            install_kill_point(kill_at, marker)
        _, result = run_case(RESUME_CASE, out / "killed", backend="fsdp2")
        (out / "killed" / f"rank{rank}.json").write_text(
            json.dumps({"resumed_from": result.resumed_from})
        )
        dist.barrier()
        dist.destroy_process_group()
        return
    for case in CASES:
        case_dir = out / case
        _, result = run_case(case, case_dir / "run", backend="fsdp2")
        info = {
            "world": dist.get_world_size(),
            "backend": dist.get_backend(),
            "history": [
                {k: row[k] for k in ("tokens", "turns", "steps", "grad_norm", "skipped_steps")}
                for row in result.history
            ],
        }
        (case_dir / f"rank{rank}.json").write_text(json.dumps(info))
    # DCP round trip: stop after 2 iterations, resume the third from the sharded checkpoint
    resumed = out / "resumed"
    run_case(RESUME_CASE, resumed, backend="fsdp2", stop_after=2)
    _, result = run_case(RESUME_CASE, resumed, backend="fsdp2")
    (resumed / f"rank{rank}.json").write_text(json.dumps({"resumed_from": result.resumed_from}))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))  # this checkout's packages before any installed copy
    args = sys.argv[1:]
    main(
        Path(args[0]),
        kill_at=int(args[1]) if len(args) > 1 else None,
        marker=Path(args[2]) if len(args) > 2 else None,
    )
