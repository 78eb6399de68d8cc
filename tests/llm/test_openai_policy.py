"""OpenAIPolicy over real HTTP on loopback against PolicyServer."""

from __future__ import annotations

import json
import urllib.request

import pytest

from empo_gym.agents.llm.openai_policy import OpenAIPolicy
from empo_gym.agents.llm.policy import SamplingConfig
from empo_gym.agents.llm.policy_server import PolicyServer
from empo_gym.agents.llm.rollout import RolloutRunner
from empo_gym.toy import ECHO_ACTIONS, ToyTextEnv

CONVS = [[{"role": "user", "content": f"Say a word about room {i}."}] for i in range(4)]


def test_roundtrip_over_loopback_http_batches_requests(tiny_policy):
    calls = []
    original = tiny_policy.generate

    def counting(conversations, sampling=None):
        calls.append(len(conversations))
        return original(conversations, sampling)

    tiny_policy.generate = counting
    with PolicyServer(tiny_policy, batch_window=0.2) as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(server.base_url + "/models", timeout=10) as resp:
            assert json.loads(resp.read())["data"][0]["id"]
        client = OpenAIPolicy(
            server.base_url,
            model="tiny",
            sampling=SamplingConfig(temperature=0.7, max_new_tokens=5, seed=3),
        )
        gens = client.generate(CONVS)
    assert len(gens) == 4
    for g in gens:
        assert isinstance(g.text, str) and g.finish_reason in ("stop", "length")
        assert 0 < len(g.logprobs) <= 5 and all(lp <= 0 for lp in g.logprobs)
    assert sum(calls) == 4 and max(calls) > 1  # concurrent requests were batched


def test_rollout_engine_runs_on_a_message_level_policy(tiny_policy):
    with PolicyServer(tiny_policy) as server:
        client = OpenAIPolicy(
            server.base_url, model="tiny", sampling=SamplingConfig(max_new_tokens=4, seed=0)
        )
        trajs = RolloutRunner(client, [ToyTextEnv("echo"), ToyTextEnv("echo")], "toy").run(
            [1], group_size=2
        )
    assert len(trajs) == 2 and all(len(t.turns) == 3 for t in trajs)
    assert all(turn.action in ECHO_ACTIONS for t in trajs for turn in t.turns)


def test_errors_name_the_url(tiny_policy, monkeypatch):
    with pytest.raises(ValueError, match="expected an http"):
        OpenAIPolicy("localhost:8000", model="m")
    dead = OpenAIPolicy("http://127.0.0.1:9/v1", model="m", retries=0, timeout=2)
    with pytest.raises(RuntimeError, match=r"cannot reach http://127.0.0.1:9/v1/chat/completions"):
        dead.generate(CONVS[:1])
    with PolicyServer(tiny_policy) as server:
        wrong = OpenAIPolicy(server.base_url.replace("/v1", "/v2"), model="m", retries=0)
        with pytest.raises(RuntimeError, match="HTTP 404"):
            wrong.generate(CONVS[:1])


def test_api_key_from_env_is_sent(monkeypatch):
    monkeypatch.setenv("MY_TEST_KEY", "sk-test")
    p = OpenAIPolicy("http://127.0.0.1:9/v1", model="m", api_key_env="MY_TEST_KEY")
    assert p._headers()["Authorization"] == "Bearer sk-test"
    assert "sk-test" not in json.dumps(p.config())


@pytest.mark.slow
def test_default_local_model_over_http(smol_policy):
    with PolicyServer(smol_policy) as server:
        client = OpenAIPolicy(
            server.base_url,
            model="smollm2-135m-instruct",
            sampling=SamplingConfig(temperature=0, max_new_tokens=12),
        )
        gens = client.generate([[{"role": "user", "content": "What is the capital of France?"}]])
    assert "paris" in gens[0].text.lower()


def test_server_checks_the_policy_and_serves_a_text_only_one():
    from empo_gym.agents.llm.policy import Generation

    class Canned:  # a text-only Policy: no tokenizer, so the token strings stay empty
        name = "canned"
        sampling = SamplingConfig()

        def generate(self, conversations, sampling=None):
            return [Generation([], [5, 6], [-0.5, -0.25], "look around") for _ in conversations]

        def close(self) -> None:
            """Nothing to release."""

    with pytest.raises(TypeError, match="PolicyServer needs a Policy; got object"):
        PolicyServer(object())  # type: ignore[arg-type]
    with PolicyServer(Canned()) as server:
        (gen,) = OpenAIPolicy(server.base_url, model="canned").generate(CONVS[:1])
    assert gen.text == "look around" and gen.logprobs == [-0.5, -0.25]


class _Canned:
    """A text-only Policy answering at once (or after ``delay`` seconds), recording budgets."""

    name = "canned"
    sampling = SamplingConfig()

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.budgets: list[int] = []

    def generate(self, conversations, sampling=None):
        import time

        from empo_gym.agents.llm.policy import Generation

        self.budgets.append(sampling.max_new_tokens)
        time.sleep(self.delay)
        return [Generation([], [5], [-0.5], "look") for _ in conversations]

    def close(self) -> None:
        """Nothing to release."""


