"""Learning check: GRPO and EMPO² lift success on a text task to >= 0.9 within a fixed budget.

Everything is real except the model's size: Gymnasium text env, the memory wrapper and store
(EMPO²), the rollout engine, prompt building, action parsing, the policy's sampling and
log-probs, the trainer. The model is a tiny randomly initialised Llama over a word-level
vocabulary, so one iteration takes well under a second on a CPU.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import pytest

from empo_gym.agents.llm.rollout import ResetSpec
from empo_gym.agents.training.config import GRPOConfig
from empo_gym.agents.training.empo import EMPOConfig
from empo_gym.agents.training.setup import build_training
from empo_gym.agents.training.trainer import train
from empo_gym.spaces import UnicodeText
from tests.tiny_llama import tiny_llama

pytestmark = pytest.mark.slow

ACTIONS = ["open door", "read map", "take lamp", "wait here"]
REWARDED = "take lamp"


class PickEnv(gym.Env):
    """One step: say one of four admissible actions; only ``take lamp`` scores."""

    def __init__(self) -> None:
        self.observation_space = UnicodeText(1000)
        self.action_space = UnicodeText(200)

    def _info(self, score: float) -> dict[str, Any]:
        return {
            "admissible_actions": list(ACTIONS),
            "task": "pick",
            "instruction": "pick",
            "score": score,
            "success": score > 0,
            "success_rule": "took the lamp",
        }

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return f"room {seed}", self._info(0.0)

    def step(self, action):
        r = 1.0 if action == REWARDED else 0.0
        return "done", r, True, False, self._info(100.0 * r)


def _word_policy(seed: int = 0):
    from empo_gym.agents.llm.policy import SamplingConfig
    from empo_gym.agents.llm.transformers_policy import TransformersPolicy
    from empo_gym.bench.reader import word_level_tokenizer

    words = ["user", "assistant", *sorted({w for a in ACTIONS for w in a.split()})]
    tokenizer = word_level_tokenizer(words)
    model = tiny_llama(
        len(tokenizer), seed, max_position_embeddings=4096, eos_token_id=1, bos_token_id=2
    )
    return TransformersPolicy(
        model,
        tokenizer=tokenizer,
        sampling=SamplingConfig(temperature=1.0, max_new_tokens=2, seed=0),
    )


COMMON = dict(
    iterations=25,
    tasks_per_iter=4,
    group_size=8,
    lr=1e-2,
    weight_decay=0.0,
    micro_batch_size=32,
    checkpoint_every=0,
    max_steps=1,
    max_response_tokens=2,
    seed=0,
    env="toy",
)


def _run(algo: str, tmp_path) -> list[float]:
    policy = _word_policy()
    if algo == "empo":
        cfg = EMPOConfig(
            output_dir=str(tmp_path / algo), memory_prob=0.5, tip_max_tokens=2, **COMMON
        )
    else:
        cfg = GRPOConfig(output_dir=str(tmp_path / algo), **COMMON)
    setup = build_training(
        cfg, envs=[PickEnv() for _ in range(32)], tasks=[ResetSpec(seed=s) for s in range(4)]
    )
    result = train(
        cfg, policy, setup.rollout_fn, setup.tasks, algorithm=setup.algorithm, resume=False
    )
    return [row["success"] for row in result.history]


@pytest.mark.parametrize("algo", ["grpo", "empo"])
def test_success_rises_to_090(algo: str, tmp_path) -> None:
    curve = _run(algo, tmp_path)
    print(algo, [round(x, 2) for x in curve])  # the curve, for the record (-s)
    assert sum(curve[:2]) / 2 < 0.6, curve
    assert max(sum(curve[i : i + 3]) / 3 for i in range(len(curve) - 2)) >= 0.9, curve
