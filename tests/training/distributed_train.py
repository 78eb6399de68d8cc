"""Train a tiny model with ``train`` on 2 tasks per iteration (helper of test_distributed.py).

Launched as ``accelerate launch --multi_gpu --num_processes 2 distributed_train.py OUT_DIR``
(torchrun; with no GPU the trainer's :class:`ProcessGroup` joins a gloo group on CPU). Each rank
writes ``OUT_DIR/<case>/rank<r>.safetensors`` (its final parameters) and ``rank<r>.json`` (its
local metrics and the process group it saw); the trainer itself writes under
``OUT_DIR/<case>/run*``; ``OUT_DIR/group_rank<r>.json`` holds what the process group's
collectives answered on that rank. The test also imports :func:`run_case` to train the
single-process reference in its own process.

Rollouts are deterministic (no RNG, on-policy log-probs of the current weights), so a rank's
data depends only on its tasks and the weights: 1- and 2-process runs see the same episodes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[2]
CASES = ("equal", "unequal")
"""``equal``: every group has the same token count; ``unequal``: counts depend on the task."""
TASKS = [0, 1, 2, 3]
SEED = 4
"""With 4 tasks, seed 4 draws two different tasks in each of the first 3 iterations."""
ITERATIONS = 3


def make_rollout(case: str):
    """A fake ``rollout_fn``: fixed responses and rewards per (task, member)."""
    from empo_gym.agents.llm.trajectory import Trajectory
    from tests.training.train_helpers import VOCAB, make_turn

    def rollout(policy: Any, tasks: list[int], group_size: int, use_memory: bool):
        trajs = []
        for gi, task in enumerate(tasks):
            for m in range(group_size):
                # equal: length depends on the member only, so every group has the same
                # token count; unequal: task t answers with 1 + t tokens
                length = 1 + m % 3 if case == "equal" else 1 + task
                response = [3 + (7 * task + 5 * m + 3 * k) % (VOCAB - 3) for k in range(length)]
                prompt = [1, 10 + task, 20 + m % 2, 5]
                reward = float((m + task) % 2)  # half of each group: non-zero advantages
                turn = make_turn(policy.model, prompt, response, reward=reward)
                # group ids local to the call, like RolloutRunner
                trajs.append(Trajectory(f"g{gi}", m, [turn]))
        return trajs

    return rollout


def run_case(case: str, output_dir: Path):
    """Train a fresh tiny model for :data:`ITERATIONS`; return ``(model, history)``.

    The trainer joins the launcher's process group itself, as under ``empo-gym run``.
    """
    from empo_gym.agents.training.config import GRPOConfig
    from empo_gym.agents.training.trainer import train
    from tests.training.train_helpers import BanditPolicy, make_tiny_model

    cfg = GRPOConfig(
        iterations=ITERATIONS,
        tasks_per_iter=2,
        group_size=4,
        lr=1e-2,
        weight_decay=0.0,
        micro_batch_size=3,  # several micro-batches: exercises gradient accumulation
        checkpoint_every=2,  # one periodic checkpoint (2) and the final one (3)
        low_prob_masking=False,  # masking could drop turns and change the token counts
        seed=SEED,
        output_dir=str(output_dir),
    )
    policy = BanditPolicy(make_tiny_model(0))  # same init on every rank
    result = train(cfg, policy, make_rollout(case), TASKS, resume=False)
    return policy.model, result.history


def flat_params(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Named parameters as contiguous CPU tensors (for safetensors)."""
    return {n: p.detach().cpu().contiguous() for n, p in model.named_parameters()}


def group_answers(group: Any) -> dict[str, Any]:
    """What the process group's collectives answer on this rank (rank-dependent inputs)."""
    rank = group.rank
    weights = torch.full((3,), float(rank + 1))  # rank 0: 1s, rank 1: 2s
    group.broadcast_([weights])
    grads = torch.tensor([float(rank), 10.0 * rank])
    group.mean_([grads])
    group.barrier()
    return {
        "rank": rank,
        "world": group.world_size,
        "is_main": group.is_main,
        "device": str(group.device),
        "mean": group.mean([float(rank), 2.0 * rank + 1.0]),
        "sum": group.sum(rank + 0.5),
        "max": group.max(3 * rank + 1),
        "gather": group.gather(10 + rank),
        "broadcast": weights.tolist(),
        "mean_": grads.tolist(),
        "share": list(range(6))[group.local_share(6)],
    }


def main(out: Path) -> None:
    from accelerate.state import PartialState
    from safetensors.torch import save_file

    from empo_gym.agents.training.process_group import ProcessGroup

    torch.set_num_threads(1)  # tiny matrices; 2 ranks share 2 cores
    group = ProcessGroup.join()  # what the trainer joins
    state = PartialState()  # the launch as accelerate sees it (the group joined through it)
    rank = group.rank
    (out / f"group_rank{rank}.json").write_text(json.dumps(group_answers(group)))
    for case in CASES:
        case_dir = out / case
        case_dir.mkdir(parents=True, exist_ok=True)
        # equal: one shared output dir (the real setup); unequal: one per rank, so a write by
        # rank 1 shows as a directory that should not exist
        run_dir = case_dir / ("run" if case == "equal" else f"run{rank}")
        model, history = run_case(case, run_dir)
        save_file(flat_params(model), str(case_dir / f"rank{rank}.safetensors"))
        info = {
            "world": group.world_size,
            "distributed_type": str(state.distributed_type.value),
            "backend": torch.distributed.get_backend() if group.distributed else None,
            "history": [
                {k: row[k] for k in ("tokens", "steps", "grad_norm", "skipped_steps")}
                for row in history
            ],
        }
        (case_dir / f"rank{rank}.json").write_text(json.dumps(info))
    group.barrier()
    ProcessGroup.leave()


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))  # this checkout's packages before any installed copy
    main(Path(sys.argv[1]))
