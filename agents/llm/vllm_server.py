"""vLLM server processes: the command line, start / stop, and waiting for ``/health``.

Two deployments use them: **server mode** (the user starts servers on their own GPUs with
:func:`server_command`'s command line, and the trainer waits for them with
:func:`wait_for_servers`) and **colocated** (the trainer starts them itself on the training GPUs
with :func:`start_servers`, each a :class:`VLLMServer`, with sleep mode on GPUs). The client that
samples on them is :class:`~empo_gym.agents.llm.vllm_policy.VLLMPolicy`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

from empo_gym.agents.llm.http_json import is_healthy

#: Environment variable that turns on vLLM's development endpoints (``/collective_rpc``,
#: ``/sleep``, ``/wake_up``, ``/reset_prefix_cache``).
DEV_MODE_ENV = "VLLM_SERVER_DEV_MODE"
#: The project's vLLM virtual environment (``make vllm``).
DEFAULT_VLLM_VENV = ".venv-vllm"
#: Environment variable naming the Python that runs vLLM (overrides ``.venv-vllm``).
VLLM_PYTHON_ENV = "EMPO_GYM_VLLM_PYTHON"
#: KV cache of a server on CPU (vLLM's CPU build), in bytes.
CPU_KV_CACHE_BYTES = 1 << 30


def normalize_url(url: str) -> str:
    """A server root without a trailing ``/`` or ``/v1``.

    Example:
        >>> normalize_url("http://127.0.0.1:8000/v1/")
        'http://127.0.0.1:8000'
    """
    if not url.startswith(("http://", "https://")):
        raise ValueError(
            f"vLLM url {url!r}; expected an http(s) URL such as 'http://127.0.0.1:8000'"
        )
    url = url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def vllm_python(venv: str | os.PathLike[str] = DEFAULT_VLLM_VENV) -> str:
    """The Python that runs vLLM: ``$EMPO_GYM_VLLM_PYTHON``, else ``<venv>/bin/python`` in the
    working directory or the project checkout (``make vllm``), else this interpreter.

    Example:
        >>> vllm_python("/no/such/venv") == os.environ.get("EMPO_GYM_VLLM_PYTHON", sys.executable)
        True
    """
    override = os.environ.get(VLLM_PYTHON_ENV)
    if override:
        return override
    for root in (Path.cwd(), Path(__file__).resolve().parents[2]):
        candidate = root / venv / "bin" / "python"
        if candidate.is_file():
            return str(candidate)
    return sys.executable


def server_command(
    model_dir: str | os.PathLike[str],
    *,
    port: int,
    host: str = "127.0.0.1",
    python: str | None = None,
    tensor_parallel: int = 1,
    gpu_memory_utilization: float = 0.5,
    sleep_mode: bool = False,
    nccl: bool = False,
    dtype: str = "auto",
    max_model_len: int | None = None,
    kv_cache_bytes: int | None = None,
    eager: bool = False,
) -> list[str]:
    """The command line that starts one vLLM server for this backend (run it with
    ``VLLM_SERVER_DEV_MODE=1`` in the environment).

    Example:
        >>> " ".join(server_command("/w/v0", port=8000, python="py")[:4])
        'py -m vllm.entrypoints.openai.api_server --model'
    """
    cmd = [
        python or vllm_python(),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model_dir),
        "--host",
        host,
        "--port",
        str(port),
        "--dtype",
        dtype,
        "--tensor-parallel-size",
        str(tensor_parallel),
        "--gpu-memory-utilization",
        str(gpu_memory_utilization),
        "--enable-prefix-caching",
        # log-probs of the temperature-scaled distribution, as the local backend reports them
        "--logprobs-mode",
        "processed_logprobs",
        "--disable-log-stats",
    ]
    if max_model_len is not None:
        cmd += ["--max-model-len", str(max_model_len)]
    if kv_cache_bytes is not None:  # on CPU instead of a share of the host's memory
        cmd += ["--kv-cache-memory-bytes", str(kv_cache_bytes)]
    if eager:  # no torch.compile warm-up: starts in seconds instead of minutes on a small CPU
        cmd.append("--enforce-eager")
    if sleep_mode:
        cmd.append("--enable-sleep-mode")
    if nccl:
        cmd += ["--weight-transfer-config", '{"backend": "nccl"}']
    return cmd


class VLLMServer:
    """One vLLM server process started by the trainer (colocated mode, tests, benches).

    Args:
        command: From :func:`server_command`.
        url: Its root URL (``http://host:port``).
        log_path: Where its stdout / stderr go.
        env: Extra environment (e.g. ``CUDA_VISIBLE_DEVICES``); the dev-mode variable is set.
        startup_timeout: Seconds to wait for ``GET /health``.
    """

    def __init__(
        self,
        command: Sequence[str],
        url: str,
        *,
        log_path: str | os.PathLike[str],
        env: dict[str, str] | None = None,
        startup_timeout: float = 600.0,
    ) -> None:
        self.command = list(command)
        self.url = normalize_url(url)
        self.log_path = Path(log_path)
        self.env = {**os.environ, DEV_MODE_ENV: "1", **(env or {})}
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> VLLMServer:
        """Start the process and wait until it answers ``/health`` (raises on exit / timeout)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")  # noqa: SIM115  (the child writes to it until stop)
        self.process = subprocess.Popen(
            self.command, stdout=log, stderr=subprocess.STDOUT, env=self.env
        )
        log.close()
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(
                    f"vLLM server for {self.url} exited with code {self.process.returncode} "
                    f"during start-up (log {self.log_path}): ...{' '.join(tail.split()[-60:])}"
                )
            if is_healthy(self.url):
                return self
            time.sleep(1.0)
        self.stop()
        raise RuntimeError(
            f"vLLM server for {self.url} did not answer /health within {self.startup_timeout:.0f}"
            f" s (log {self.log_path}); raise the timeout or check the log"
        )

    def stop(self) -> None:
        """Terminate the process (kill after 30 s)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)


def start_servers(
    model_dir: str | os.PathLike[str],
    urls: Sequence[str],
    *,
    log_dir: str | os.PathLike[str],
    tensor_parallel: int = 1,
    gpu_memory_utilization: float = 0.5,
    sleep_mode: bool = False,
    nccl: bool = False,
    python: str | None = None,
    gpus: int = 0,
    max_model_len: int | None = None,
    kv_cache_bytes: int | None = None,
    dtype: str | None = None,
    eager: bool | None = None,
    startup_timeout: float = 600.0,
) -> list[VLLMServer]:
    """Start one vLLM server per loopback URL on ``model_dir`` (colocated mode, tests, benches).

    Server ``i`` gets GPUs ``i*tensor_parallel .. (i+1)*tensor_parallel-1`` when ``gpus`` > 0;
    without GPUs (vLLM's CPU build) each reserves ``kv_cache_bytes`` of host memory for its KV
    cache (default 1 GiB; a share of host memory would compete with the trainer), computes in
    float32 (the trainer's CPU dtype: bf16 differs from it by ~0.05 in log-prob) and runs
    eagerly (torch.compile's warm-up takes minutes on a small CPU). The servers start
    concurrently; any failure stops them all and raises.
    """
    if not gpus:
        kv_cache_bytes = CPU_KV_CACHE_BYTES if kv_cache_bytes is None else kv_cache_bytes
        dtype = dtype or "float32"
        eager = True if eager is None else eager
    servers = []
    for i, url in enumerate(urls):
        root = normalize_url(url)
        host, port = url_host(root), _port(root)
        if host not in ("127.0.0.1", "localhost", "0.0.0.0"):
            raise ValueError(
                f"vllm url {url!r}: a server the trainer starts must be local; expected "
                "'http://127.0.0.1:PORT' (or set vllm_colocate: false for remote servers)"
            )
        env = {}
        if gpus:
            first = i * tensor_parallel
            if first + tensor_parallel > gpus:
                raise ValueError(
                    f"{len(urls)} colocated servers x tensor_parallel={tensor_parallel} need "
                    f"{len(urls) * tensor_parallel} GPUs; {gpus} visible"
                )
            env["CUDA_VISIBLE_DEVICES"] = ",".join(
                str(g) for g in range(first, first + tensor_parallel)
            )
        command = server_command(
            model_dir,
            port=port,
            host=host,
            python=python,
            tensor_parallel=tensor_parallel,
            gpu_memory_utilization=gpu_memory_utilization,
            sleep_mode=sleep_mode,
            nccl=nccl,
            max_model_len=max_model_len,
            kv_cache_bytes=kv_cache_bytes,
            dtype=dtype or "auto",
            eager=bool(eager),
        )
        servers.append(
            VLLMServer(
                command,
                root,
                log_path=Path(log_dir) / f"vllm-{port}.log",
                env=env,
                startup_timeout=startup_timeout,
            )
        )
    try:
        with ThreadPoolExecutor(len(servers)) as pool:
            list(pool.map(VLLMServer.start, servers))
    except Exception:
        for server in servers:
            server.stop()
        raise
    return servers


def wait_for_servers(urls: Sequence[str], timeout: float = 600.0) -> None:
    """Block until every server answers ``/health`` (another process is starting them)."""
    deadline = time.monotonic() + timeout
    pending = [normalize_url(u) for u in urls]
    while pending:
        pending = [u for u in pending if not is_healthy(u)]
        if pending and time.monotonic() > deadline:
            raise RuntimeError(
                f"vLLM servers {pending} did not answer /health within {timeout:.0f} s; "
                "expected them to be started (server mode) or by the main process (colocated)"
            )
        if pending:
            time.sleep(1.0)


def url_host(url: str) -> str:
    """The host name of ``url`` (``127.0.0.1`` when it names none).

    Example:
        >>> url_host("http://10.0.0.2:8000")
        '10.0.0.2'
    """
    return urlparse(url).hostname or "127.0.0.1"


def _port(url: str) -> int:
    port = urlparse(url).port
    if port is None:
        raise ValueError(f"vllm url {url!r} names no port; expected 'http://127.0.0.1:PORT'")
    return port
