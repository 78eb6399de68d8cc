"""OpenAIPolicy over real HTTP on loopback against PolicyServer."""

from __future__ import annotations

import json
import urllib.request

import pytest

from empo_gym.agents.llm.openai_policy import OpenAIPolicy, PolicyServer
from empo_gym.agents.llm.policy import SamplingConfig
from empo_gym.agents.llm.rollout import RolloutEngine
from tests.llm.toy_env import ACTIONS, ToyTextEnv

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
        trajs = RolloutEngine(client, [ToyTextEnv(), ToyTextEnv()], "toy").run([1], group_size=2)
    assert len(trajs) == 2 and all(len(t.turns) == 3 for t in trajs)
    assert all(turn.action in ACTIONS for t in trajs for turn in t.turns)


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
