"""The one JSON-over-HTTP helper against the project's loopback server: replies, errors, health."""

from __future__ import annotations

import pytest

from empo_gym.agents.llm.http_json import get_json, is_healthy, post_json
from empo_gym.agents.llm.policy import Generation, SamplingConfig
from empo_gym.agents.llm.policy_server import PolicyServer


class _Canned:
    """A text-only Policy that answers "look" at once."""

    name = "canned"
    sampling = SamplingConfig()

    def generate(self, conversations, sampling=None):
        return [Generation([], [], [], "look") for _ in conversations]

    def close(self) -> None:
        """Nothing to release."""


def test_replies_and_errors_name_the_method_url_and_status() -> None:
    with PolicyServer(_Canned()) as server:
        url = server.base_url
        assert get_json(f"{url}/models")["data"][0]["id"] == "canned"
        body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}
        reply = post_json(f"{url}/chat/completions", body, retries=0)
        assert reply["choices"][0]["message"]["content"] == "look"
        with pytest.raises(RuntimeError, match=rf"^GET {url}/nope failed with HTTP 404: "):
            get_json(f"{url}/nope")
        with pytest.raises(
            RuntimeError, match=rf"^POST {url}/chat/completions failed with HTTP 400: .*max_tokens"
        ):
            post_json(f"{url}/chat/completions", {**body, "max_tokens": 0}, retries=2)
        root = url[: -len("/v1")]
        assert not is_healthy(root)  # the policy server has no /health: a 404 is a no
    with pytest.raises(RuntimeError, match=rf"cannot reach {url}/models after 2 attempt\(s\)"):
        get_json(f"{url}/models", retries=1, timeout=2)
