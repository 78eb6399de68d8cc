"""The vLLM rollout backend against a stand-in server (vLLM's wire format, a real tiny model)."""

from __future__ import annotations

import pytest
import torch

from empo_gym.agents.llm.policy import SamplingConfig, ServedPolicy, TokenPolicy, TrainablePolicy
from empo_gym.agents.llm.rollout import RolloutRunner
from empo_gym.agents.llm.vllm_policy import VLLMPolicy
from empo_gym.agents.llm.vllm_server import normalize_url
from empo_gym.agents.llm.vllm_sync import StaleWeightsError
from empo_gym.toy import ToyTextEnv
from tests.llm.vllm_standin import StandInVLLM
from tests.training.test_engine_integration import _byte_policy

GREEDY = SamplingConfig(temperature=0.0, max_new_tokens=6)


@pytest.fixture()
def local():
    torch.manual_seed(0)
    return _byte_policy()


def _vllm(local, servers, tmp_path, **kwargs) -> VLLMPolicy:
    return VLLMPolicy(local, [s.url for s in servers], weights_dir=tmp_path / "w", **kwargs)


def _perturb(model: torch.nn.Module, scale: float = 0.5) -> None:
    """A big weight change (a stale server is then far from the trainer)."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen))


def test_satisfies_the_policy_protocols(local, tmp_path):
    with StandInVLLM(local) as server:
        policy = _vllm(local, [server], tmp_path)
        for protocol in (TokenPolicy, TrainablePolicy, ServedPolicy):
            assert isinstance(policy, protocol)
        assert policy.model is local.model and policy.pad_id == local.pad_id


def test_greedy_trajectories_equal_the_local_backend(local, tmp_path):
    def run(policy):
        engine = RolloutRunner(
            policy, [ToyTextEnv("echo") for _ in range(3)], "toy", max_turns=3, sampling=GREEDY
        )
        return engine.run([5, 9], group_size=2)

    expected = run(local)
    with StandInVLLM(local) as server:
        got = run(_vllm(local, [server], tmp_path))
        requests = server.completions()
    assert len(got) == len(expected) == 4
    for a, b in zip(expected, got, strict=True):
        assert [t.action for t in a.turns] == [t.action for t in b.turns]
        for ta, tb in zip(a.turns, b.turns, strict=True):
            assert ta.prompt_ids == tb.prompt_ids and ta.response_ids == tb.response_ids
            assert tb.raw_output == ta.raw_output
            assert tb.logprobs == pytest.approx(ta.logprobs, abs=1e-4)
    # token-id prompts and the token-id reply format were asked for
    assert requests and all(isinstance(r["prompt"][0], int) for r in requests)
    assert all(r["return_tokens_as_token_ids"] and r["logprobs"] == 0 for r in requests)


def test_stop_tokens_and_seeds_go_with_each_request(local, tmp_path):
    with StandInVLLM(local) as server:
        policy = _vllm(local, [server], tmp_path)
        sampling = SamplingConfig(temperature=1.0, max_new_tokens=5, seed=7, stop_token_ids={3})
        prompt = local.encode_prompt([{"role": "user", "content": "hi"}]).ids
        gens = policy.generate_ids([prompt, prompt], sampling)
        bodies = server.completions()
    assert [b["stop_token_ids"] for b in bodies] == [[3], [3]]
    assert len({b["seed"] for b in bodies}) == 2  # one seed per request
    for g in gens:
        assert len(g.response_ids) == len(g.logprobs) <= 5
        assert g.finish_reason == ("length" if len(g.response_ids) == 5 else "stop")


def test_trajectories_stick_to_one_of_two_servers(local, tmp_path):
    with StandInVLLM(local) as a, StandInVLLM(local) as b:
        policy = _vllm(local, [a, b], tmp_path)
        engine = RolloutRunner(policy, [ToyTextEnv("echo") for _ in range(4)], "toy", max_turns=3)
        trajs = engine.run([1, 2], group_size=2)
        counts = [len(a.completions()), len(b.completions())]
    routes = policy._routes
    assert set(routes) == {f"{t.group_id}/{t.member}" for t in trajs}
    assert sorted(routes.values()) == [0, 0, 1, 1]  # balanced over both servers
    # each server answered exactly the turns of the trajectories routed to it
    per_server = [0, 0]
    for t in trajs:
        per_server[routes[f"{t.group_id}/{t.member}"]] += len(t.turns)
    assert counts == per_server


def test_sync_reloads_the_weights_and_probe_follows_them(local, tmp_path):
    with StandInVLLM(local) as server:
        policy = _vllm(local, [server], tmp_path)
        _perturb(local.model)
        seconds = policy.sync_weights(local.model)
        paths = [p for p, _ in server.log]
        prompt = local.encode_prompt([{"role": "user", "content": "go"}]).ids
        gen = policy.generate_ids([prompt], GREEDY)[0]
    assert seconds > 0 and (tmp_path / "w" / "v1" / "config.json").is_file()
    assert paths[:2] == ["/collective_rpc", "/reset_prefix_cache"]
    # the server now samples from the trainer's new weights
    assert gen.response_ids == local.generate_ids([prompt], GREEDY)[0].response_ids
    assert gen.logprobs == pytest.approx(
        local.logprobs([prompt], [gen.response_ids], temperature=1.0)[0], abs=1e-4
    )


def test_stale_weights_are_detected(local, tmp_path):
    with StandInVLLM(local, ignore_reload=True) as server:
        policy = _vllm(local, [server], tmp_path)
        assert policy.check_weights(local.model) < 1e-4  # same weights: passes
        _perturb(local.model)
        with pytest.raises(StaleWeightsError, match=r"serves stale weights after sync 1"):
            policy.sync_weights(local.model)


def test_a_server_that_is_down_is_one_clear_line(local, tmp_path):
    policy = VLLMPolicy(local, ["http://127.0.0.1:9"], weights_dir=tmp_path, retries=0)
    with pytest.raises(RuntimeError) as info:
        policy.generate_ids([[5, 6, 7]], GREEDY)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("cannot reach http://127.0.0.1:9/v1/completions")
    assert "vLLM server" in message


def test_colocated_servers_sleep_for_the_update_and_wake_for_the_sync(local, tmp_path):
    with StandInVLLM(local) as server:
        policy = _vllm(local, [server], tmp_path, sleep_mode=True)
        policy.pause()
        assert server.asleep
        policy.sync_weights(local.model)
        assert not server.asleep
        paths = [p.split("?")[0] for p, _ in server.log]
    assert paths[:4] == ["/sleep", "/wake_up", "/collective_rpc", "/reset_prefix_cache"]


def test_lora_weights_are_written_merged(tmp_path):
    from safetensors.torch import load_file

    from empo_gym.agents.llm.transformers_policy import LoraSettings
    from empo_gym.agents.llm.vllm_weights import write_hf_weights

    policy = _byte_policy()
    policy._apply_lora(LoraSettings(r=2))
    with torch.no_grad():
        for name, p in policy.model.named_parameters():
            if "lora_B" in name:
                p.fill_(0.1)
    write_hf_weights(policy.model, tmp_path / "m")
    state = load_file(tmp_path / "m" / "model.safetensors")
    assert not any("lora" in k for k in state)
    base = policy.model.get_base_model()
    q = base.model.layers[0].self_attn.q_proj
    merged = (
        q.base_layer.weight
        + q.scaling["default"] * q.lora_B["default"].weight @ q.lora_A["default"].weight
    )
    assert torch.allclose(state["model.layers.0.self_attn.q_proj.weight"], merged, atol=1e-6)


def test_urls_are_normalised_and_checked():
    assert normalize_url("http://h:1/v1/") == "http://h:1"
    with pytest.raises(ValueError, match="expected an http"):
        normalize_url("h:1")


def test_tied_embeddings_are_written_untied_with_the_same_outputs(tmp_path):
    """vLLM's in-place reload does not re-tie an output layer: the checkpoint stores it."""
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from empo_gym.agents.llm.vllm_weights import write_hf_weights
    from tests.tiny_llama import tiny_llama

    model = tiny_llama(40, tie_word_embeddings=True)
    write_hf_weights(model, tmp_path / "m")
    state = load_file(tmp_path / "m" / "model.safetensors")
    assert torch.equal(state["lm_head.weight"], state["model.embed_tokens.weight"])
    again = AutoModelForCausalLM.from_pretrained(tmp_path / "m")
    assert again.config.tie_word_embeddings is False
    ids = torch.tensor([[3, 4, 5]])
    assert torch.allclose(again(ids).logits, model(ids).logits, atol=1e-6)
