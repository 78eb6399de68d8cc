"""The ``empo-gym bench <name>`` benchmarks, one module per command.

:mod:`~empo_gym.bench.scienceworld`, :mod:`~empo_gym.bench.twx`, :mod:`~empo_gym.bench.webshop`,
:mod:`~empo_gym.bench.memory`, :mod:`~empo_gym.bench.rollout`, :mod:`~empo_gym.bench.train`,
:mod:`~empo_gym.bench.explore` (with its fixture, the taught reader model of
:mod:`~empo_gym.bench.reader`). A top layer, like the pipeline: benches import the agents and
trainers; the env layer never imports ``empo_gym.bench``.
"""
