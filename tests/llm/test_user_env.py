"""Plain GRPO on a user's Gymnasium text env whose info has no ``task`` (nor admissible actions).

The memory partition of such a rollout falls back to its group id (the one rule,
:func:`empo_gym.memory.memory_partition`); nothing in the rollout or the GRPO step needs
the keys the empo_gym envs add.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from empo_gym.agents.llm.rollout import ResetSpec, RolloutRunner
from empo_gym.agents.training.config import quick_preset
from empo_gym.agents.training.setup import build_training
from empo_gym.agents.training.trainer import train


class UserTextEnv(gym.Env[str, str]):
    """A user's env: string observations, empty infos (no ``task``, no admissible actions)."""

    observation_space = gym.spaces.Text(200)
    action_space = gym.spaces.Text(50)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        self.t = 0
        return "You see a red button. Answer with an action.", {}

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        self.t += 1
        reward = 1.0 if "press" in str(action).lower() else 0.0
        return f"Step {self.t}: nothing else happens.", reward, self.t >= 2, False, {}


def test_rollouts_of_an_env_without_task_take_the_group_id_as_partition(tiny_policy):
    runner = RolloutRunner(tiny_policy, [UserTextEnv() for _ in range(2)], "toy", max_turns=3)
    trajs = runner.run([ResetSpec(seed=1), ResetSpec(seed=2, group_id="mine")], group_size=2)
    assert [t.info["memory_partition"] for t in trajs] == ["g0", "g0", "mine", "mine"]
    assert all(t.info["task"] is None and len(t.turns) == 2 for t in trajs)


def test_a_grpo_step_on_an_env_without_task(tiny_policy, tmp_path):
    cfg = quick_preset(
        "grpo",
        "toy",
        tasks_per_iter=1,
        group_size=2,
        iterations=1,
        max_steps=2,
        checkpoint_every=0,
        output_dir=str(tmp_path),
    )
    setup = build_training(cfg, envs=[UserTextEnv() for _ in range(2)])
    try:
        res = train(cfg, tiny_policy, setup.rollout_fn, setup.tasks[:1])
    finally:
        setup.close()
    assert res.iterations == 1 and len(res.history) == 1
