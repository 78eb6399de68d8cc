"""Operator tools: the per-GPU memory estimate (``empo-gym plan``, :mod:`empo_gym.tools.plan`)
and the one-GPU engine check (``scripts/gpu_check.sh``, :mod:`empo_gym.tools.gpu_check`).

A top layer, like the pipeline: these modules import the trainers (``empo_gym.agents``); the env
layer never imports them.
"""
