#!/usr/bin/env bash
# The training engine on ONE GPU with a randomly initialised model (no hub): FSDP2 peak memory,
# update tokens/s, local-backend rollout tokens/s and the fp32-master update check, in < 8 min.
# The last output line is one JSON object.
#
#   scripts/gpu_check.sh                                  # Qwen2.5-1.5B shape, 4500-token rows
#   scripts/gpu_check.sh --shape qwen2.5-7b --layers 14   # half of 7B's layers
#   scripts/gpu_check.sh --shape tiny --device cpu --prompt-tokens 64 --rollout-tokens 16
#
# Needs a venv with a CUDA torch on the GPU machine (PYTHON=... to pick its interpreter).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
exec timeout "${GPU_CHECK_TIMEOUT_S:-480}" "$PYTHON" -m empo_gym.tools.gpu_check "$@"
