"""Checkpoints: bit-identical resume, LoRA adapters, atomicity, nothing pickled."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import numpy as np
import pytest
import torch

from empo_gym.agents.training.algorithm import UpdateMode
from empo_gym.agents.training.checkpoint import (
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)
from empo_gym.agents.training.config import GRPOConfig
from empo_gym.agents.training.empo import sample_modes
from empo_gym.agents.training.update import make_optimizer, policy_update
from empo_gym.atomic_io import temp_prefix
from tests.tiny_llama import tiny_llama
from tests.training.train_helpers import PAD, make_tiny_model, make_traj, make_turn

CFG = GRPOConfig(lr=1e-3, micro_batch_size=3, low_prob_threshold=-20.0, mini_batches=2)


def _train(model, opt, trainer_rng, steps):
    """A miniature training loop consuming every RNG a real one does."""
    for _ in range(steps):
        sample_modes(trainer_rng, 0.25, 2 / 3)
        rewards = np.random.rand(4).round(2).tolist()  # numpy RNG
        groups = [[]]
        for i, r in enumerate(rewards):
            prompt = [1] + [random.randrange(3, 100) for _ in range(3)]  # python RNG
            response = torch.randint(3, 100, (3,)).tolist()  # torch RNG
            groups[0].append(make_traj("g", i, [make_turn(model, prompt, response, reward=r)]))
        policy_update(model, opt, groups, UpdateMode.ON_POLICY, CFG, PAD)


def _params(model):
    return [p.detach().clone() for p in model.parameters()]


def _seed_all(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def test_resume_is_bit_identical_to_uninterrupted_run(tmp_path):
    # uninterrupted: 4 steps
    model = make_tiny_model(0)
    opt = make_optimizer(model, CFG)
    _seed_all(7)
    rng = random.Random(7)
    _train(model, opt, rng, 4)
    reference = _params(model)

    # interrupted: 2 steps, save, "crash", rebuild everything differently, load, 2 steps
    model = make_tiny_model(0)
    opt = make_optimizer(model, CFG)
    _seed_all(7)
    rng = random.Random(7)
    _train(model, opt, rng, 2)
    save_checkpoint(tmp_path, 2, model, opt, trainer_rng=rng, extra={"note": "x"})
    del model, opt

    model = make_tiny_model(123)  # different init: everything must come from the checkpoint
    opt = make_optimizer(model, CFG)
    _seed_all(999)
    rng = random.Random(999)
    state = load_checkpoint(tmp_path, model, opt, trainer_rng=rng)
    assert state.iteration == 2 and state.extra == {"note": "x"}
    _train(model, opt, rng, 2)
    resumed = _params(model)
    assert all(torch.equal(a, b) for a, b in zip(reference, resumed, strict=True))


def test_files_are_safetensors_and_json_only(tmp_path):
    model = make_tiny_model(0)
    opt = make_optimizer(model, CFG)
    _train(model, opt, random.Random(0), 1)
    path = save_checkpoint(tmp_path, 1, model, opt, trainer_rng=random.Random(0))
    names = sorted(p.name for p in path.iterdir())
    assert names == [
        "model.safetensors",
        "optimizer.json",
        "optimizer.safetensors",
        "rng.safetensors",
        "state.json",
    ]
    json.loads((path / "state.json").read_text())
    for p in path.iterdir():
        assert not p.read_bytes().startswith(b"\x80")  # no pickle protocol header
        assert not p.read_bytes().startswith(b"PK")  # no torch.save zip


def test_latest_pointer_keep_and_resave(tmp_path):
    model = make_tiny_model(0)
    for it in (1, 2, 3):
        save_checkpoint(tmp_path, it, model, keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["iter_000002", "iter_000003"]
    assert latest_checkpoint(tmp_path).name == "iter_000003"
    save_checkpoint(tmp_path, 3, model, keep=2)  # re-saving an iteration replaces it
    assert latest_checkpoint(tmp_path).name == "iter_000003"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_next_save_sweeps_what_a_killed_save_left(tmp_path):
    model = make_tiny_model(0)
    save_checkpoint(tmp_path, 1, model)
    # a SIGKILL leaves these (no ``finally`` runs): an unpublished save, a half-deleted prune,
    # named with the pid of the (now dead) writer
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    unpublished = tmp_path / (temp_prefix("iter_000002", dead.pid) + "abc_1234.tmp")
    unpublished.mkdir()
    (unpublished / "model.safetensors").write_bytes(b"partial")
    grave = tmp_path / (temp_prefix("iter_000000", dead.pid) + "def_5678.old")
    (grave / "iter_000000").mkdir(parents=True)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["iter_000001"]
    save_checkpoint(tmp_path, 2, model, keep=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["iter_000002", "latest"]


def test_failed_save_leaves_previous_checkpoint_and_no_temp_dirs(tmp_path):
    model = make_tiny_model(0)
    save_checkpoint(tmp_path, 1, model)

    def crash(_directory):
        raise KeyboardInterrupt  # killed mid-save

    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, 2, model, write_extra=crash)
    assert latest_checkpoint(tmp_path).name == "iter_000001"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["iter_000001", "latest"]
    fresh = make_tiny_model(5)
    assert load_checkpoint(tmp_path, fresh).iteration == 1
    assert all(
        torch.equal(a, b) for a, b in zip(model.parameters(), fresh.parameters(), strict=True)
    )


def test_write_extra_files_travel_with_the_checkpoint(tmp_path):
    model = make_tiny_model(0)
    path = save_checkpoint(
        tmp_path, 1, model, write_extra=lambda d: (d / "memory.json").write_text("[]")
    )
    assert (path / "memory.json").read_text() == "[]"


def test_tied_embeddings_round_trip(tmp_path):
    tied = dict(
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        tie_word_embeddings=True,
    )
    model = tiny_llama(64, 0, **tied)
    save_checkpoint(tmp_path, 0, model)
    other = tiny_llama(64, 1, **tied)
    load_checkpoint(tmp_path, other)
    assert torch.equal(other.lm_head.weight, model.lm_head.weight)
    assert other.lm_head.weight.data_ptr() == other.model.embed_tokens.weight.data_ptr()


def test_lora_adapter_round_trip(tmp_path):
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    )
    model = get_peft_model(make_tiny_model(0), lora)
    opt = make_optimizer(model, CFG)
    _train(model, opt, random.Random(0), 1)
    path = save_checkpoint(tmp_path, 1, model, opt)
    assert (path / "adapter.safetensors").exists() and not (path / "model.safetensors").exists()

    torch.manual_seed(3)
    other = get_peft_model(
        make_tiny_model(0),
        LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False),
    )
    load_checkpoint(tmp_path, other, make_optimizer(other, CFG))
    for (na, a), (nb, b) in zip(model.named_parameters(), other.named_parameters(), strict=True):
        assert na == nb and torch.equal(a, b), na
    with pytest.raises(ValueError, match="holds a LoRA adapter"):
        load_checkpoint(tmp_path, make_tiny_model(0))


def test_missing_checkpoint_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="no complete checkpoint"):
        load_checkpoint(tmp_path, make_tiny_model(0))
