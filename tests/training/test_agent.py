"""The ``grpo`` / ``empo`` agents of ``empo-gym run``: configuration before any model loads."""

from __future__ import annotations

import pytest

from empo_gym.agents.training.agent import EMPOAgent, GRPOAgent


def test_run_dir_defaults_to_a_stamped_folder_under_runs(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    agent = GRPOAgent()
    agent._configure_for("webshop", None)
    assert agent.cfg.output_dir.startswith("runs/grpo-webshop-")
    assert agent.cfg.iterations == 8 and agent.cfg.max_steps == 4  # WebShop quick preset
    assert agent.cfg.prompt_style == "webshop-menu" and agent.cfg.action_format == "index"
    other = GRPOAgent()
    other._configure_for("webshop", None)  # started in the same second: its own dir
    assert other.cfg.output_dir != agent.cfg.output_dir


def test_several_processes_need_a_shared_output_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="set output_dir in the --config YAML"):
        EMPOAgent()._configure_for("webshop", None)
    agent = EMPOAgent({"output_dir": str(tmp_path / "shared")})
    agent._configure_for("scienceworld", "find-plant")
    assert agent.cfg.output_dir == str(tmp_path / "shared") and agent.cfg.task == "find-plant"
