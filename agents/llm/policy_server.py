"""The project's OpenAI-compatible loopback policy server.

:class:`PolicyServer` answers ``POST /v1/chat/completions`` (and ``GET /v1/models``) with any
local :class:`~empo_gym.agents.llm.policy.Policy`, batching requests that arrive together into
one ``generate`` call. It is the other side of
:class:`~empo_gym.agents.llm.openai_policy.OpenAIPolicy`: used by the tests, and handy to share
one local model between processes (``empo-gym run --base-url`` evaluates a model it serves).
:func:`parse_chat_request` validates a request (:class:`BadRequest` names the bad field).
"""

from __future__ import annotations

import json
import math
import queue
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from empo_gym.agents.llm.policy import (
    Generation,
    Message,
    Policy,
    SamplingConfig,
    TokenPolicy,
    check_policy,
)


class BadRequest(ValueError):
    """A chat completion request the :class:`PolicyServer` refuses (HTTP ``status``)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_ROLES = frozenset({"system", "user", "assistant"})
_DEFAULT_MAX_TOKENS = 256


def _number(body: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = body.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BadRequest(f"{key}={value!r}; expected a finite number")
    if not low <= value <= high:
        raise BadRequest(f"{key}={value!r}; expected a value in [{low}, {high}]")
    return float(value)


def parse_chat_request(
    body: dict[str, Any], sampling: SamplingConfig, *, max_tokens_limit: int
) -> tuple[list[Message], SamplingConfig, bool]:
    """Validate a chat completion request: its messages, sampling and ``logprobs`` flag.

    Raises:
        BadRequest: A field is missing, mistyped or out of range (the message names it).

    Example:
        >>> parse_chat_request(
        ...     {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0},
        ...     SamplingConfig(), max_tokens_limit=64)
        Traceback (most recent call last):
        ...
        empo_gym.agents.llm.policy_server.BadRequest: max_tokens=0; expected an integer in 1..64
    """
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise BadRequest("messages must be a non-empty list of {role, content} objects")
    messages: list[Message] = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict) or m.get("role") not in _ROLES:
            raise BadRequest(f"messages[{i}].role must be one of {sorted(_ROLES)}")
        if not isinstance(m.get("content"), str):
            raise BadRequest(f"messages[{i}].content must be a string")
        messages.append({"role": m["role"], "content": m["content"]})
    key = "max_tokens" if body.get("max_tokens") is not None else "max_completion_tokens"
    max_tokens = body.get(key)
    if max_tokens is None:
        max_tokens = min(_DEFAULT_MAX_TOKENS, max_tokens_limit)
    if (
        isinstance(max_tokens, bool)
        or not isinstance(max_tokens, int)
        or not 1 <= max_tokens <= max_tokens_limit
    ):
        raise BadRequest(f"{key}={max_tokens!r}; expected an integer in 1..{max_tokens_limit}")
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise BadRequest(f"seed={seed!r}; expected an integer or null")
    logprobs = body.get("logprobs", False)
    if not isinstance(logprobs, bool) and logprobs is not None:
        raise BadRequest(f"logprobs={logprobs!r}; expected true or false")
    top_p = _number(body, "top_p", 1.0, 0.0, 1.0)
    if top_p == 0:
        raise BadRequest("top_p=0; expected a value in (0, 1]")
    cfg = replace(
        sampling,
        temperature=_number(body, "temperature", 1.0, 0.0, 2.0),
        top_p=top_p,
        max_new_tokens=max_tokens,
        seed=seed,
    )
    return messages, cfg, bool(logprobs)


class PolicyServer:
    """A loopback OpenAI-compatible server answering chat completions with a local policy.

    Requests arriving within ``batch_window`` seconds of each other (with equal sampling
    settings) are answered by one batched ``generate``.

    Args:
        policy: The local policy (e.g. a
            :class:`~empo_gym.agents.llm.transformers_policy.TransformersPolicy`).
        host: Interface to bind (loopback by default).
        port: Port (0 picks a free one; see :attr:`base_url`).
        batch_window: Seconds to wait for more requests before generating.
        max_batch: Largest batch per generation.
        max_tokens_limit: Largest ``max_tokens`` a request may ask for (a larger one gets
            HTTP 400), so one request cannot hold the model for long.
        request_timeout: Seconds a request may take (reading its body, then waiting for its
            generation; HTTP 504 after that).
        max_body_bytes: Largest request body (HTTP 413 above).

    Bad requests get HTTP 4xx naming the field: a missing or negative ``Content-Length``, a
    body that is not a JSON object, ``max_tokens`` outside ``1..max_tokens_limit``, a
    ``temperature`` outside ``[0, 2]`` or not finite, ``top_p`` outside ``(0, 1]``, a non-integer
    ``seed``, malformed ``messages``.

    Use as a context manager: ``with PolicyServer(policy) as server: server.base_url``.
    """

    def __init__(
        self,
        policy: Policy,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        batch_window: float = 0.05,
        max_batch: int = 16,
        max_tokens_limit: int = 1024,
        request_timeout: float = 120.0,
        max_body_bytes: int = 8 * 2**20,
    ) -> None:
        check_policy(policy, Policy, needed_by="PolicyServer")
        self.policy = policy
        self.batch_window = batch_window
        self.max_batch = max_batch
        self.max_tokens_limit = max_tokens_limit
        self.request_timeout = request_timeout
        self.max_body_bytes = max_body_bytes
        self._queue: queue.Queue[tuple[list[Message], SamplingConfig, bool, Future[Any]] | None]
        self._queue = queue.Queue()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                """Silence per-request logging."""

            def _send(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode("utf-8")
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                """``GET /v1/models``."""
                if self.path.rstrip("/") == "/v1/models":
                    model = {"id": server.policy.name, "object": "model"}
                    self._send(200, {"object": "list", "data": [model]})
                else:
                    self._send(404, {"error": {"message": f"unknown path {self.path}"}})

            def do_POST(self) -> None:  # noqa: N802
                """``POST /v1/chat/completions``."""
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, {"error": {"message": f"unknown path {self.path}"}})
                    return
                try:
                    body = self._read_body()
                    messages, cfg, logprobs = parse_chat_request(
                        body, server.policy.sampling, max_tokens_limit=server.max_tokens_limit
                    )
                except BadRequest as exc:
                    self._send(exc.status, {"error": {"message": str(exc)}})
                    return
                future: Future[Any] = Future()
                server._queue.put((messages, cfg, logprobs, future))
                try:
                    gen = future.result(timeout=server.request_timeout)
                except FutureTimeout:
                    future.cancel()  # still queued: the worker skips it
                    self._send(
                        504,
                        {
                            "error": {
                                "message": f"generation took longer than {server.request_timeout}"
                                " s; retry later or ask for fewer max_tokens"
                            }
                        },
                    )
                    return
                except Exception as exc:  # report generation failures as HTTP 500
                    self._send(500, {"error": {"message": str(exc)}})
                    return
                self._send(200, server._completion(body, gen, logprobs))

            def _read_body(self) -> dict[str, Any]:
                raw = self.headers.get("Content-Length")
                try:
                    length = int(raw) if raw is not None else -1
                except ValueError:
                    length = -1
                if length < 0:
                    raise BadRequest(
                        f"Content-Length {raw!r}; expected a non-negative integer", status=411
                    )
                if length > server.max_body_bytes:
                    raise BadRequest(
                        f"body of {length} bytes exceeds the limit of {server.max_body_bytes}",
                        status=413,
                    )
                try:  # bounded by the socket timeout (self.timeout): a stalled client
                    data = self.rfile.read(length)
                except TimeoutError:
                    raise BadRequest(
                        f"body not received within {server.request_timeout} s", status=408
                    ) from None
                if len(data) != length:
                    raise BadRequest(f"body ended after {len(data)} of {length} bytes")
                try:
                    body = json.loads(data.decode("utf-8"), parse_constant=_no_constant)
                except (UnicodeDecodeError, ValueError, RecursionError) as exc:
                    raise BadRequest(f"body is not valid JSON: {exc}") from None
                if not isinstance(body, dict):
                    raise BadRequest(f"body must be a JSON object, got {type(body).__name__}")
                return body

        Handler.timeout = request_timeout  # socket timeout: a client that stalls mid-body

        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        self._threads: list[threading.Thread] = []

    @property
    def base_url(self) -> str:
        """``http://host:port/v1``."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def _completion(self, body: dict[str, Any], gen: Generation, logprobs: bool) -> dict[str, Any]:
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": gen.text},
            "finish_reason": gen.finish_reason,
        }
        if logprobs:
            # Only a token-level policy can spell out its tokens; others send empty strings.
            tok = self.policy.tokenizer if isinstance(self.policy, TokenPolicy) else None
            tokens = [tok.decode([t]) if tok is not None else "" for t in gen.response_ids]
            choice["logprobs"] = {
                "content": [
                    {"token": s, "logprob": lp} for s, lp in zip(tokens, gen.logprobs, strict=False)
                ]
            }
        return {
            "id": f"chatcmpl-{time.time_ns()}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or self.policy.name,
            "choices": [choice],
            "usage": {
                "prompt_tokens": len(gen.prompt_ids),
                "completion_tokens": len(gen.response_ids),
                "total_tokens": len(gen.prompt_ids) + len(gen.response_ids),
            },
        }

    def _worker(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            deadline = time.monotonic() + self.batch_window
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)
                    break
                batch.append(nxt)
            groups: dict[tuple[Any, ...], list[Any]] = {}
            for entry in batch:
                cfg = entry[1]
                # The seed is left out: requests of one client differ only by their seeds.
                key = (cfg.temperature, cfg.top_p, cfg.max_new_tokens)
                groups.setdefault(key, []).append(entry)
            for entries in groups.values():
                # a request whose client timed out was cancelled: it costs no generation
                entries = [e for e in entries if e[3].set_running_or_notify_cancel()]
                if not entries:
                    continue
                try:
                    gens = self.policy.generate([e[0] for e in entries], entries[0][1])
                except Exception as exc:  # hand the error to every waiting request
                    for e in entries:
                        e[3].set_exception(exc)
                    continue
                for e, g in zip(entries, gens, strict=True):
                    e[3].set_result(g)

    def start(self) -> PolicyServer:
        """Serve in background threads; returns self."""
        for target in (self._httpd.serve_forever, self._worker):
            t = threading.Thread(target=target, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._queue.put(None)
        self._httpd.shutdown()
        self._httpd.server_close()
        for t in self._threads:
            t.join(timeout=5)

    def __enter__(self) -> PolicyServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
