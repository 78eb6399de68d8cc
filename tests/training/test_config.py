"""Config defaults, presets, YAML loading and validation errors."""

from __future__ import annotations

import dataclasses

import pytest

from empo_gym.agents.training.config import (
    GRPOConfig,
    config_from_dict,
    load_config,
    paper_preset,
    quick_preset,
)
from empo_gym.agents.training.empo import EMPOConfig


def test_defaults_are_the_papers():
    cfg = EMPOConfig()
    assert (cfg.clip_low, cfg.clip_high, cfg.dual_clip) == (0.2, 0.3, 10.0)
    assert cfg.low_prob_threshold == -5.0 and cfg.low_prob_masking
    assert cfg.memory_prob == 0.25 and cfg.off_policy_prob == pytest.approx(2 / 3)
    assert (cfg.group_size, cfg.tasks_per_iter, cfg.lr) == (8, 16, 1e-6)
    assert (cfg.temperature, cfg.eval_temperature) == (1.0, 0.4)
    assert (cfg.memory_top_k, cfg.memory_min_similarity, cfg.memory_capacity) == (10, 0.5, 1000)
    assert paper_preset("grpo", "webshop").kl_coef == 0.01
    assert paper_preset("empo", "scienceworld").kl_coef == 0.0
    assert quick_preset("grpo", "webshop").kl_coef == 0.0  # CPU preset: no KL (see config)


def test_every_field_has_a_docstring():
    import ast
    import inspect

    import empo_gym.agents.training.config as mod

    tree = ast.parse(inspect.getsource(mod))
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        body = cls.body
        for i, node in enumerate(body):
            if isinstance(node, ast.AnnAssign):
                nxt = body[i + 1] if i + 1 < len(body) else None
                assert isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant), (
                    f"{cls.name}.{node.target.id} has no docstring"
                )


def test_yaml_round_trip_and_loose_numbers(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "agent: empo\npreset: quick\nlr: 1e-5\ngroup_size: 3\nadam_betas: [0.9, 0.95]\n"
    )
    cfg = load_config(path)
    assert isinstance(cfg, EMPOConfig)
    assert cfg.lr == 1e-5 and isinstance(cfg.lr, float)  # YAML 1.1 reads "1e-5" as a string
    assert cfg.group_size == 3 and cfg.adam_betas == (0.9, 0.95)
    assert cfg.iterations == quick_preset("empo").iterations
    assert isinstance(load_config(path, agent="grpo"), GRPOConfig)
    # to_dict -> config_from_dict is lossless
    again = config_from_dict(cfg.to_dict())
    assert dataclasses.asdict(again) == dataclasses.asdict(cfg)


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("lr: -0.001\n", "lr=-0.001"),
        ("lr: 0\n", "lr=0.0"),
        ("group_size: 1\n", "group_size=1"),
        ("agent: empo\nmemory_prob: 1.5\n", "memory_prob=1.5"),
        ("agent: empo\noff_policy_prob: -0.2\n", "off_policy_prob=-0.2"),
        ("learning_rate: 0.1\n", "unknown config key.*learning_rate"),
        ("memory_prob: 0.3\n", "unknown config key.*memory_prob.*'grpo'"),
        ("group_size: four\n", "group_size='four'; expected an integer"),
        ("lora: 1\n", "lora=1; expected true or false"),
        ("agent: ppo\n", "agent='ppo'"),
        ("preset: fast\n", "preset='fast'"),
        ("- 1\n- 2\n", "mapping"),
        ("clip_low: 1.0\n", "clip_low=1.0"),
        ("dual_clip: 0.5\n", "dual_clip=0.5"),
        ("prompt_style: menu\n", "prompt_style='menu' is invalid; expected None or one of"),
        ("action_format: json\n", "action_format='json' is invalid; expected None or one of"),
        ("agent: empo\nnovelty_threshold: 1.5\n", "novelty_threshold=1.5 is invalid"),
        ("agent: empo\nmemory_embedder: bert\n", "memory_embedder='bert' is invalid"),
        ("prompt_history: -1\n", "prompt_history=-1"),
    ],
)
def test_bad_config_rejected_with_named_field(tmp_path, yaml_text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ValueError, match=message):
        load_config(path)


def test_bad_config_fails_before_any_model_loads(tmp_path, monkeypatch):
    """load_config is pure: it never touches transformers."""
    import sys

    path = tmp_path / "bad.yaml"
    path.write_text("lr: -1\n")
    monkeypatch.setitem(sys.modules, "transformers", None)  # importing it would raise
    with pytest.raises(ValueError, match="lr=-1.0"):
        load_config(path)


def test_dataclass_validates_on_construction():
    with pytest.raises(ValueError, match="group_size=1"):
        GRPOConfig(group_size=1)
    with pytest.raises(ValueError, match="temperature=0.0"):
        GRPOConfig(temperature=0)


def test_webshop_quick_preset_answers_from_a_menu_and_the_paper_preset_reasons():
    quick = config_from_dict({"preset": "quick", "env": "webshop"}, agent="empo")
    assert (quick.prompt_style, quick.action_format) == ("webshop-menu", "index")
    paper = config_from_dict({"preset": "paper", "env": "webshop"}, agent="empo")
    assert (paper.prompt_style, paper.action_format) == (None, None)  # the profile's: tagged
    sw = config_from_dict({"preset": "quick", "env": "scienceworld"}, agent="grpo")
    assert (sw.prompt_style, sw.action_format) == (None, None)
