"""Train EMPO² for a few iterations, optionally blocking at a kill point (helper of
test_kill_resume.py).

Usage::

    python kill_train.py OUT_DIR [--novelty] [--kill-at K --stage STAGE --marker PATH]

Trains a tiny model with :func:`empo_gym.agents.training.trainer.train` (``resume=True``) and a real
:class:`~empo_gym.agents.training.empo.EMPO` over a real
:class:`~empo_gym.memory.MemoryStore` (hashing embedder). Every iteration is a memory rollout
(``memory_prob=1.0``), every iteration is checkpointed (``checkpoint_every=1``) and every step
of every trajectory becomes exactly one memory entry (state keys are unique), so the store of a
run that completed ``k`` iterations holds ``k * ENTRIES_PER_ITERATION`` entries.

Rollouts are deterministic: tokens are sampled from the model with the global torch RNG (which
checkpoints restore), and memory rollouts put a tip block built from the store's retrievals
into the prompt, so a memory store restored wrongly changes the episodes and the weights.

With ``--kill-at K`` the process writes ``--marker`` and sleeps (the test then SIGKILLs it) at
one point of the iteration with index ``K`` (K iterations completed before it):

``rollout``
    in the middle of the rollouts (iteration K has not touched memory or checkpoints);
``checkpoint``
    inside the write of checkpoint ``iter_{K+1}``: model, optimizer and memory are in the
    temporary directory, ``state.json`` is not written, ``latest`` still names ``iter_K``;
``metrics``
    when the trainer appends iteration K's metrics line, before it writes it (with the
    trainer as it is: after checkpoint ``iter_{K+1}`` was published);
``torn``
    the same, but half of the line is written (and fsynced) first: a kill inside the append.

The script prints one JSON line (``resumed_from``, ``iterations``, ``history``) when it ends.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ITERATIONS = 5
TASKS = [0, 1, 2]
TASKS_PER_ITER = 2
GROUP_SIZE = 4
STEPS = 2
"""Turns per trajectory (one memory entry each)."""
ENTRIES_PER_ITERATION = TASKS_PER_ITER * GROUP_SIZE * STEPS
STAGES = ("rollout", "checkpoint", "metrics", "torn")
TIP_TOKENS = (12, 13)
BLOCK_S = 600.0
"""How long a kill point sleeps (the test kills the process long before)."""


def make_config(out_dir: Path, novelty: bool, backend: str = "ddp") -> Any:
    """The EMPO² config of every run (reference, killed and resumed)."""
    from empo_gym.agents.training.empo import EMPOConfig

    return EMPOConfig(
        iterations=ITERATIONS,
        tasks_per_iter=TASKS_PER_ITER,
        group_size=GROUP_SIZE,
        lr=1e-2,
        weight_decay=0.0,
        micro_batch_size=16,
        checkpoint_every=1,
        keep_checkpoints=ITERATIONS + 1,  # keep all: the test compares each with the reference
        memory_prob=1.0,  # every iteration writes memory
        off_policy_prob=0.5,  # both memory update modes occur
        intrinsic_reward=novelty,
        skip_zero_advantage=False,
        seed=7,
        backend=backend,
        output_dir=str(out_dir),
    )


def state_text(iteration: int, task: int, group: int, member: int, step: int, prev: int) -> str:
    """The observation of one step: unique per entry, so the store de-duplicates nothing."""
    return (
        f"iteration {iteration} task {task} group {group} member {member} step {step} "
        f"after token {prev}"
    )


def partition_of(task: int) -> str:
    """Memory partition of a task."""
    return f"task/{task}"


class Clock:
    """Index of the iteration in progress, as the rollout and kill points see it."""

    def __init__(self, start: int) -> None:
        self.iteration = start


class TipPolicy:
    """A tiny-model policy that also writes (deterministic, weight-dependent) tips: a
    ``TrainablePolicy`` for the trainer and a ``Policy`` for EMPO²'s tip prompts."""

    name = "tip-policy"

    def __init__(self, model: Any) -> None:
        from empo_gym.agents.llm.policy import SamplingConfig

        self.model = model
        self.pad_id = 0
        self.sampling = SamplingConfig(temperature=0.0)

    def sampling_state(self) -> dict[str, int]:
        """Nothing of its own: tips are greedy, rollouts use the global torch RNG."""
        return {}

    def load_sampling_state(self, state: dict[str, int]) -> None:
        """Nothing to restore (see :meth:`sampling_state`)."""

    def clear_prefix_cache(self) -> None:
        """It caches nothing between calls."""

    def close(self) -> None:
        """Nothing to release."""

    def generate(self, conversations: list, sampling: Any = None) -> list:
        import torch

        from empo_gym.agents.llm.policy import Generation

        with torch.no_grad():
            best = int(self.model(input_ids=torch.tensor([[1, 3, 5]])).logits[0, -1].argmax())
        text = f"Prefer token {best}."
        return [Generation([], [], [], text, "stop") for _ in conversations]


