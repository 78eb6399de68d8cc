"""The vLLM rollout backend's client: token-level sampling on vLLM servers, scoring local.

:class:`VLLMPolicy` is a :class:`~empo_gym.agents.llm.policy.TokenPolicy` and
:class:`~empo_gym.agents.llm.policy.TrainablePolicy` that keeps the trainer's model and tokenizer
(a :class:`~empo_gym.agents.llm.transformers_policy.TransformersPolicy`) for everything
token-exact -- prompts are encoded locally, so tip spans stay exact, and log-probabilities for
the update are the trainer's -- and sends generation to vLLM's OpenAI-compatible
``/v1/completions`` with token-id prompts, getting token ids (``return_tokens_as_token_ids``) and
their log-probabilities back. Several servers share the load; the rows of one trajectory stick to
one server (``route_keys``), so its prefix cache serves the trajectory's growing prompts.

After each optimizer step the trainer calls :meth:`VLLMPolicy.sync_weights`: the weights go to
every server from disk or over NCCL (:mod:`~empo_gym.agents.llm.vllm_sync`), the servers' prefix
caches are reset, and a probe checks that every server's log-probabilities follow the new weights
(:class:`~empo_gym.agents.llm.vllm_sync.StaleWeightsError` otherwise).

Two deployments, the same code: **server mode** (``urls`` point at servers on their own GPUs,
started by the user with :func:`~empo_gym.agents.llm.vllm_server.server_command`'s command line)
and **colocated** (the trainer starts the servers itself on the training GPUs with sleep mode,
:mod:`~empo_gym.agents.llm.vllm_server`; :meth:`VLLMPolicy.pause` puts them to sleep during the
update, the sync wakes them up). The weights a server starts from are written by
:func:`~empo_gym.agents.llm.vllm_weights.write_hf_weights`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from empo_gym.agents.llm.http_json import post_json
from empo_gym.agents.llm.policy import EncodedPrompt, Generation, Message, SamplingConfig
from empo_gym.agents.llm.vllm_server import VLLMServer, normalize_url
from empo_gym.agents.llm.vllm_sync import PROBE_TEXT, StaleWeightsError, WeightSync


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
        self.local = local
        self.urls = [normalize_url(u) for u in urls]
        self.weight_sync = weight_sync
        self.servers = list(servers)
        self.sleep_mode = sleep_mode
        self.timeout = timeout
        self.max_concurrency = max(1, max_concurrency)
        self.retries = max(0, retries)
        self.probe_tolerance = probe_tolerance
        self.probe_tokens = probe_tokens
        self.name = f"vllm:{local.name}"
        self._calls = 0
        self._routes: dict[str, int] = {}
        self._load = [0] * len(self.urls)
        self._lock = threading.Lock()
        self._asleep = False
        #: Pushes the trainer's weights to the servers (disk versions or NCCL).
        self.syncer = WeightSync(
            self.urls,
            self._each_server,
            weights_dir=weights_dir,
            mode=weight_sync,
            nccl_port=nccl_port,
        )
        self.last_sync: dict[str, float] = {}

    @property
    def weights_dir(self) -> Path:
        """Where the disk sync writes weight versions (``<weights_dir>/v<N>``)."""
        return self.syncer.weights_dir

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
        self.syncer.push(model, main=main, rank=rank, state_dict=state_dict)
        if not main:
            return time.perf_counter() - t0
        self._each_server("/reset_prefix_cache")
        sync_s = time.perf_counter() - t0
        self.check_weights(model)
        self.last_sync = {"sync_s": sync_s, "probe_s": time.perf_counter() - t0 - sync_s}
        return sync_s

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
                    f"vLLM server {url} serves stale weights after sync {self.syncer.version}: its "
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
