"""The vLLM rollout backend against a real vLLM server (CPU build, ``.venv-vllm``; slow).

One server on loopback with SmolLM2-135M: rollouts through the backend equal the local
backend's at greedy decoding, and after an optimizer step and a disk weight sync the server's
log-probabilities follow the new weights. About 1.5-3 minutes on 2 cores, mostly vLLM's start-up.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch

from empo_gym.agents.llm.models import DEFAULT_MODEL
from empo_gym.agents.llm.policy import SamplingConfig
from empo_gym.agents.llm.rollout import RolloutRunner
from empo_gym.agents.llm.vllm_policy import VLLMPolicy
from empo_gym.agents.llm.vllm_server import DEFAULT_VLLM_VENV, start_servers
from empo_gym.agents.llm.vllm_sync import PROBE_TEXT
from empo_gym.agents.llm.vllm_weights import write_hf_weights
from empo_gym.toy import ToyTextEnv

ROOT = Path(__file__).resolve().parents[2]
VLLM_PYTHON = ROOT / DEFAULT_VLLM_VENV / "bin" / "python"
GREEDY = SamplingConfig(temperature=0.0, max_new_tokens=8)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not VLLM_PYTHON.is_file(),
        reason=f"{VLLM_PYTHON} is absent: `make vllm` builds vLLM's CPU venv (make test does)",
    ),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_rollouts_and_weight_sync_on_a_real_vllm_server(tmp_path):
    from empo_gym.agents.llm.transformers_policy import TransformersPolicy

    local = TransformersPolicy(DEFAULT_MODEL, sampling=GREEDY, dtype="float32")
    url = f"http://127.0.0.1:{_free_port()}"
    initial = write_hf_weights(local.model, tmp_path / "w" / "v0", tokenizer=local.tokenizer)
    servers = start_servers(
        initial,
        [url],
        log_dir=tmp_path,
        python=str(VLLM_PYTHON),
        max_model_len=2048,
        startup_timeout=300,
    )
    policy = VLLMPolicy(local, [url], weights_dir=tmp_path / "w", servers=servers)
    try:
        assert policy.check_weights(local.model) < 1e-3  # the server serves the same model

        def run(p):
            envs = [ToyTextEnv("echo") for _ in range(4)]
            return RolloutRunner(p, envs, "toy", max_turns=2, sampling=GREEDY).run([3, 4], 2)

        expected, got = run(local), run(policy)
        for a, b in zip(expected, got, strict=True):
            for ta, tb in zip(a.turns, b.turns, strict=True):
                assert tb.prompt_ids == ta.prompt_ids
                assert tb.response_ids == ta.response_ids
                assert tb.logprobs == pytest.approx(ta.logprobs, abs=1e-3)

        # one optimizer step that makes the probe's greedy answer likelier
        prompt = local.tokenizer(PROBE_TEXT, add_special_tokens=False)["input_ids"]
        response = got[0].turns[0].response_ids
        before = local.logprobs([prompt], [response], temperature=1.0)[0]
        optimizer = torch.optim.SGD(local.model.parameters(), lr=0.05)
        local.model.train()
        from empo_gym.agents.llm.logprobs import token_logprobs

        logp, mask = token_logprobs(local.model, [prompt], [response], local.pad_id)
        (-(logp * mask).sum()).backward()
        optimizer.step()
        local.model.eval()
        after = local.logprobs([prompt], [response], temperature=1.0)[0]
        assert max(abs(a - b) for a, b in zip(after, before, strict=True)) > 0.05

        seconds = policy.sync_weights(local.model)  # raises StaleWeightsError if not reloaded
        served = policy.generate_ids([prompt], GREEDY)[0]
        mine = local.logprobs([prompt], [served.response_ids], temperature=1.0)[0]
        assert served.logprobs == pytest.approx(mine, abs=1e-3)
        assert 0 < seconds < 60
    finally:
        policy.close()
