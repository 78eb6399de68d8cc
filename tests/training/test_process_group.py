"""The one handle on the process group, on one process (2 processes: test_distributed.py)."""

from __future__ import annotations

import pytest
import torch

from empo_gym.agents.training.config import GRPOConfig
from empo_gym.agents.training.engine import Engine
from empo_gym.agents.training.process_group import ProcessGroup


@pytest.fixture
def no_launcher(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)


def test_one_process_is_rank_zero_of_one_and_every_collective_is_a_no_op(no_launcher) -> None:
    group = ProcessGroup.join()
    assert (group.rank, group.world_size, group.is_main, group.distributed) == (0, 1, True, False)
    assert group.device == torch.device("cpu")  # no CUDA on this machine
    weights, grads = torch.arange(3.0), torch.tensor([2.0, 4.0])
    group.broadcast_([weights])
    group.mean_([grads])
    group.barrier()
    assert weights.tolist() == [0.0, 1.0, 2.0] and grads.tolist() == [2.0, 4.0]
    assert group.mean([1.5, 2]) == [1.5, 2.0]
    assert (group.sum(2.5), group.max(3), group.gather(7)) == (2.5, 3, [7])
    assert list(range(4))[group.local_share(4)] == [0, 1, 2, 3]


def test_launched_reads_the_launchers_variables_without_joining(monkeypatch) -> None:
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    group = ProcessGroup.launched()
    assert (group.rank, group.world_size, group.is_main, group.distributed) == (1, 2, False, True)
    assert not group.joined
    with pytest.raises(RuntimeError, match=r"ProcessGroup\.barrier with world_size=2 before"):
        group.barrier()
    with pytest.raises(ValueError, match="tasks_per_iter=1 < 2 processes"):
        group.local_share(1)
    assert list(range(5))[group.local_share(5)] == [1, 3]


def test_a_single_process_group_lets_the_engine_shard(no_launcher) -> None:
    """FSDP2 needs a process group even alone: ``single`` starts one, ``leave`` ends it."""
    assert Engine.from_config(GRPOConfig(backend="fsdp2")).backend == "ddp"  # none to shard over
    ProcessGroup.single("cpu")
    try:
        group = ProcessGroup.join()
        assert group.joined and (group.rank, group.world_size) == (0, 1)
        engine = Engine.from_config(GRPOConfig(backend="fsdp2"), group)
        assert engine.sharded and engine.group is group
        assert (engine.rank, engine.world_size, engine.device) == (0, 1, torch.device("cpu"))
    finally:
        ProcessGroup.leave()
    assert not ProcessGroup().joined


def test_only_the_group_reads_the_launch_and_only_the_engine_shards() -> None:
    """One handle: no other package module reads RANK / WORLD_SIZE or calls torch.distributed
    (the engine imports its FSDP2 / DCP parts, nothing else of it)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    launch = re.compile(r"""environ(\.get)?\(?\[?["'](LOCAL_)?(RANK|WORLD_SIZE)["']""")
    found = []
    package = [root / "cli.py", *root.glob("agents/**/*.py"), *root.glob("empo_gym/**/*.py")]
    for path in package:
        rel = path.relative_to(root).as_posix()
        if rel == "agents/training/process_group.py":
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            uses_dist = "torch.distributed" in line and not (
                rel == "agents/training/engine.py"
                and re.search(r"torch\.distributed\.(fsdp|checkpoint)", line)
            )
            if launch.search(line) or uses_dist:
                found.append(f"{rel}:{n}: {line.strip()}")
    assert found == []
