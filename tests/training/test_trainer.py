"""The training loop with a fake rollout function: learning, modes, metrics, resume."""

from __future__ import annotations

import json

import pytest
import torch

from empo_gym.agents.training.config import GRPOConfig
from empo_gym.agents.training.empo import EMPOConfig
from empo_gym.agents.training.trainer import group_trajectories, train
from empo_gym.run_metrics import METRICS_FILE
from tests.training.train_helpers import (
    BANDIT_VOCAB,
    BanditPolicy,
    ListMemory,
    bandit_rollout,
    make_tiny_model,
)

TASKS = [0, 1, 2, 3]
COMMON = dict(
    tasks_per_iter=4,
    group_size=8,
    lr=1e-2,
    weight_decay=0.0,
    micro_batch_size=32,
    checkpoint_every=0,
)


def _success_curve(result):
    return [row["success"] for row in result.history]


def test_grpo_learns_the_rewarded_action(tmp_path):
    cfg = GRPOConfig(iterations=30, output_dir=str(tmp_path), **COMMON)
    policy = BanditPolicy(make_tiny_model(0, BANDIT_VOCAB))
    result = train(cfg, policy, bandit_rollout, TASKS)
    curve = _success_curve(result)
    assert sum(curve[:3]) / 3 < 0.3
    assert sum(curve[-3:]) / 3 >= 0.9, curve
    lines = (tmp_path / METRICS_FILE).read_text().splitlines()
    assert [json.loads(x)["iteration"] for x in lines] == list(range(30))
    row = json.loads(lines[0])
    for key in (
        "return",
        "success",
        "entropy",
        "kl",
        "clip_frac",
        "grad_norm",
        "masked_frac",
        "rollout_mode",
        "update_mode",
        "memory_size",
        "rollout_s",
        "update_s",
        "iter_s",
    ):
        assert key in row
    assert {json.loads(x)["update_mode"] for x in lines} == {"on_policy"}


def test_empo_learns_and_draws_all_modes(tmp_path):
    cfg = EMPOConfig(iterations=30, output_dir=str(tmp_path), memory_prob=0.5, **COMMON)
    policy = BanditPolicy(make_tiny_model(0, BANDIT_VOCAB))
    memory = ListMemory(cfg)
    result = train(cfg, policy, bandit_rollout, TASKS, algorithm=memory)
    curve = _success_curve(result)
    assert sum(curve[-3:]) / 3 >= 0.9, curve
    modes = {(r["rollout_mode"], r["update_mode"]) for r in result.history}
    assert modes == {("plain", "on_policy"), ("memory", "on_policy_tips"), ("memory", "off_policy")}
    assert memory.size() == 30 * 32 and result.history[-1]["memory_size"] == 30 * 32
    assert any(r["intrinsic"] > 0 for r in result.history if r["rollout_mode"] == "memory")


