"""A policy behind an OpenAI-compatible chat completions server (vLLM, llama.cpp, ...).

:class:`OpenAIPolicy` sends one ``POST {base_url}/chat/completions`` per conversation, many in
flight at once (servers such as vLLM batch concurrent requests), through the standard-library
helper :func:`~empo_gym.agents.llm.http_json.post_json`. The project's own server for it is
:class:`~empo_gym.agents.llm.policy_server.PolicyServer`.

:class:`OpenAIPolicy` is a :class:`~empo_gym.agents.llm.policy.Policy` only: the server's tokens
are not exposed, so it is neither a ``TokenPolicy`` nor trainable.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from empo_gym.agents.llm.http_json import post_json
from empo_gym.agents.llm.policy import Generation, Message, SamplingConfig

#: Environment variable holding the API key by default.
DEFAULT_KEY_ENV = "OPENAI_API_KEY"


def check_base_url(base_url: str) -> None:
    """Raise ValueError unless ``base_url`` is an http(s) URL (a server's ``.../v1`` root).

    Example:
        >>> check_base_url("127.0.0.1:8000/v1")
        Traceback (most recent call last):
        ...
        ValueError: base_url='127.0.0.1:8000/v1'; expected an http(s) URL such as 'http://127.0.0.1:8000/v1'
    """
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise ValueError(
            f"base_url={base_url!r}; expected an http(s) URL such as 'http://127.0.0.1:8000/v1'"
        )


class OpenAIPolicy:
    """Chat policy over HTTP against an OpenAI-compatible server.

    Args:
        base_url: Server root including ``/v1`` (e.g. ``http://127.0.0.1:8000/v1``).
        model: Model name sent in each request.
        api_key_env: Name of the environment variable holding the API key (may be unset for
            servers without authentication).
        sampling: Sampling settings (temperature, top-p, max tokens, seed).
        timeout: Seconds per request.
        max_concurrency: Requests in flight at once.
        retries: Retries on connection errors and HTTP 429/5xx (exponential backoff).
        request_logprobs: Ask the server for per-token log-probabilities.

    Example:
        >>> p = OpenAIPolicy("http://127.0.0.1:9/v1", model="m", api_key_env="NO_SUCH_KEY_VAR")
        >>> p.endpoint
        'http://127.0.0.1:9/v1/chat/completions'
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str = DEFAULT_KEY_ENV,
        sampling: SamplingConfig | None = None,
        timeout: float = 120.0,
        max_concurrency: int = 16,
        retries: int = 2,
        request_logprobs: bool = True,
    ) -> None:
        check_base_url(base_url)
        self.base_url = base_url.rstrip("/")
        self.name = model
        self.api_key_env = api_key_env
        self.sampling = sampling or SamplingConfig()
        self.timeout = timeout
        self.max_concurrency = max(1, max_concurrency)
        self.retries = max(0, retries)
        self.request_logprobs = request_logprobs
        self._calls = 0

    @property
    def endpoint(self) -> str:
        """The chat completions URL."""
        return f"{self.base_url}/chat/completions"

    def config(self) -> dict[str, Any]:
        """Settings for leaderboard entries / logs (never the key)."""
        return {
            "model": self.name,
            "base_url": self.base_url,
            "api_key_env": self.api_key_env,
            "temperature": self.sampling.temperature,
            "top_p": self.sampling.top_p,
            "max_new_tokens": self.sampling.max_new_tokens,
            "seed": self.sampling.seed,
        }

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _payload(self, messages: Sequence[Message], cfg: SamplingConfig, seed: int | None) -> bytes:
        body: dict[str, Any] = {
            "model": self.name,
            "messages": [dict(m) for m in messages],
            "temperature": cfg.temperature,
            "top_p": cfg.top_p,
            "max_tokens": cfg.max_new_tokens,
        }
        if seed is not None:
            body["seed"] = seed
        if self.request_logprobs:
            body["logprobs"] = True
        return json.dumps(body).encode("utf-8")

    def _post(self, data: bytes) -> dict[str, Any]:
        return post_json(
            self.endpoint,
            data,
            headers=self._headers(),
            timeout=self.timeout,
            retries=self.retries,
            hint_401=f" (is ${self.api_key_env} set?)",
        )

    @staticmethod
    def _generation(reply: dict[str, Any]) -> Generation:
        try:
            choice = reply["choices"][0]
            text = choice["message"].get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise RuntimeError(
                f"malformed chat completion (expected choices[0].message.content): "
                f"{json.dumps(reply)[:300]}"
            ) from exc
        content = (choice.get("logprobs") or {}).get("content") or []
        logprobs = [float(t.get("logprob", 0.0)) for t in content if isinstance(t, dict)]
        finish = choice.get("finish_reason") or "stop"
        return Generation(
            prompt_ids=[], response_ids=[], logprobs=logprobs, text=text, finish_reason=finish
        )

    def generate(
        self,
        conversations: Sequence[Sequence[Message]],
        sampling: SamplingConfig | None = None,
    ) -> list[Generation]:
        """One completion per conversation, requested concurrently; order is preserved.

        ``prompt_ids`` / ``response_ids`` are empty (the server's tokens are not exposed);
        ``logprobs`` holds the server's per-token log-probs when it returns them.
        """
        cfg = sampling or self.sampling
        base_seed = None if cfg.seed is None else cfg.seed + 100_003 * self._calls
        self._calls += 1
        payloads = [
            self._payload(c, cfg, None if base_seed is None else base_seed + i)
            for i, c in enumerate(conversations)
        ]
        if len(payloads) <= 1:
            return [self._generation(self._post(p)) for p in payloads]
        with ThreadPoolExecutor(min(self.max_concurrency, len(payloads))) as pool:
            replies = list(pool.map(self._post, payloads))
        return [self._generation(r) for r in replies]

    def close(self) -> None:
        """Nothing to release (connections are per request)."""
