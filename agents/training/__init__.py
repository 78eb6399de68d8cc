"""GRPO and EMPO² training: the algorithms, pure losses, configs, the update step, checkpoints,
the training loop and learning curves (the train benchmark is :mod:`empo_gym.bench.train`).
EMPO², read top to bottom, is :mod:`~empo_gym.agents.training.empo`.

Modules: :mod:`~empo_gym.agents.training.algorithm`, :mod:`~empo_gym.agents.training.empo`,
:mod:`~empo_gym.agents.training.losses`, :mod:`~empo_gym.agents.training.config`,
:mod:`~empo_gym.agents.training.update`,
:mod:`~empo_gym.agents.training.checkpoint`, :mod:`~empo_gym.agents.training.trainer`,
:mod:`~empo_gym.agents.training.curves`.
"""
