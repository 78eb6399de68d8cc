"""The ``grpo`` / ``empo`` agents of ``empo-gym run``: configuration before any model loads."""

from __future__ import annotations

import pytest

from empo_gym.agents.training.agent import EMPOAgent, GRPOAgent


def test_run_dir_defaults_to_a_stamped_folder_under_runs(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    agent = GRPOAgent()
    agent._configure_for("webshop", None, "unused")
    assert agent.cfg.output_dir.startswith("runs/grpo-webshop-")
    assert agent.cfg.iterations == 4 and agent.cfg.max_steps == 4  # WebShop quick preset


def test_several_processes_need_a_shared_output_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="set output_dir in the --config YAML"):
        EMPOAgent()._configure_for("webshop", None, "unused")
    agent = EMPOAgent({"output_dir": str(tmp_path / "shared")})
    agent._configure_for("scienceworld", "find-plant", "unused")
    assert agent.cfg.output_dir == str(tmp_path / "shared") and agent.cfg.task == "find-plant"


def test_empo_training_envs_queue_their_episodes_for_the_memory_hooks():
    from empo_gym.memory import MemoryWrapper
    from empo_gym.memory._toy import ToyTextEnv

    envs, hooks = EMPOAgent()._memory([ToyTextEnv(), ToyTextEnv()])
    assert all(isinstance(e, MemoryWrapper) and e.recorder is hooks.recorder for e in envs)
    assert all(e.store is hooks.store and e.core.novelty is None for e in envs)
    _, info = envs[0].reset(seed=0)
    for action in ["go north", "take key", "open chest"]:
        envs[0].step(action)
    assert [ep.episode_id for ep in hooks.recorder.pending] == [info["memory_episode"]]
    assert hooks.size() == 0  # the hooks write, after the rollouts
