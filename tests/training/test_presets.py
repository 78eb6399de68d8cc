"""Training presets: the paper's recipe per env, the CPU quick settings, presets of a user env."""

from __future__ import annotations

import pytest

from empo_gym.agents.training import presets
from empo_gym.agents.training.presets import PAPER_TRAIN, preset_base, register_presets


def test_paper_presets_per_env() -> None:
    # moved from tests/test_registry.py (the presets were fields of the env profile)
    assert "ood" not in PAPER_TRAIN
    ws, sw = PAPER_TRAIN["webshop"], PAPER_TRAIN["scienceworld"]
    assert ws["kl_coef"] == 0.01 and sw["kl_coef"] == 0.0


def test_quick_preset_layers_env_and_empo_settings() -> None:
    grpo, empo = preset_base("quick", "grpo", "webshop"), preset_base("quick", "empo", "webshop")
    assert grpo["iterations"] == 8 and grpo["group_size"] == 4 and "tip_max_tokens" not in grpo
    assert empo == {**grpo, "tip_max_tokens": 32}
    assert preset_base("quick", "grpo", "my-env")["iterations"] == 6  # no adjustments
    assert preset_base("default", "empo", "webshop") == {}
    with pytest.raises(ValueError, match=r"preset='fast'; expected one of \['default'"):
        preset_base("fast", "grpo", "webshop")


def test_a_user_env_gets_its_own_presets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(presets, "PAPER_TRAIN", dict(presets.PAPER_TRAIN))
    monkeypatch.setattr(presets, "QUICK_TRAIN", dict(presets.QUICK_TRAIN))
    with pytest.raises(ValueError, match="env='my-env' has no paper preset"):
        preset_base("paper", "grpo", "my-env")
    register_presets("my-env", paper={"kl_coef": 0.02}, quick={"iterations": 2})
    assert preset_base("paper", "grpo", "my-env") == {"max_response_tokens": 32, "kl_coef": 0.02}
    assert preset_base("quick", "grpo", "my-env")["iterations"] == 2
    with pytest.raises(ValueError, match="env 'my-env' already has a quick preset"):
        register_presets("my-env", quick={"iterations": 3})
    register_presets("my-env", quick={"iterations": 3}, overwrite=True)
    assert preset_base("quick", "grpo", "my-env")["iterations"] == 3
