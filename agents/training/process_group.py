"""The one handle on the process group: who this process is, and what all processes agree on.

``accelerate launch`` and ``torchrun`` start one training process per device and describe the
launch in environment variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ...). A
:class:`ProcessGroup` is the only reader of those variables and the only caller of
``torch.distributed`` outside the engine's FSDP2 / DCP code: the trainer, the learning agents
and the run wiring ask it for the rank, the world size, the device, and for the few
collectives a run needs (barrier, broadcast, sum / max / mean, gather). With one process every
collective is a no-op, so the same code runs alone and under a launcher.

Example:
    >>> group = ProcessGroup()  # one process: rank 0 of 1, on the CPU
    >>> group.is_main, group.distributed, group.mean([1.0, 2.0]), group.gather(7)
    (True, False, [1.0, 2.0], [7])
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

__all__ = ["ProcessGroup"]


def _dist():  # noqa: ANN202 (a module)
    import torch.distributed as dist

    return dist


def _joined() -> bool:
    dist = _dist()
    return dist.is_available() and dist.is_initialized()


@dataclass(frozen=True)
class ProcessGroup:
    """This process's place in the run's processes (rank 0 of 1 when there is no launcher).

    Build it with :meth:`join` (the trainer: joins the launcher's process group), or
    :meth:`launched` (before any model loads: what the launcher said, joining nothing).

    Attributes:
        rank: This process's rank (0 is the main process: it writes metrics, checkpoints and
            evaluates).
        world_size: Number of processes.
        device: Where this process computes (``cuda:<local rank>`` under a GPU launch).
    """

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")  # noqa: RUF009 (immutable)

    # ------------------------------------------------------------------ building
    @classmethod
    def launched(cls) -> ProcessGroup:
        """Rank and world size as the launcher set them (``RANK`` / ``WORLD_SIZE``), without
        joining the process group: a learning agent asks before any model loads (who takes
        the run lock and evaluates). Its collectives need :meth:`join` first.

        Example:
            >>> import os
            >>> "WORLD_SIZE" in os.environ or ProcessGroup.launched() == ProcessGroup()
            True
        """
        return cls(
            rank=int(os.environ.get("RANK", "0")), world_size=int(os.environ.get("WORLD_SIZE", "1"))
        )

    @classmethod
    def join(cls) -> ProcessGroup:
        """Join the launcher's process group (nothing to join with one process) and pick the
        device: accelerate's ``PartialState`` initialises torch.distributed as
        ``accelerate launch`` / ``torchrun`` describe it (nccl on GPUs, gloo on CPUs) and
        picks ``cuda:<local rank>`` (the CPU when CUDA is missing). A process group initialised
        before (e.g. :meth:`single`) is used as it is.

        Example:
            >>> ProcessGroup.join().world_size  # no launcher: one process
            1
        """
        from accelerate.state import PartialState

        state = PartialState(cpu=not torch.cuda.is_available())
        if not _joined():
            return cls(device=state.device)
        dist = _dist()
        world = dist.get_world_size()
        return cls(rank=dist.get_rank() if world > 1 else 0, world_size=world, device=state.device)

    @classmethod
    def single(cls, device: torch.device | str = "cpu") -> ProcessGroup:
        """A one-process group on ``device`` (nccl on CUDA, else gloo over a free loopback
        port): FSDP2 needs a process group even alone (``empo-gym gpu-check``, tests). An
        existing process group is kept. :meth:`leave` ends it.
        """
        dev = torch.device(device)
        if not _joined():
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
            _dist().init_process_group(
                "nccl" if dev.type == "cuda" else "gloo",
                init_method=f"tcp://127.0.0.1:{port}",
                rank=0,
                world_size=1,
            )
        return cls(device=dev)

    @staticmethod
    def leave() -> None:
        """Destroy this process's process group (no-op without one)."""
        if _joined():
            _dist().destroy_process_group()

    # ------------------------------------------------------------------ identity
    @property
    def is_main(self) -> bool:
        """True on rank 0 (the process that writes files and evaluates)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True with several processes."""
        return self.world_size > 1

    @property
    def joined(self) -> bool:
        """Whether torch.distributed has a process group (possibly of one process: FSDP2
        shards over it)."""
        return _joined()

    def local_share(self, total: int) -> slice:
        """This process's items among ``total`` (round robin: rank, rank + world, ...).

        Example:
            >>> list(range(5))[ProcessGroup(rank=1, world_size=2).local_share(5)]
            [1, 3]

        Raises:
            ValueError: Fewer items than processes.
        """
        if self.distributed and total < self.world_size:
            raise ValueError(
                f"tasks_per_iter={total} < {self.world_size} processes; expected >= one task each"
            )
        return slice(self.rank, None, self.world_size)

    # ------------------------------------------------------------------ collectives
    def barrier(self) -> None:
        """Wait until every process got here."""
        if self.distributed:
            self._check_joined("barrier")
            _dist().barrier()

    def broadcast_(self, tensors: Iterable[torch.Tensor], src: int = 0) -> None:
        """Overwrite ``tensors`` in place with rank ``src``'s (e.g. the initial weights: a LoRA
        adapter's random init)."""
        if not self.distributed:
            return
        self._check_joined("broadcast_")
        with torch.no_grad():
            for tensor in tensors:
                _dist().broadcast(tensor, src=src)

    def sum(self, value: float) -> float:
        """``value`` summed over processes (float64; itself with one)."""
        if not self.distributed:
            return value
        self._check_joined("sum")
        t = torch.tensor([float(value)], dtype=torch.float64, device=self._comm_device())
        _dist().all_reduce(t)
        return float(t)

    def max(self, value: int) -> int:
        """The largest ``value`` of any process (itself with one)."""
        if not self.distributed:
            return value
        self._check_joined("max")
        dist = _dist()
        t = torch.tensor([value], dtype=torch.long, device=self._comm_device())
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return int(t)

    def mean(self, values: Sequence[float]) -> list[float]:
        """Each of ``values`` averaged over processes (float32: per-process metrics)."""
        if not self.distributed:
            return [float(v) for v in values]
        self._check_joined("mean")
        t = torch.tensor([float(v) for v in values], device=self._comm_device())
        _dist().all_reduce(t)
        t /= self.world_size
        return t.tolist()

    def mean_(self, tensors: Iterable[torch.Tensor]) -> None:
        """Replace each tensor by its mean over processes, in place (e.g. DDP gradients)."""
        if not self.distributed:
            return
        self._check_joined("mean_")
        for t in tensors:
            _dist().all_reduce(t)
            t.div_(self.world_size)

    def gather(self, value: int) -> list[int]:
        """Every process's ``value``, in rank order."""
        if not self.distributed:
            return [value]
        self._check_joined("gather")
        t = torch.tensor([value], dtype=torch.long, device=self._comm_device())
        out = [torch.empty_like(t) for _ in range(self.world_size)]
        _dist().all_gather(out, t)
        return [int(x) for x in out]

    def _comm_device(self) -> torch.device:
        """Where collective tensors live: the device under nccl, else the CPU (gloo)."""
        return self.device if _dist().get_backend() == "nccl" else torch.device("cpu")

    def _check_joined(self, what: str) -> None:
        if not _joined():
            raise RuntimeError(
                f"ProcessGroup.{what} with world_size={self.world_size} before the process group "
                "was joined; expected ProcessGroup.join() first (ProcessGroup.launched() only "
                "reads the launcher's variables)"
            )
