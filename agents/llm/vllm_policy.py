"""The vLLM rollout backend: token-level sampling on vLLM servers, scoring and training local.

:class:`VLLMPolicy` is a :class:`~empo_gym.agents.llm.policy.TokenPolicy` and
:class:`~empo_gym.agents.llm.policy.TrainablePolicy` that keeps the trainer's model and tokenizer
(a :class:`~empo_gym.agents.llm.transformers_policy.TransformersPolicy`) for everything
token-exact -- prompts are encoded locally, so tip spans stay exact, and log-probabilities for
the update are the trainer's -- and sends generation to vLLM's OpenAI-compatible
``/v1/completions`` with token-id prompts, getting token ids (``return_tokens_as_token_ids``) and
their log-probabilities back. Several servers share the load; the rows of one trajectory stick to
one server (``route_keys``), so its prefix cache serves the trajectory's growing prompts.

After each optimizer step the trainer calls :meth:`VLLMPolicy.sync_weights`:

* ``weight_sync="disk"``: the main process writes the weights in Hugging Face layout
  (safetensors, a LoRA adapter merged) into a fresh version directory and asks every server to
  reload from it (``POST /collective_rpc`` ``reload_weights``; needs ``VLLM_SERVER_DEV_MODE=1``),
  then resets its prefix cache (``POST /reset_prefix_cache``).
* ``weight_sync="nccl"``: vLLM's own NCCL weight transfer (servers started with
  ``--weight-transfer-config '{"backend": "nccl"}'``; the trainer needs the ``vllm`` package).

Either way a probe then checks that every server's log-probabilities follow the new weights
(:class:`StaleWeightsError` otherwise).

Two deployments, the same code: **server mode** (``vllm_urls`` point at servers on their own
GPUs, started by the user with :func:`server_command`'s command line) and **colocated** (the
trainer starts the servers itself on the training GPUs with sleep mode, :class:`VLLMServer`;
:meth:`VLLMPolicy.pause` puts them to sleep during the update, the sync wakes them up).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from empo_gym.agents.llm.openai_policy import post_json
from empo_gym.agents.llm.policy import EncodedPrompt, Generation, Message, SamplingConfig

#: Weight-sync modes.
WEIGHT_SYNC_MODES = ("disk", "nccl")
#: Environment variable that turns on vLLM's development endpoints (``/collective_rpc``,
#: ``/sleep``, ``/wake_up``, ``/reset_prefix_cache``).
DEV_MODE_ENV = "VLLM_SERVER_DEV_MODE"
#: The project's vLLM virtual environment (``make vllm``).
DEFAULT_VLLM_VENV = ".venv-vllm"
#: Environment variable naming the Python that runs vLLM (overrides ``.venv-vllm``).
VLLM_PYTHON_ENV = "EMPO_GYM_VLLM_PYTHON"
#: KV cache of a server on CPU (vLLM's CPU build), in bytes.
CPU_KV_CACHE_BYTES = 1 << 30
#: A fixed text whose greedy continuation probes the served weights after each sync.
PROBE_TEXT = "The kitchen has a fridge, a stove and a sink. To cool the water, you"


class StaleWeightsError(RuntimeError):
    """A vLLM server's log-probabilities do not follow the trainer's weights after a sync."""


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
            if _healthy(self.url):
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
        host, port = _host(root), _port(root)
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
        pending = [u for u in pending if not _healthy(u)]
        if pending and time.monotonic() > deadline:
            raise RuntimeError(
                f"vLLM servers {pending} did not answer /health within {timeout:.0f} s; "
                "expected them to be started (server mode) or by the main process (colocated)"
            )
        if pending:
            time.sleep(1.0)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as resp:
            return resp.status == 200
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError):
        return False


def write_hf_weights(
    model: Any,
    directory: str | os.PathLike[str],
    tokenizer: Any = None,
    *,
    state_dict: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` in Hugging Face layout (``config.json`` + safetensors) into ``directory``.

    A LoRA (peft) model is written with its adapter merged into a copy of the base weights, so
    vLLM serves exactly the trained policy. Tied input / output embeddings are written untied
    (``lm_head.weight`` stored, ``tie_word_embeddings: false``): vLLM's in-place
    ``reload_weights`` does not re-tie them and would keep serving the old output layer, so a
    server must be started from such a checkpoint. The directory is written under a temporary
    name and renamed, so a reader never sees half of it.

    Args:
        model: A ``transformers`` causal LM (or a peft model around one).
        directory: Target directory (replaced when it exists).
        tokenizer: Written too when given (a server started from ``directory`` needs it).
        state_dict: The weights to write instead of ``model``'s own (a model sharded by FSDP2:
            the full state gathered from its shards; LoRA models are not supported then).
    """
    if state_dict is not None and _is_lora(model):
        raise ValueError(
            "write_hf_weights got a gathered state_dict for a LoRA model; expected a plain "
            "model (vLLM serves merged weights: train full-parameter under FSDP2 with vLLM)"
        )
    target = Path(directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    # peft: vLLM loads plain checkpoints (the copy keeps the trainer's adapter training)
    plain = copy.deepcopy(model).merge_and_unload() if _is_lora(model) else model
    plain.save_pretrained(tmp, safe_serialization=True, state_dict=state_dict)
    _untie_output_embeddings(plain, tmp)
    if tokenizer is not None:
        tokenizer.save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return target


def _is_lora(model: Any) -> bool:
    """Whether ``model`` is a peft (LoRA) model."""
    from peft import PeftModel

    return isinstance(model, PeftModel)


def _untie_output_embeddings(model: Any, directory: Path) -> None:
    """Store a tied output layer as its own tensor and mark the config untied."""
    config_path = directory / "config.json"
    config = json.loads(config_path.read_text())
    tied = [c for c in (config, config.get("text_config") or {}) if c.get("tie_word_embeddings")]
    output = model.get_output_embeddings()
    if not tied or output is None:
        return
    from safetensors.torch import load_file, save_file

    name = next(n for n, m in model.named_modules() if m is output) + ".weight"
    tensor = output.weight.detach().to("cpu").contiguous().clone()
    index_path = directory / "model.safetensors.index.json"
    if index_path.is_file():  # sharded: one more shard, named in the index
        index = json.loads(index_path.read_text())
        save_file({name: tensor}, directory / "model-output-embeddings.safetensors")
        index["weight_map"][name] = "model-output-embeddings.safetensors"
        index_path.write_text(json.dumps(index, indent=2))
    else:
        single = directory / "model.safetensors"
        state = load_file(single)
        state[name] = tensor
        save_file(state, single, metadata={"format": "pt"})
    for c in tied:
        c["tie_word_embeddings"] = False
    config_path.write_text(json.dumps(config, indent=2))


class VLLMPolicy:
    """A token-level, trainable policy that samples on vLLM servers (see the module doc).

    Args:
        local: The trainer's policy (model, tokenizer, prompt encoding, scoring, sampling).
        urls: Server roots (``http://host:port``); rows of one trajectory stick to one server.
        weights_dir: Where the disk sync writes weight versions (a directory every server can
            read; ``<weights_dir>/v<N>``).
        weight_sync: ``"disk"`` (reload from safetensors) or ``"nccl"`` (vLLM's NCCL transfer).
        servers: Servers this policy started (colocated mode): slept in :meth:`pause`, woken up
            before the next sync, stopped by :meth:`close`.
        sleep_mode: The servers were started with ``--enable-sleep-mode`` (colocated on GPUs).
        timeout: Seconds per HTTP request.
        max_concurrency: Requests in flight at once (vLLM batches concurrent requests).
        retries: Retries on connection errors and HTTP 429/5xx.
        probe_tolerance: Largest absolute log-prob difference between a server and the trainer
            on the probe after a sync (sampler and trainer numerics differ slightly: ~2e-5 on
            CPU fp32, more in bf16); above it the sync raises :class:`StaleWeightsError`.
        probe_tokens: Greedy tokens the probe compares.
        nccl_port: Rendezvous port of the NCCL transfer (``weight_sync="nccl"``).

    Example:
        >>> class Local:  # stands for the trainer's TransformersPolicy
        ...     name = "smollm2"
        >>> p = VLLMPolicy(Local(), ["http://a:8000", "http://b:8000/v1"], weights_dir="w")
        >>> [p.server_for(key) for key in ("g0/0", "g0/1", "g0/0", "g1/0")]
        [0, 1, 0, 0]
        >>> p.urls[1]
        'http://b:8000'
    """

    def __init__(
        self,
        local: Any,
        urls: Sequence[str],
        *,
        weights_dir: str | os.PathLike[str],
        weight_sync: str = "disk",
        servers: Sequence[VLLMServer] = (),
        sleep_mode: bool = False,
        timeout: float = 600.0,
        max_concurrency: int = 64,
        retries: int = 2,
        probe_tolerance: float = 0.05,
        probe_tokens: int = 8,
        nccl_port: int = 29555,
    ) -> None:
        if not urls:
            raise ValueError("urls is empty; expected at least one vLLM server URL")
        if weight_sync not in WEIGHT_SYNC_MODES:
            raise ValueError(f"weight_sync={weight_sync!r}; expected one of {WEIGHT_SYNC_MODES}")
        self.local = local
        self.urls = [normalize_url(u) for u in urls]
        self.weights_dir = Path(weights_dir)
        self.weight_sync = weight_sync
        self.servers = list(servers)
        self.sleep_mode = sleep_mode
        self.timeout = timeout
        self.max_concurrency = max(1, max_concurrency)
        self.retries = max(0, retries)
        self.probe_tolerance = probe_tolerance
        self.probe_tokens = probe_tokens
        self.nccl_port = nccl_port
        self.name = f"vllm:{local.name}"
        self._calls = 0
        self._routes: dict[str, int] = {}
        self._load = [0] * len(self.urls)
        self._lock = threading.Lock()
        self._version = 0
        self._asleep = False
        self._nccl: list[Any] | None = None
        self.last_sync: dict[str, float] = {}

    # ------------------------------------------------------------ local side
    @property
    def sampling(self) -> SamplingConfig:
        """The local policy's sampling settings (one source of truth)."""
        return self.local.sampling

    @sampling.setter
    def sampling(self, value: SamplingConfig) -> None:
        self.local.sampling = value

    @property
    def model(self) -> Any:
        """The trainer's model (updated in place; the servers get it at each sync)."""
        return self.local.model

    @property
    def tokenizer(self) -> Any:
        """The trainer's tokenizer (prompts are encoded with it)."""
        return self.local.tokenizer

    @property
    def pad_id(self) -> int:
        """Padding token id."""
        return int(self.local.pad_id)

    def encode_prompt(
        self, messages: Sequence[Message], tip_block: str | None = None
    ) -> EncodedPrompt:
        """Encode locally (exact tip spans), as the local backend does."""
        return self.local.encode_prompt(messages, tip_block)

    def logprobs(
        self,
        prompt_ids: Sequence[Sequence[int]],
        response_ids: Sequence[Sequence[int]],
        *,
        temperature: float | None = None,
    ) -> list[list[float]]:
        """The trainer's log-probabilities (what the update uses)."""
        return self.local.logprobs(prompt_ids, response_ids, temperature=temperature)

    def sentence_end_ids(self) -> frozenset[int]:
        """The tokenizer's sentence-end tokens."""
        return self.local.sentence_end_ids()

    def sampling_state(self) -> dict[str, int]:
        """The seed counter of the next generation (saved in checkpoints)."""
        return {"calls": self._calls}

    def load_sampling_state(self, state: dict[str, int]) -> None:
        """Restore :meth:`sampling_state`."""
        self._calls = int(state["calls"])

    def clear_prefix_cache(self) -> None:
        """Drop the local policy's prefix cache (the servers' go in :meth:`sync_weights`)."""
        self.local.clear_prefix_cache()

    # ------------------------------------------------------------ generation
    def server_for(self, key: str | None) -> int:
        """The server index of a route key (assigned on first sight to the least-loaded server).

        Rows without a key go to the least-loaded server of the moment.
        """
        with self._lock:
            if key is not None and key in self._routes:
                return self._routes[key]
            index = min(range(len(self.urls)), key=lambda i: (self._load[i], i))
            self._load[index] += 1
            if key is not None:
                self._routes[key] = index
            return index

    def generate(
        self,
        conversations: Sequence[Sequence[Message]],
        sampling: SamplingConfig | None = None,
    ) -> list[Generation]:
        """Encode locally, sample on the servers."""
        return self.generate_ids([self.encode_prompt(c).ids for c in conversations], sampling)

    def generate_ids(
        self,
        prompt_ids: Sequence[Sequence[int]],
        sampling: SamplingConfig | None = None,
        *,
        route_keys: Sequence[str | None] | None = None,
    ) -> list[Generation]:
        """One ``/v1/completions`` request per prompt (token ids in, token ids and log-probs out).

        Args:
            prompt_ids: Token-id prompts.
            sampling: Override of the policy's sampling settings.
            route_keys: One key per prompt (e.g. the trajectory); equal keys go to one server.
        """
        cfg = sampling or self.sampling
        if not prompt_ids:
            return []
        if route_keys is not None and len(route_keys) != len(prompt_ids):
            raise ValueError(f"got {len(route_keys)} route keys for {len(prompt_ids)} prompts")
        for i, p in enumerate(prompt_ids):
            if len(p) == 0:
                raise ValueError(f"prompt {i} is empty; expected at least one token")
        self._wake()
        base_seed = None if cfg.seed is None else cfg.seed * 1_000_003 + 100_003 * self._calls
        self._calls += 1
        keys = list(route_keys) if route_keys is not None else [None] * len(prompt_ids)
        jobs = [
            (
                self.urls[self.server_for(key)],
                self._payload(p, cfg, None if base_seed is None else base_seed + i),
            )
            for i, (p, key) in enumerate(zip(prompt_ids, keys, strict=True))
        ]
        with ThreadPoolExecutor(min(self.max_concurrency, len(jobs))) as pool:
            replies = list(
                pool.map(lambda job: self._post(f"{job[0]}/v1/completions", job[1]), jobs)
            )
        return [
            self._generation(list(p), reply, url)
            for p, reply, (url, _) in zip(prompt_ids, replies, jobs, strict=True)
        ]

    def _payload(self, prompt: Sequence[int], cfg: SamplingConfig, seed: int | None) -> dict:
        body: dict[str, Any] = {
            "prompt": [int(t) for t in prompt],
            "max_tokens": cfg.max_new_tokens,
            "temperature": cfg.temperature,
            "top_p": cfg.top_p,
            "logprobs": 0,  # the sampled token's own log-prob
            "return_tokens_as_token_ids": True,
            "skip_special_tokens": True,
        }
        if cfg.stop_token_ids:
            body["stop_token_ids"] = sorted(int(t) for t in cfg.stop_token_ids)
        if seed is not None:
            body["seed"] = seed
        return body

    def _post(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        return post_json(
            url,
            body,
            timeout=self.timeout,
            retries=self.retries,
            expect=(
                "a vLLM server (start one with `make vllm` and "
                "`VLLM_SERVER_DEV_MODE=1 .venv-vllm/bin/python -m vllm.entrypoints.openai."
                "api_server --model DIR --port PORT`, or set vllm_colocate: true)"
            ),
        )

    def _generation(self, prompt: list[int], reply: dict[str, Any], url: str) -> Generation:
        try:
            choice = reply["choices"][0]
            lp = choice["logprobs"]
            ids = [_token_id(t) for t in lp["tokens"]]
            logprobs = [float(x) for x in lp["token_logprobs"]]
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise RuntimeError(
                f"malformed completion from {url} (expected choices[0].logprobs.tokens as "
                f"'token_id:N' and token_logprobs): {str(reply)[:300]}"
            ) from exc
        finish = "length" if choice.get("finish_reason") == "length" else "stop"
        return Generation(
            prompt_ids=prompt,
            response_ids=ids,
            logprobs=logprobs,
            text=self.tokenizer.decode(ids, skip_special_tokens=True),
            finish_reason=finish,
        )

    # ----------------------------------------------------------- weight sync
    def _each_server(self, path: str, body: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        with ThreadPoolExecutor(len(self.urls)) as pool:
            return list(pool.map(lambda u: self._post(f"{u}{path}", body or {}), self.urls))

    def pause(self) -> None:
        """Free the servers' accelerator memory for the update (colocated sleep mode: level 1
        keeps the weights in host memory); a no-op in server mode."""
        if self.sleep_mode and not self._asleep:
            self._each_server("/sleep?level=1")
            self._asleep = True

    def _wake(self) -> None:
        if self._asleep:
            self._each_server("/wake_up")
            self._asleep = False

    def sync_weights(
        self,
        model: Any,
        *,
        main: bool = True,
        rank: int = 0,
        state_dict: dict[str, Any] | None = None,
    ) -> float:
        """Give every server the trainer's current weights; return the seconds it took.

        Args:
            model: The trainer's (unwrapped) model.
            main: Whether this is the main process (it writes and drives the servers; other
                processes only join the NCCL transfer's collectives).
            rank: This process's rank (NCCL: rank 0 sends).
            state_dict: The full weights gathered from ``model``'s shards (FSDP2; the disk sync
                writes them instead of ``model``'s own).

        Raises:
            StaleWeightsError: A server's probe log-probs do not follow the new weights.
            RuntimeError: A server is unreachable or refused (one line naming it).
        """
        t0 = time.perf_counter()
        if main:
            self._wake()
        if self.weight_sync == "nccl":
            self._sync_nccl(model, rank)
        elif main:
            self._sync_disk(model, state_dict)
        if not main:
            return time.perf_counter() - t0
        self._each_server("/reset_prefix_cache")
        sync_s = time.perf_counter() - t0
        self.check_weights(model)
        self.last_sync = {"sync_s": sync_s, "probe_s": time.perf_counter() - t0 - sync_s}
        return sync_s

    def _sync_disk(self, model: Any, state_dict: dict[str, Any] | None = None) -> None:
        self._version += 1
        target = self.weights_dir / f"v{self._version}"
        shutil.rmtree(target, ignore_errors=True)
        write_hf_weights(model, target, state_dict=state_dict)
        body = {"method": "reload_weights", "kwargs": {"weights_path": str(target.resolve())}}
        self._each_server("/collective_rpc", body)
        for old in self.weights_dir.glob("v*"):  # keep the served version only
            if old.name != target.name and old.name[1:].isdigit():
                shutil.rmtree(old, ignore_errors=True)

    def _sync_nccl(self, model: Any, rank: int) -> None:
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
        if _is_lora(model):
            raise ValueError(
                "weight_sync='nccl' sends the model's own parameters, but a LoRA model's are "
                "adapters; expected weight_sync='disk' with lora (it writes merged weights)"
            )
        if self._nccl is None:  # one NCCL group per server: trainer rank 0 + its workers
            self._nccl = []
            for i, url in enumerate(self.urls):
                world = int(_get_json(f"{url}/get_world_size?include_dp=false")["world_size"]) + 1
                info = NCCLTrainerInitInfo(
                    master_address=_address_toward(_host(url)),
                    master_port=self.nccl_port + i,
                    world_size=world,
                    rank=rank,
                )
                self._nccl.append(
                    NCCLTrainerWeightTransferEngine.trainer_init(
                        info, client=HTTPVLLMWeightSyncClient(url), source=ModuleSource(model)
                    )
                )
        for engine in self._nccl:
            engine.send_weights()

    def check_weights(self, model: Any) -> float:
        """Compare each server's greedy log-probs on a fixed probe with the trainer's.

        Returns:
            The largest absolute difference over servers and probe tokens.

        Raises:
            StaleWeightsError: The difference exceeds ``probe_tolerance`` (the server samples
                from other weights than the trainer trains).
        """
        prompt = self.tokenizer(PROBE_TEXT, add_special_tokens=False)["input_ids"]
        probe = SamplingConfig(temperature=0.0, max_new_tokens=self.probe_tokens)
        worst = 0.0
        for url in self.urls:
            reply = self._post(f"{url}/v1/completions", self._payload(prompt, probe, None))
            gen = self._generation(list(prompt), reply, url)
            mine = self.local.logprobs([prompt], [gen.response_ids], temperature=1.0)[0]
            diff = max(abs(a - b) for a, b in zip(mine, gen.logprobs, strict=True))
            if diff > self.probe_tolerance:
                raise StaleWeightsError(
                    f"vLLM server {url} serves stale weights after sync {self._version}: its "
                    f"log-probs of a probe differ from the trainer's by {diff:.4g} (tolerance "
                    f"{self.probe_tolerance}); expected it to reload the weights "
                    f"({self.weight_sync} sync) -- check its log"
                )
            worst = max(worst, diff)
        return worst

    def close(self) -> None:
        """Stop the servers this policy started and drop the local model."""
        for server in self.servers:
            server.stop()
        self.local.close()


def _token_id(token: str | int) -> int:
    """``"token_id:42"`` (``return_tokens_as_token_ids``) -> 42.

    Example:
        >>> _token_id("token_id:42")
        42
    """
    if isinstance(token, int):
        return token
    if not token.startswith("token_id:"):
        raise ValueError(f"token {token!r}; expected 'token_id:N' (return_tokens_as_token_ids)")
    return int(token[len("token_id:") :])


def _get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.loads(resp.read().decode("utf-8"))


def _host(url: str) -> str:
    return urlparse(url).hostname or "127.0.0.1"


def _address_toward(host: str) -> str:
    """This machine's address as seen from ``host`` (where NCCL's rendezvous is reached)."""
    if host in ("127.0.0.1", "localhost"):
        return "127.0.0.1"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((host, 9))  # UDP: picks the route, sends nothing
        return str(probe.getsockname()[0])


def _port(url: str) -> int:
    port = urlparse(url).port
    if port is None:
        raise ValueError(f"vllm url {url!r} names no port; expected 'http://127.0.0.1:PORT'")
    return port
