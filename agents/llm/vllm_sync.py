"""Weight sync: after each optimizer step, vLLM servers get the trainer's new weights.

:class:`WeightSync` pushes the weights one of two ways:

* ``"disk"``: the main process writes the weights in Hugging Face layout (safetensors, a LoRA
  adapter merged; :func:`~empo_gym.agents.llm.vllm_weights.write_hf_weights`) into a fresh
  version directory ``<weights_dir>/v<N>`` and asks every server to reload from it
  (``POST /collective_rpc`` ``reload_weights``; needs ``VLLM_SERVER_DEV_MODE=1``); older
  versions are deleted.
* ``"nccl"``: vLLM's own NCCL weight transfer (servers started with
  ``--weight-transfer-config '{"backend": "nccl"}'``; the trainer needs the ``vllm`` package).

The client (:meth:`~empo_gym.agents.llm.vllm_policy.VLLMPolicy.sync_weights`) then resets the
servers' prefix caches and probes them: greedy log-probabilities of :data:`PROBE_TEXT` must
follow the trainer's, else :class:`StaleWeightsError`.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from empo_gym.agents.llm.http_json import get_json
from empo_gym.agents.llm.lora import is_lora
from empo_gym.agents.llm.vllm_server import url_host
from empo_gym.agents.llm.vllm_weights import write_hf_weights
from empo_gym.atomic_io import remove_dir

#: Weight-sync modes.
WEIGHT_SYNC_MODES = ("disk", "nccl")
#: A fixed text whose greedy continuation probes the served weights after each sync.
PROBE_TEXT = "The kitchen has a fridge, a stove and a sink. To cool the water, you"


class StaleWeightsError(RuntimeError):
    """A vLLM server's log-probabilities do not follow the trainer's weights after a sync."""


class WeightSync:
    """Pushes a model's weights to vLLM servers, from disk or over NCCL (see the module doc).

    Args:
        urls: Server roots (``http://host:port``).
        each_server: ``each_server(path, body)`` POSTs ``body`` to ``path`` on every server and
            returns their replies (the client's requests: its timeout, retries and errors).
        weights_dir: Where the disk sync writes weight versions (a directory every server can
            read).
        mode: ``"disk"`` or ``"nccl"``.
        nccl_port: Rendezvous port of the NCCL transfer (server ``i`` uses ``nccl_port + i``).

    Example:
        >>> sync = WeightSync(["http://a:8000"], lambda path, body: [], weights_dir="w")
        >>> sync.mode, sync.version
        ('disk', 0)
    """

    def __init__(
        self,
        urls: Sequence[str],
        each_server: Callable[[str, dict[str, Any]], list[dict[str, Any]]],
        *,
        weights_dir: str | os.PathLike[str],
        mode: str = "disk",
        nccl_port: int = 29555,
    ) -> None:
        if mode not in WEIGHT_SYNC_MODES:
            raise ValueError(f"weight_sync={mode!r}; expected one of {WEIGHT_SYNC_MODES}")
        self.urls = list(urls)
        self.each_server = each_server
        self.weights_dir = Path(weights_dir)
        self.mode = mode
        self.nccl_port = nccl_port
        #: Disk versions written so far (``v<version>`` is the one served).
        self.version = 0
        self._nccl: list[Any] | None = None

    def push(
        self,
        model: Any,
        *,
        main: bool = True,
        rank: int = 0,
        state_dict: dict[str, Any] | None = None,
    ) -> None:
        """Send ``model``'s weights to every server.

        Args:
            model: The trainer's (unwrapped) model.
            main: Whether this is the main process (the disk sync writes and reloads there
                only; every process joins the NCCL transfer's collectives).
            rank: This process's rank (NCCL: rank 0 sends).
            state_dict: The full weights gathered from ``model``'s shards (FSDP2; the disk sync
                writes them instead of ``model``'s own).
        """
        if self.mode == "nccl":
            self._push_nccl(model, rank)
        elif main:
            self._push_disk(model, state_dict)

    def _push_disk(self, model: Any, state_dict: dict[str, Any] | None = None) -> None:
        self.version += 1
        target = self.weights_dir / f"v{self.version}"
        write_hf_weights(model, target, state_dict=state_dict)  # replaces a stale copy
        body = {"method": "reload_weights", "kwargs": {"weights_path": str(target.resolve())}}
        self.each_server("/collective_rpc", body)
        for old in self.weights_dir.glob("v*"):  # keep the served version only
            if old.name != target.name and old.name[1:].isdigit():
                remove_dir(old)

    def _push_nccl(self, model: Any, rank: int) -> None:
        try:
            from vllm.distributed.weight_transfer.base import ModuleSource
            from vllm.distributed.weight_transfer.clients import HTTPVLLMWeightSyncClient
            from vllm.distributed.weight_transfer.nccl_engine import (
                NCCLTrainerInitInfo,
                NCCLTrainerWeightTransferEngine,
            )
        except ImportError as exc:
            raise RuntimeError(
                "weight_sync='nccl' needs the vllm package in the trainer's environment "
                f"({exc}); install vllm there or use weight_sync='disk'"
            ) from exc
        if is_lora(model):
            raise ValueError(
                "weight_sync='nccl' sends the model's own parameters, but a LoRA model's are "
                "adapters; expected weight_sync='disk' with lora (it writes merged weights)"
            )
        if self._nccl is None:  # one NCCL group per server: trainer rank 0 + its workers
            self._nccl = []
            for i, url in enumerate(self.urls):
                reply = get_json(
                    f"{url}/get_world_size?include_dp=false",
                    expect="a vLLM server started with --weight-transfer-config (nccl)",
                )
                info = NCCLTrainerInitInfo(
                    master_address=address_toward(url_host(url)),
                    master_port=self.nccl_port + i,
                    world_size=int(reply["world_size"]) + 1,
                    rank=rank,
                )
                self._nccl.append(
                    NCCLTrainerWeightTransferEngine.trainer_init(
                        info, client=HTTPVLLMWeightSyncClient(url), source=ModuleSource(model)
                    )
                )
        for engine in self._nccl:
            engine.send_weights()


def address_toward(host: str) -> str:
    """This machine's address as seen from ``host`` (where NCCL's rendezvous is reached).

    Example:
        >>> address_toward("localhost")
        '127.0.0.1'
    """
    if host in ("127.0.0.1", "localhost"):
        return "127.0.0.1"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((host, 9))  # UDP: picks the route, sends nothing
        return str(probe.getsockname()[0])