def _post(url: str, body: bytes, headers: dict[str, str] | None = None, timeout: float = 10):
    """(status, JSON reply) of a raw POST."""
    import urllib.error

    req = urllib.request.Request(
        url + "/chat/completions",
        data=body,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


MSG = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"messages": MSG, "max_tokens": 0}, "max_tokens=0"),
        ({"messages": MSG, "max_tokens": 5000}, "max_tokens=5000"),
        ({"messages": MSG, "max_tokens": -3}, "max_tokens=-3"),
        ({"messages": MSG, "max_tokens": "many"}, "max_tokens='many'"),
        ({"messages": MSG, "max_completion_tokens": 10**9}, "max_completion_tokens"),
        ({"messages": MSG, "temperature": -1}, "temperature"),
        ({"messages": MSG, "temperature": 1e9}, "temperature"),
        ({"messages": MSG, "temperature": "hot"}, "temperature"),
        ({"messages": MSG, "top_p": 0}, "top_p"),
        ({"messages": MSG, "top_p": 2}, "top_p"),
        ({"messages": MSG, "seed": 1.5}, "seed"),
        ({"messages": MSG, "logprobs": "yes"}, "logprobs"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "role"),
        ({"messages": [{"role": "user", "content": 7}]}, "content"),
        ({}, "messages"),
        ([1, 2], "JSON object"),
    ],
)
def test_server_answers_bad_fields_with_400_naming_them(body, field) -> None:
    policy = _Canned()
    with PolicyServer(policy, max_tokens_limit=512) as server:
        status, reply = _post(server.base_url, json.dumps(body).encode())
    assert status == 400 and field in reply["error"]["message"]
    assert policy.budgets == []  # nothing reached the model


def test_server_rejects_nan_and_bad_lengths_and_keeps_serving() -> None:
    import socket
    import time

    policy = _Canned()
    with PolicyServer(policy, request_timeout=1.0, max_body_bytes=1000) as server:
        url = server.base_url
        status, reply = _post(url, b'{"messages": [], "temperature": NaN}')
        assert status == 400 and "NaN" in reply["error"]["message"]
        status, _ = _post(url, b'{"messages": ' + json.dumps(MSG).encode() + b', "x": Infinity}')
        assert status == 400
        status, reply = _post(url, b"x" * 2000)
        assert status == 413
        host, port = url.split("//")[1].split("/")[0].split(":")
        for length in ("-1", "abc"):
            with socket.create_connection((host, int(port)), timeout=5) as sock:
                t0 = time.perf_counter()
                sock.sendall(
                    f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                    f"Content-Length: {length}\r\n\r\n".encode()
                )
                answer = sock.recv(1000).decode()
                assert answer.startswith("HTTP/1.0 411") or answer.startswith("HTTP/1.1 411")
                assert time.perf_counter() - t0 < 3
        # a client that promises 100 bytes and stalls: the handler gives up after the timeout
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"
            )
            t0 = time.perf_counter()
            answer = sock.recv(1000).decode()
            assert time.perf_counter() - t0 < 4 and " 408 " in answer.splitlines()[0]
        status, reply = _post(url, json.dumps({"messages": MSG, "max_tokens": 7}).encode())
        assert status == 200 and reply["choices"][0]["message"]["content"] == "look"
    assert policy.budgets == [7]


def test_server_default_budget_is_capped_and_a_slow_generation_times_out() -> None:
    fast = _Canned()
    with PolicyServer(fast, max_tokens_limit=64) as server:
        status, _ = _post(server.base_url, json.dumps({"messages": MSG}).encode())
    assert status == 200 and fast.budgets == [64]  # the default (256) within the cap
    slow = _Canned(delay=3.0)
    with PolicyServer(slow, request_timeout=0.5) as server:
        status, reply = _post(server.base_url, json.dumps({"messages": MSG}).encode())
    assert status == 504 and "longer than 0.5 s" in reply["error"]["message"]


@pytest.mark.slow
def test_cli_run_evaluates_a_model_the_policy_server_serves(tiny_policy, tmp_path) -> None:
    """``empo-gym run --agent naive --env webshop --base-url URL --model NAME`` end to end."""
    from typer.testing import CliRunner

    from empo_gym.cli import app

    calls = []
    original = tiny_policy.generate

    def counting(conversations, sampling=None):
        calls.append(len(conversations))
        return original(conversations, sampling)

    tiny_policy.generate = counting
    cfg = tmp_path / "run.yaml"
    cfg.write_text("env_kwargs: {max_steps: 3}\n")
    out = tmp_path / "lb"
    with PolicyServer(tiny_policy) as server:
        args = ["run", "--agent", "naive", "--env", "webshop", "--base-url", server.base_url]
        args += ["--model", "tiny-served", "--episodes", "2", "--config", str(cfg)]
        res = CliRunner().invoke(app, [*args, "--out", str(out)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    (row,) = out.glob("*.json")
    entry = json.loads(row.read_text())
    assert entry["agent"] == "naive" and entry["model"] == "tiny-served"
    assert entry["config"]["agent"]["base_url"] == server.base_url
    assert entry["metrics"]["episodes"] == 2
    assert all(e["steps"] >= 1 for e in entry["episodes"])
    assert sum(calls) >= 2  # every action came from the server's policy
