"""A stand-in vLLM server for the fast tests: vLLM's wire format over a real (tiny) HF model.

It answers what :class:`~empo_gym.agents.llm.vllm_policy.VLLMPolicy` sends -- ``/v1/completions``
with token-id prompts (token ids and log-probs back), ``/collective_rpc`` ``reload_weights``,
``/reset_prefix_cache``, ``/sleep``, ``/wake_up``, ``/health`` -- with its OWN copy of the model,
so a sync that does not reach it leaves it serving stale weights, as a real server would.
"""

from __future__ import annotations

import copy
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from empo_gym.agents.llm.policy import SamplingConfig


class StandInVLLM:
    """A loopback server speaking vLLM's OpenAI-compatible dialect, backed by ``policy``'s model.

    Args:
        policy: A TransformersPolicy; the server samples with a deep copy of it.
        ignore_reload: Answer ``reload_weights`` without loading anything (a stale server).
        logprob_offset: Added to every returned log-prob (a sampler whose numerics differ).
    """

    def __init__(
        self, policy: Any, *, ignore_reload: bool = False, logprob_offset: float = 0.0
    ) -> None:
        self.policy = copy.deepcopy(policy)
        self.ignore_reload = ignore_reload
        self.logprob_offset = logprob_offset
        self.log: list[tuple[str, Any]] = []  # (path, body) of every POST
        self.asleep = False
        self._lock = threading.Lock()
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
                """``/health``."""
                if self.path == "/health":
                    self._send(200, {})
                else:
                    self._send(404, {"error": f"unknown path {self.path}"})

            def do_POST(self) -> None:  # noqa: N802
                """The endpoints listed in the module doc."""
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length).decode("utf-8") or "{}")
                path = urlparse(self.path).path
                with server._lock:
                    server.log.append((self.path, body))
                    try:
                        code, reply = server._handle(path, body)
                    except Exception as exc:  # a server error, as vLLM reports them
                        code, reply = 500, {"error": {"message": str(exc)}}
                self._send(code, reply)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def completions(self) -> list[dict[str, Any]]:
        """Bodies of the completion requests received."""
        return [b for p, b in self.log if p == "/v1/completions"]

    def _handle(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if path == "/v1/completions":
            if self.asleep:
                return 500, {"error": {"message": "the engine is sleeping"}}
            return 200, self._complete(body)
        if path == "/collective_rpc" and body.get("method") == "reload_weights":
            if not self.ignore_reload:
                self._reload(Path(body["kwargs"]["weights_path"]))
            return 200, {"results": [None]}
        if path == "/reset_prefix_cache":
            self.policy.clear_prefix_cache()
            return 200, {}
        if path == "/sleep":
            self.asleep = True
            return 200, {"status": "sleeping"}
        if path == "/wake_up":
            self.asleep = False
            return 200, {}
        return 404, {"error": {"message": f"unknown path {path}"}}

    def _complete(self, body: dict[str, Any]) -> dict[str, Any]:
        prompt = body["prompt"]
        if not (isinstance(prompt, list) and all(isinstance(t, int) for t in prompt)):
            raise ValueError("this stand-in expects a token-id prompt")
        cfg = SamplingConfig(
            temperature=float(body.get("temperature", 1.0)),
            top_p=float(body.get("top_p", 1.0)),
            max_new_tokens=int(body.get("max_tokens", 16)),
            seed=body.get("seed"),
            stop_token_ids=frozenset(body.get("stop_token_ids") or []),
        )
        gen = self.policy.generate_ids([prompt], cfg)[0]
        as_ids = bool(body.get("return_tokens_as_token_ids"))
        tokens = [
            f"token_id:{t}" if as_ids else self.policy.tokenizer.decode([t])
            for t in gen.response_ids
        ]
        return {
            "object": "text_completion",
            "choices": [
                {
                    "index": 0,
                    "text": gen.text,
                    "logprobs": {
                        "tokens": tokens,
                        "token_logprobs": [lp + self.logprob_offset for lp in gen.logprobs],
                    },
                    "finish_reason": gen.finish_reason,
                }
            ],
        }

    def _reload(self, directory: Path) -> None:
        from safetensors.torch import load_file

        state: dict[str, Any] = {}
        for file in sorted(directory.glob("*.safetensors")):
            state.update(load_file(file))
        if not state:
            raise FileNotFoundError(f"no safetensors in {directory}")
        missing, unexpected = self.policy.model.load_state_dict(state, strict=False)
        if unexpected or any(not k.endswith("lm_head.weight") for k in missing):
            raise ValueError(f"weights do not fit: missing {missing}, unexpected {unexpected}")

    def start(self) -> StandInVLLM:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop and release the port."""
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> StandInVLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
