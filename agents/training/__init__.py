"""GRPO and EMPO² training: pure losses, update modes, configs, the update step, checkpoints,
the training loop, learning curves and the train benchmark.

Modules: :mod:`~agents.training.losses`, :mod:`~agents.training.modes`,
:mod:`~agents.training.config`, :mod:`~agents.training.update`,
:mod:`~agents.training.checkpoint`, :mod:`~agents.training.trainer`,
:mod:`~agents.training.curves`, :mod:`~agents.training.bench`.
"""
