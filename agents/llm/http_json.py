"""JSON over HTTP: the one request helper every LLM client and server wait uses.

Standard library only (``urllib``). :func:`post_json` and :func:`get_json` retry connection
errors and HTTP 429/5xx with exponential backoff and raise one-line :class:`RuntimeError`\\ s that
name the method, the URL, the HTTP status and what was expected there; :func:`is_healthy` is the
yes/no probe of a server's ``GET /health`` used while waiting for it to start.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

#: HTTP statuses worth retrying (rate limited, server busy or restarting).
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def _request(
    method: str,
    url: str,
    data: bytes | None,
    *,
    headers: dict[str, str],
    timeout: float,
    retries: int,
    hint_401: str,
    expect: str,
) -> dict[str, Any]:
    """Send one request (retried) and decode its JSON reply (``{}`` for an empty body)."""
    delay = 0.5
    for attempt in range(retries + 1):
        req = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                body = resp.read().decode("utf-8")
                return json.loads(body) if body.strip() else {}
        except urllib.error.HTTPError as exc:
            detail = " ".join(exc.read().decode("utf-8", "replace")[:500].split())
            if exc.code in RETRY_STATUSES and attempt < retries:
                time.sleep(delay)
                delay *= 2
                continue
            hint = hint_401 if exc.code in (401, 403) else ""
            raise RuntimeError(
                f"{method} {url} failed with HTTP {exc.code}{hint}: {detail}"
            ) from exc
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            if attempt < retries:
                time.sleep(delay)
                delay *= 2
                continue
            reason = getattr(exc, "reason", exc)
            raise RuntimeError(
                f"cannot reach {url} after {attempt + 1} attempt(s): {reason}; "
                f"expected {expect} there"
            ) from exc
    raise AssertionError("unreachable")


def post_json(
    url: str,
    data: bytes | dict[str, Any],
    *,
    headers: dict[str, str] | None = None,
    timeout: float = 120.0,
    retries: int = 2,
    hint_401: str = "",
    expect: str = "an OpenAI-compatible server",
) -> dict[str, Any]:
    """POST JSON to ``url`` and return the decoded reply (``{}`` for an empty body).

    Connection errors and HTTP 429/5xx are retried with exponential backoff; what still fails
    raises a one-line RuntimeError naming the URL and what was expected there.

    Args:
        url: The endpoint.
        data: The body: a dict (encoded as JSON) or bytes already encoded.
        headers: Request headers (default: JSON content type).
        timeout: Seconds per attempt.
        retries: Attempts after the first.
        hint_401: Appended to the error of an HTTP 401 / 403 (e.g. which key variable to set).
        expect: What should answer at ``url`` (named when it cannot be reached).

    Example:
        >>> post_json("http://127.0.0.1:9/v1/x", {}, retries=0)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        RuntimeError: cannot reach http://127.0.0.1:9/v1/x after 1 attempt(s): ...
    """
    if isinstance(data, dict):
        data = json.dumps(data).encode("utf-8")
    return _request(
        "POST",
        url,
        data,
        headers=headers or {"Content-Type": "application/json"},
        timeout=timeout,
        retries=retries,
        hint_401=hint_401,
        expect=expect,
    )


def get_json(
    url: str,
    *,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
    retries: int = 0,
    expect: str = "an OpenAI-compatible server",
) -> dict[str, Any]:
    """GET ``url`` and return its decoded JSON reply (errors as in :func:`post_json`).

    Example:
        >>> get_json("http://127.0.0.1:9/v1/models", expect="a test server")
        ... # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        RuntimeError: cannot reach http://127.0.0.1:9/v1/models after 1 attempt(s): ...
    """
    return _request(
        "GET",
        url,
        None,
        headers=headers or {},
        timeout=timeout,
        retries=retries,
        hint_401="",
        expect=expect,
    )


def is_healthy(url: str, *, timeout: float = 5.0) -> bool:
    """Whether the server at root ``url`` answers ``GET {url}/health`` with HTTP 200.

    Any failure (refused, timed out, an HTTP error status) is a no, never an exception: the
    caller polls until a server has started.

    Example:
        >>> is_healthy("http://127.0.0.1:9")
        False
    """
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError):
        return False