def make_rollout(store: Any, clock: Clock, kill: dict[str, Any]):
    """``rollout_fn``: STEPS one-token turns per episode, tips from ``store`` in memory mode."""
    import torch

    from empo_gym.agents.llm.trajectory import Trajectory, Turn

    def rollout(policy: Any, tasks: list[int], group_size: int, use_memory: bool):
        it = clock.iteration
        trajs = []
        for gi, task in enumerate(tasks):
            if kill.get("stage") == "rollout" and kill["at"] == it and gi == 1:
                block(kill)  # mid-rollout: half of the groups are done
            for m in range(group_size):
                turns, prev = [], 0
                for k in range(STEPS):
                    state = state_text(it, task, gi, m, k, prev)
                    plain = [1, 3 + task, 6 + k, prev]
                    prompt = plain
                    if use_memory:
                        hits = store.query(partition_of(task), state)
                        # the tip block depends on what memory holds: a store restored
                        # wrongly changes prompts, log-probs and the update
                        block_ids = [TIP_TOKENS[0]] * min(len(hits), 3) + [TIP_TOKENS[1]]
                        if hits:
                            block_ids.append(int(hits[0].score) % 10)
                        prompt = [1, *block_ids, 3 + task, 6 + k, prev]
                    logits = policy.model(input_ids=torch.tensor([prompt])).logits[0, -1]
                    logp = torch.log_softmax(logits.float(), dim=-1)
                    tok = int(torch.multinomial(logp.exp(), 1))
                    turns.append(
                        Turn(
                            prompt_ids=prompt,
                            prompt_ids_no_tips=plain,
                            response_ids=[tok],
                            logprobs=[float(logp[tok])],
                            reward=(tok % 4) / 3.0,  # dense: groups have non-zero advantages
                            used_tips=use_memory,
                            action=f"say {tok}",
                            observation=state,
                        )
                    )
                    prev = tok
                ret = sum(t.reward for t in turns)
                trajs.append(
                    Trajectory(
                        f"g{gi}",
                        m,
                        turns,
                        score=round(100 * ret / STEPS),
                        success=ret > 1.0,
                        memory_mode=use_memory,
                        info={
                            "instruction": f"task {task}",
                            "memory_partition": partition_of(task),
                        },
                    )
                )
        return trajs

    return rollout


def block(kill: dict[str, Any]) -> None:
    """Announce the kill point and wait to be killed."""
    marker = Path(kill["marker"])
    tmp = marker.with_name(marker.name + ".tmp")
    tmp.write_text(f"{kill['stage']} {kill['at']}\n", encoding="utf-8")
    os.replace(tmp, marker)  # the test never sees a half-written marker
    time.sleep(BLOCK_S)
    raise SystemExit(f"kill point {kill} was not killed within {BLOCK_S} s")


def make_memory(clock: Clock, kill: dict[str, Any], novelty: bool, cfg: Any):
    """A real EMPO (hashing MemoryStore) with the ``checkpoint`` kill point."""
    from empo_gym.agents.training.empo import EMPO
    from empo_gym.memory import MemoryStore, NoveltyReward

    class KillableMemory(EMPO):
        def save(self, directory: Path) -> None:
            super().save(directory)  # inside save_checkpoint's temporary directory
            if kill.get("stage") == "checkpoint" and kill["at"] == clock.iteration:
                block(kill)

    store = MemoryStore("hashing")
    return KillableMemory(
        cfg, store=store, novelty=NoveltyReward(store.embedder) if novelty else None
    )