def test_killed_run_resumes_to_identical_weights_metrics_and_memory(tmp_path):
    settings = dict(COMMON, iterations=5, checkpoint_every=2, memory_prob=0.5)

    def run(out, stop_after=None, memory=None):
        torch.manual_seed(123)  # the trainer must reseed: this must not matter
        policy = BanditPolicy(make_tiny_model(0, BANDIT_VOCAB))
        cfg = EMPOConfig(output_dir=str(out), **settings)
        memory = memory if memory is not None else ListMemory(cfg)
        res = train(cfg, policy, bandit_rollout, TASKS, algorithm=memory, stop_after=stop_after)
        return policy, memory, res

    ref_policy, ref_memory, ref = run(tmp_path / "a")
    # "killed" after 3 iterations: checkpoint at 2, iteration index 2 logged but not saved
    _, _, partial = run(tmp_path / "b", stop_after=3)
    assert partial.iterations == 3
    policy, memory, resumed = run(tmp_path / "b")  # fresh process state, resumes at 2
    assert resumed.resumed_from == 2 and resumed.iterations == 5
    for a, b in zip(ref_policy.model.parameters(), policy.model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert memory.entries == ref_memory.entries

    def rows(out):
        return [json.loads(x) for x in (out / METRICS_FILE).read_text().splitlines()]

    keys = ("iteration", "update_mode", "success", "loss", "memory_size")
    assert [[r[k] for k in keys] for r in rows(tmp_path / "b")] == [
        [r[k] for k in keys] for r in rows(tmp_path / "a")
    ]


def test_group_trajectories_and_empty_tasks(tmp_path):
    assert group_trajectories([]) == []
    with pytest.raises(ValueError, match="tasks is empty"):
        train(GRPOConfig(output_dir=str(tmp_path)), None, bandit_rollout, [])


def test_the_fakes_satisfy_the_trainer_protocol():
    from empo_gym.agents.llm.policy import Policy, TrainablePolicy
    from tests.training.kill_train import TipPolicy

    bandit = BanditPolicy(make_tiny_model(0, BANDIT_VOCAB))
    assert isinstance(bandit, TrainablePolicy) and not isinstance(bandit, Policy)
    tips = TipPolicy(make_tiny_model(0, BANDIT_VOCAB))  # also writes tips: a Policy too
    assert isinstance(tips, TrainablePolicy) and isinstance(tips, Policy)


def test_a_policy_without_the_trainer_hooks_is_rejected(tmp_path):
    class ModelOnly:  # what the trainer duck-typed before: a model and a pad id
        def __init__(self) -> None:
            self.model = make_tiny_model(0, BANDIT_VOCAB)
            self.pad_id = 0

    cfg = GRPOConfig(iterations=1, output_dir=str(tmp_path), **COMMON)
    with pytest.raises(TypeError) as err:
        train(cfg, ModelOnly(), bandit_rollout, TASKS)
    assert str(err.value) == (
        "the trainer needs a TrainablePolicy; got ModelOnly, which lacks sampling_state, "
        "load_sampling_state, clear_prefix_cache (define them, or use TransformersPolicy)"
    )
    assert not (tmp_path / METRICS_FILE).exists()  # rejected before anything is written


def test_learning_curves_png(tmp_path):
    from empo_gym.agents.training.curves import plot_curves
    from empo_gym.run_metrics import read_metrics

    for agent, cls in (("grpo", GRPOConfig), ("empo", EMPOConfig)):
        cfg = cls(iterations=3, output_dir=str(tmp_path / agent), **COMMON)
        algorithm = ListMemory(cfg) if agent == "empo" else None  # the bandit writes no tips
        policy = BanditPolicy(make_tiny_model(0, BANDIT_VOCAB))
        train(cfg, policy, bandit_rollout, TASKS, algorithm=algorithm)
    out = plot_curves(
        {"EMPO²": tmp_path / "empo", "GRPO": tmp_path / "grpo"},
        tmp_path / "plots" / "curve.png",
        smooth=2,
    )
    assert out.read_bytes().startswith(b"\x89PNG")
    assert len(read_metrics(tmp_path / "grpo")) == 3
    (tmp_path / "bad.jsonl").write_text('{"iteration": 0}\nnot json\n')
    with pytest.raises(ValueError, match="bad.jsonl:2"):
        read_metrics(tmp_path / "bad.jsonl")
    # a kill inside the trainer's append leaves an unterminated last line: the trainer resumes
    # past it (tests/training/test_kill_resume.py) and the plot reads the same rows
    with (tmp_path / "grpo" / METRICS_FILE).open("a") as fh:
        fh.write('{"iteration": 3, "succ')
    assert len(read_metrics(tmp_path / "grpo")) == 3
    assert plot_curves({"GRPO": tmp_path / "grpo"}, tmp_path / "torn.png").exists()


@pytest.mark.parametrize(
    "damage",
    [
        lambda ckpt: (ckpt / "model.safetensors").write_bytes(b"\0" * 10),  # truncated
        lambda ckpt: (ckpt / "state.json").write_text("{not json"),
        lambda ckpt: (ckpt / "optimizer.json").write_text('{"param_groups": 3}'),
    ],
    ids=["weights", "state.json", "optimizer.json"],
)
def test_resume_falls_back_to_the_newest_intact_checkpoint(tmp_path, capsys, damage):
    """The latest checkpoint is corrupt: resume says so and continues from the one before,
    reaching the same weights as an uninterrupted run."""
    settings = dict(COMMON, iterations=4, checkpoint_every=1)

    def run(out, stop_after=None):
        policy = BanditPolicy(make_tiny_model(0, BANDIT_VOCAB))
        cfg = GRPOConfig(output_dir=str(out), **settings)
        return policy, train(cfg, policy, bandit_rollout, TASKS, stop_after=stop_after)

    ref_policy, _ = run(tmp_path / "a")
    run(tmp_path / "b", stop_after=3)  # checkpoints iter_000001..3
    damage(tmp_path / "b" / "checkpoints" / "iter_000003")
    capsys.readouterr()
    policy, resumed = run(tmp_path / "b")
    assert resumed.resumed_from == 2 and resumed.iterations == 4
    out = capsys.readouterr().out
    assert "skipping checkpoint" in out and "iter_000003" in out and "corrupt" in out
    for a, b in zip(ref_policy.model.parameters(), policy.model.parameters(), strict=True):
        assert torch.equal(a, b)
    rows = (tmp_path / "b" / METRICS_FILE).read_text().splitlines()
    assert [json.loads(r)["iteration"] for r in rows] == [0, 1, 2, 3]


def test_resume_with_every_checkpoint_corrupt_names_each(tmp_path):
    settings = dict(COMMON, iterations=3, checkpoint_every=1)
    cfg = GRPOConfig(output_dir=str(tmp_path), **settings)
    train(cfg, BanditPolicy(make_tiny_model(0, BANDIT_VOCAB)), bandit_rollout, TASKS, stop_after=2)
    for ckpt in (tmp_path / "checkpoints").glob("iter_*"):
        (ckpt / "model.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match="no intact checkpoint") as err:
        train(cfg, BanditPolicy(make_tiny_model(0, BANDIT_VOCAB)), bandit_rollout, TASKS)
    assert "iter_000001" in str(err.value) and "iter_000002" in str(err.value)
    assert "\n" not in str(err.value)
