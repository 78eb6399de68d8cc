"""The one training set-up: what GRPO and EMPO² runs are wired with."""

from __future__ import annotations

from empo_gym.agents.training.algorithm import GRPO
from empo_gym.agents.training.config import quick_preset
from empo_gym.agents.training.empo import EMPO
from empo_gym.agents.training.setup import build_training, reference_model, training_tasks
from empo_gym.memory import MemoryWrapper
from empo_gym.toy import ToyTextEnv


def test_empo_training_envs_queue_their_episodes_for_the_algorithm():
    setup = build_training(quick_preset("empo", "toy"), envs=[ToyTextEnv(), ToyTextEnv()])
    envs, hooks = setup.envs, setup.algorithm
    assert isinstance(hooks, EMPO)
    assert all(isinstance(e, MemoryWrapper) and e.recorder is hooks.recorder for e in envs)
    assert all(e.store is hooks.store and e.core.novelty is None for e in envs)
    _, info = envs[0].reset(seed=0)
    for action in ["go north", "take key", "open chest"]:
        envs[0].step(action)
    assert [ep.episode_id for ep in hooks.recorder.pending] == [info["memory_episode"]]
    assert hooks.size() == 0  # the hooks write, after the rollouts


def test_grpo_trains_on_plain_envs_with_the_same_tasks():
    cfg = quick_preset("grpo", "toy", seed=3)
    envs = [ToyTextEnv(), ToyTextEnv()]
    setup = build_training(cfg, envs=envs)
    assert isinstance(setup.algorithm, GRPO) and setup.envs == envs  # no memory side
    assert [t.seed for t in setup.tasks] == [3, 4, 5, 6, 7] == [t.seed for t in training_tasks(cfg)]
    assert reference_model(cfg, policy=None) is None  # no KL term in the quick preset


def test_novelty_threshold_and_embedder_reach_the_memory() -> None:
    """EMPOConfig's novelty settings are the ones the run's novelty reward uses."""
    from empo_gym.agents.training.config import quick_preset
    from empo_gym.agents.training.setup import build_training
    from empo_gym.toy import ToyTextEnv

    default = build_training(
        quick_preset("empo", "toy", tasks_per_iter=1, group_size=2),
        envs=[ToyTextEnv(), ToyTextEnv()],
    )
    assert default.algorithm.novelty.threshold == 0.9  # the hashing embedder's calibrated value
    set_ = build_training(
        quick_preset("empo", "toy", tasks_per_iter=1, group_size=2, novelty_threshold=0.99),
        envs=[ToyTextEnv(), ToyTextEnv()],
    )
    assert set_.algorithm.novelty.threshold == 0.99
    assert set_.algorithm.store.embedder.name.startswith("hashing")
    off = build_training(
        quick_preset("empo", "toy", tasks_per_iter=1, group_size=2, intrinsic_reward=False),
        envs=[ToyTextEnv(), ToyTextEnv()],
    )
    assert off.algorithm.novelty is None
    for setup in (default, set_, off):
        setup.close()