def install_metrics_kill_point(kill: dict[str, Any]) -> None:
    """The ``metrics`` / ``torn`` kill points: wrap the trainer's metrics-line append."""
    from empo_gym.agents.training import trainer

    original = trainer.append_metrics  # AttributeError when renamed: fail loudly

    def append(path: Path, row: dict[str, Any]) -> None:
        if row["iteration"] == kill["at"]:
            if kill["stage"] == "torn":
                line = json.dumps(row, sort_keys=True) + "\n"
                with Path(path).open("a", encoding="utf-8") as fh:
                    fh.write(line[: len(line) // 2])
                    fh.flush()
                    os.fsync(fh.fileno())
            block(kill)
        original(path, row)

    trainer.append_metrics = append


def start_iteration(out_dir: Path) -> int:
    """Iterations completed by the checkpoint a resumed run starts from (0 when none)."""
    from empo_gym.agents.training.checkpoint import latest_checkpoint
    from empo_gym.agents.training.trainer import CHECKPOINTS_DIR

    found = latest_checkpoint(out_dir / CHECKPOINTS_DIR)
    if found is None:
        return 0
    return int(json.loads((found / "state.json").read_text(encoding="utf-8"))["iteration"])


def run(
    out_dir: Path,
    *,
    novelty: bool = False,
    kill: dict[str, Any] | None = None,
    stop_after: int | None = None,
    backend: str = "ddp",
) -> dict[str, Any]:
    """Train (resuming from ``out_dir``'s checkpoints); return a summary of the call.

    Args:
        out_dir: Output directory of the run.
        novelty: Turn the intrinsic novelty reward on (a ``NoveltyReward`` in the hooks).
        kill: ``{"at": K, "stage": STAGE, "marker": PATH}`` to block at a kill point.
        stop_after: ``train``'s simulated kill (in-process tests).
        backend: ``fsdp2`` shards over a 1-process gloo group started here (DCP checkpoints,
            gathered rollouts); ``ddp`` is plain training.
    """
    import torch

    from empo_gym.agents.training.trainer import train
    from tests.training.train_helpers import BANDIT_VOCAB, make_tiny_model

    torch.set_num_threads(1)
    if backend == "fsdp2":
        from empo_gym.agents.training.process_group import ProcessGroup

        ProcessGroup.single("cpu")
    kill = kill or {}
    if kill.get("stage") in ("metrics", "torn"):
        install_metrics_kill_point(kill)
    clock = Clock(start_iteration(out_dir))
    cfg = make_config(out_dir, novelty, backend)
    memory = make_memory(clock, kill, novelty, cfg)
    policy = TipPolicy(make_tiny_model(0, BANDIT_VOCAB))

    def advance(row: dict[str, Any]) -> None:
        if row["iteration"] != clock.iteration:
            raise RuntimeError(
                f"trainer ran iteration {row['iteration']}, expected {clock.iteration}"
            )
        clock.iteration += 1

    result = train(
        cfg,
        policy,
        make_rollout(memory.store, clock, kill),
        TASKS,
        algorithm=memory,
        resume=True,
        stop_after=stop_after,
        on_iteration=advance,
    )
    return {
        "resumed_from": result.resumed_from,
        "iterations": result.iterations,
        "history": [row["iteration"] for row in result.history],
        "memory_size": memory.size(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--novelty", action="store_true", help="intrinsic novelty reward on")
    parser.add_argument("--kill-at", type=int, default=None)
    parser.add_argument("--stage", choices=STAGES, default="rollout")
    parser.add_argument("--marker", type=Path, default=None)
    parser.add_argument("--backend", choices=("ddp", "fsdp2"), default="ddp")
    args = parser.parse_args(argv)
    kill = None
    if args.kill_at is not None:
        if args.marker is None:
            parser.error("--kill-at needs --marker")
        kill = {"at": args.kill_at, "stage": args.stage, "marker": str(args.marker)}
    summary = run(args.out_dir, novelty=args.novelty, kill=kill, backend=args.backend)
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))  # this checkout's packages before any installed copy
    main()
