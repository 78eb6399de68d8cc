"""GRPO and EMPO² training: pure losses, update modes, configs, the update step, checkpoints,
the training loop and learning curves (the train benchmark is :mod:`empo_gym.bench.train`).

Modules: :mod:`~empo_gym.agents.training.losses`, :mod:`~empo_gym.agents.training.modes`,
:mod:`~empo_gym.agents.training.config`, :mod:`~empo_gym.agents.training.update`,
:mod:`~empo_gym.agents.training.checkpoint`, :mod:`~empo_gym.agents.training.trainer`,
:mod:`~empo_gym.agents.training.curves`.
"""
