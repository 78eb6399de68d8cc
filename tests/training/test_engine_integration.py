"""The trainer over the real rollout engine and TransformersPolicy (tiny byte-level model)."""

from __future__ import annotations

import pytest
import torch

from empo_gym.agents.llm.rollout import RolloutRunner
from empo_gym.agents.training.algorithm import UpdateMode
from empo_gym.agents.training.empo import EMPO, EMPOConfig
from empo_gym.agents.training.trainer import group_trajectories, train
from empo_gym.agents.training.update import build_turn_batch
from tests.tiny_llama import tiny_llama


def _byte_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    specials = ["<pad>", "<eos>", "<|im_start|>", "<|im_end|>"]
    vocab = {tok: i for i, tok in enumerate(specials + alphabet)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(specials)
    template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", chat_template=template
    )


def _byte_policy():
    """A TransformersPolicy over a tiny byte-level Llama (seeded sampling, 6 new tokens)."""
    from empo_gym.agents.llm.policy import SamplingConfig
    from empo_gym.agents.llm.transformers_policy import TransformersPolicy

    tokenizer = _byte_tokenizer()
    model = tiny_llama(
        len(tokenizer), 0, max_position_embeddings=8192, eos_token_id=1, bos_token_id=2
    )
    return TransformersPolicy(
        model,
        tokenizer=tokenizer,
        sampling=SamplingConfig(temperature=1.0, max_new_tokens=6, seed=0),
    )


@pytest.fixture()
def byte_policy():
    return _byte_policy()


class _MemberBonus(EMPO):
    """EMPO² with a stand-in memory side: an intrinsic bonus that differs within each group."""

    def __init__(self, cfg: EMPOConfig) -> None:
        super().__init__(cfg)
        self.n = 0

    def after_rollouts(self, policy, trajectories, rollout_mode):
        for traj in trajectories:
            self.n += 1
            for turn in traj.turns:
                turn.intrinsic_reward = 0.5 * traj.member

    def size(self):
        return self.n

    def save(self, directory):
        (directory / "memory.json").write_text(str(self.n))

    def load(self, directory):
        self.n = int((directory / "memory.json").read_text())


def test_empo_trains_through_the_rollout_engine_with_tip_stripping(tmp_path, byte_policy):
    from empo_gym.toy import ToyTextEnv

    envs = [ToyTextEnv("echo", with_tips=True) for _ in range(4)]
    rollout = RolloutRunner(None, envs, "toy", max_turns=2)
    seen = {}

    def spy(policy, tasks, group_size, use_memory):
        trajs = rollout(policy, tasks, group_size, use_memory)
        seen["trajs"] = trajs
        return trajs

    cfg = EMPOConfig(
        iterations=2,
        tasks_per_iter=2,
        group_size=2,
        memory_prob=1.0,
        off_policy_prob=1.0,
        low_prob_threshold=-50.0,
        lr=1e-3,
        micro_batch_size=4,
        checkpoint_every=1,
        output_dir=str(tmp_path),
    )
    result = train(cfg, byte_policy, spy, [11, 12], algorithm=_MemberBonus(cfg))
    assert [r["update_mode"] for r in result.history] == ["off_policy", "off_policy"]
    for row in result.history:
        assert row["steps"] == 1 and row["grad_norm"] > 0 and row["memory_size"] > 0
        assert row["approx_kl"] != 0.0  # numerator without tips, denominator with them

    trajs = seen["trajs"]
    assert len(trajs) == 4 and all(len(t.turns) == 2 for t in trajs)
    turn = trajs[0].turns[0]
    assert turn.used_tips and len(turn.prompt_ids) > len(turn.prompt_ids_no_tips)
    start, end = turn.tip_span
    assert turn.prompt_ids[:start] + turn.prompt_ids[end:] == turn.prompt_ids_no_tips
    batch = build_turn_batch(group_trajectories(trajs), UpdateMode.OFF_POLICY, cfg)
    assert batch.prompt_ids[0] == turn.prompt_ids_no_tips
    assert (tmp_path / "checkpoints" / "iter_000002" / "model.safetensors").exists()


def test_on_policy_ratio_stays_one_across_updates(tmp_path, byte_policy):
    """Sampling log-probs must match the trainer's after every weight update (no stale caches)."""
    from empo_gym.toy import ToyTextEnv

    rollout = RolloutRunner(None, [ToyTextEnv("echo") for _ in range(4)], "toy", max_turns=2)
    cfg = EMPOConfig(
        iterations=3,
        tasks_per_iter=2,
        group_size=4,
        memory_prob=0.0,
        low_prob_threshold=-50.0,
        lr=1e-2,
        micro_batch_size=64,
        checkpoint_every=0,
        output_dir=str(tmp_path),
    )
    result = train(cfg, byte_policy, rollout, [3, 14], algorithm=_MemberBonus(cfg))
    for row in result.history:
        assert row["steps"] == 1
        assert row["ratio_mean"] == pytest.approx(1.0, abs=1e-5)
        assert row["ratio_max"] == pytest.approx(1.0, abs=1e-4)


def test_resumed_llm_run_samples_and_ends_like_an_uninterrupted_one(tmp_path):
    """The real policy seeds each generation from a call counter: the checkpoint carries it, so
    a resumed run draws the same rollouts and ends with the same weights."""
    from empo_gym.toy import ToyTextEnv

    def run(out, stop_after=None):
        policy = _byte_policy()
        envs = [ToyTextEnv("echo", with_tips=True) for _ in range(4)]
        cfg = EMPOConfig(
            iterations=3,
            tasks_per_iter=2,
            group_size=2,
            memory_prob=1.0,
            low_prob_threshold=-50.0,
            lr=1e-3,
            checkpoint_every=1,
            output_dir=str(out),
        )
        rollout = RolloutRunner(None, envs, "toy", max_turns=2)
        res = train(
            cfg, policy, rollout, [11, 12], algorithm=_MemberBonus(cfg), stop_after=stop_after
        )
        return res, policy

    ref, ref_policy = run(tmp_path / "ref")
    run(tmp_path / "run", stop_after=1)
    resumed, policy = run(tmp_path / "run")
    assert resumed.resumed_from == 1 and resumed.iterations == 3
    assert [r["return"] for r in resumed.history] == [r["return"] for r in ref.history[1:]]
    for a, b in zip(policy.model.parameters(), ref_policy.model.parameters(), strict=True):
        assert torch.equal(a, b)
