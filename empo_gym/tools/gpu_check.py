"""A quick check of the training engine on one device with a randomly initialised model.

Builds a model of a known shape (:data:`~empo_gym.tools.plan.KNOWN_SHAPES`, random
weights: no hub), prepares it with the FSDP2 engine (a 1-process group; fp32 master weights,
bf16 compute on CUDA, activation checkpointing) and measures:

* ``peak_gb``: peak device memory of the updates (CUDA; None on CPU) next to the plan's estimate;
* ``update_tok_s``: response tokens per second of :func:`policy_update` (and prompt + response
  tokens per second, ``update_forward_tok_s``);
* ``rollout_tok_s``: generated tokens per second of the local backend
  (:class:`~empo_gym.agents.llm.transformers_policy.TransformersPolicy` on the gathered model);
* ``fp32_update_changed``: share of the entries with a non-zero gradient that one lr-1e-6 step
  changed (fp32 masters: ~1.0; bf16 weights would round most of them away).

Run ``scripts/gpu_check.sh`` (or ``python -m empo_gym.tools.gpu_check --help``); the
last output line is one JSON object. On CPU, ``--shape tiny`` runs in seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import torch

from empo_gym.tools.plan import KNOWN_SHAPES, ModelShape

TINY = ModelShape(256, 64, 128, 2, 4, 2)
"""A shape for CPU smoke runs (a few ms per forward)."""


def build_model(shape: ModelShape, device: torch.device, seed: int = 0) -> torch.nn.Module:
    """A randomly initialised causal LM of ``shape`` in fp32 on ``device`` (Qwen2 when the shape
    has q/k/v biases, else Llama).

    Example:
        >>> build_model(TINY, torch.device("cpu")).config.num_hidden_layers
        2
    """
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    common = {
        "vocab_size": shape.vocab_size,
        "hidden_size": shape.hidden_size,
        "intermediate_size": shape.intermediate_size,
        "num_hidden_layers": shape.num_layers,
        "num_attention_heads": shape.num_heads,
        "num_key_value_heads": shape.num_kv_heads,
        "tie_word_embeddings": shape.tied_embeddings,
        "max_position_embeddings": 32768,
        "pad_token_id": 0,
        "eos_token_id": 1,
    }
    config_cls, model_cls = (
        (Qwen2Config, Qwen2ForCausalLM) if shape.qkv_bias else (LlamaConfig, LlamaForCausalLM)
    )
    torch.manual_seed(seed)
    with torch.device(device):
        model = model_cls(config_cls(**common))
    return model.float()


class _Tokenizer:
    """What TransformersPolicy needs of a tokenizer to decode random ids (no vocabulary)."""

    pad_token_id, eos_token_id = 0, 1

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return " ".join(map(str, ids))


def _groups(
    n_rows: int, prompt_len: int, response_len: int, vocab: int, seed: int
) -> list[list[Any]]:
    """Groups of 2 one-turn trajectories with random tokens and rewards 0 / 1."""
    from empo_gym.agents.llm.trajectory import Trajectory, Turn

    gen = torch.Generator().manual_seed(seed)
    groups = []
    for g in range((n_rows + 1) // 2):
        group = []
        for m in range(2):
            prompt = torch.randint(2, vocab, (prompt_len,), generator=gen).tolist()
            response = torch.randint(2, vocab, (response_len,), generator=gen).tolist()
            old = [-5.0] * response_len  # ratios != 1: the clipped objective's real path
            turn = Turn(prompt, prompt, response, old, reward=float(m))
            group.append(Trajectory(f"g{g}", m, [turn]))
        groups.append(group)
    return groups


def run_check(
    shape: ModelShape,
    *,
    device: str | None = None,
    prompt_tokens: int = 4500,
    response_tokens: int = 32,
    rows: int = 4,
    steps: int = 2,
    rollout_rows: int = 16,
    rollout_tokens: int = 64,
    activation_checkpointing: bool = True,
    compute_dtype: str = "auto",
) -> dict[str, Any]:
    """Measure the engine on one device (see the module docstring); returns the figures.

    Example:
        >>> out = run_check(TINY, device="cpu", prompt_tokens=16, rows=2, steps=1,
        ...                 rollout_rows=2, rollout_tokens=4)  # doctest: +SKIP
    """
    from empo_gym.agents.llm.policy import SamplingConfig
    from empo_gym.agents.llm.transformers_policy import TransformersPolicy
    from empo_gym.agents.training.algorithm import UpdateMode
    from empo_gym.agents.training.config import GRPOConfig
    from empo_gym.agents.training.engine import Engine
    from empo_gym.agents.training.engine import compute_dtype as resolve_compute
    from empo_gym.agents.training.process_group import ProcessGroup
    from empo_gym.agents.training.update import make_optimizer, policy_update
    from empo_gym.tools.plan import plan_memory

    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    group = ProcessGroup.single(dev)  # FSDP2 shards over a process group, even of one
    cuda = dev.type == "cuda"
    t0 = time.perf_counter()
    model = build_model(shape, dev)
    build_s = time.perf_counter() - t0
    engine = Engine(
        backend="fsdp2",
        group=group,
        compute=resolve_compute(compute_dtype, dev),
        activation_checkpointing=activation_checkpointing,
    )
    engine.wrap_model(model)
    cfg = GRPOConfig(
        lr=1e-6,
        weight_decay=0.0,
        micro_batch_size=1,
        low_prob_masking=False,
        skip_zero_advantage=False,
        backend="fsdp2",
        compute_dtype=compute_dtype,
        activation_checkpointing=activation_checkpointing,
        max_context_tokens=prompt_tokens,
        max_response_tokens=response_tokens,
        tasks_per_iter=rollout_rows,
        group_size=2,
    )
    optimizer = make_optimizer(model, cfg)
    if cuda:
        torch.cuda.reset_peak_memory_stats(dev)

    # fp32-master check on the first step: a few matrices (a full copy of 7B would not fit)
    watched = {n: p for n, p in model.named_parameters() if ".layers.0." in n or "lm_head" in n}
    local = {n: (p.to_local() if hasattr(p, "to_local") else p) for n, p in watched.items()}
    before = {n: t.detach().clone() for n, t in local.items()}
    grads: dict[str, torch.Tensor] = {}

    def keep_grads(_opt: Any, _args: Any, _kwargs: Any) -> None:
        if grads:
            return
        for n, p in watched.items():
            g = p.grad.to_local() if hasattr(p.grad, "to_local") else p.grad
            grads[n] = g.detach() != 0

    optimizer.register_step_pre_hook(keep_grads)
    update_tok = forward_tok = 0.0
    update_s = 0.0
    changed = total = 0
    for step in range(steps):
        groups = _groups(rows, prompt_tokens, response_tokens, shape.vocab_size, seed=step)
        out = policy_update(model, optimizer, groups, UpdateMode.ON_POLICY, cfg, 0, engine=engine)
        if step == 0:
            for n, t in local.items():
                moved = (t.detach() != before[n]) & grads[n]
                changed += int(moved.sum())
                total += int(grads[n].sum())
            del before
        else:  # the first step pays for lazy initialisation
            update_s += out["update_s"]
            update_tok += out["tokens"]
            forward_tok += out["update_forward_tokens"]
        if cuda:
            torch.cuda.synchronize(dev)
    peak = torch.cuda.max_memory_allocated(dev) / 1e9 if cuda else None

    policy = TransformersPolicy(
        model,
        tokenizer=_Tokenizer(),
        sampling=SamplingConfig(temperature=1.0, max_new_tokens=rollout_tokens, seed=0),
        max_batch_size=rollout_rows,
        prefix_cache=False,
    )
    prompts = [g[0].turns[0].prompt_ids for g in _groups(rollout_rows * 2, 512, 1, 100, 9)]
    model.eval()
    with torch.no_grad(), engine.generation(model):
        t0 = time.perf_counter()
        gens = policy.generate_ids(prompts[:rollout_rows])
        if cuda:
            torch.cuda.synchronize(dev)
        rollout_s = time.perf_counter() - t0
    generated = sum(len(g.response_ids) for g in gens)
    planned = plan_memory(cfg, gpus=1, gpu_mem_gb=1e9, shape=shape)
    return {
        "device": torch.cuda.get_device_name(dev) if cuda else "cpu",
        "params": shape.num_params,
        "compute_dtype": str(engine.compute).replace("torch.", ""),
        "activation_checkpointing": activation_checkpointing,
        "build_s": build_s,
        "peak_gb": peak,
        "planned_update_gb": planned.update_gb,
        "update_tok_s": update_tok / update_s if update_s else None,
        "update_forward_tok_s": forward_tok / update_s if update_s else None,
        "rollout_tok_s": generated / rollout_s if rollout_s else None,
        "fp32_update_changed": changed / total if total else None,
        "fp32_update_entries": total,
    }


def main(argv: list[str] | None = None) -> None:
    """Command line of :func:`run_check` (prints one JSON line)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="qwen2.5-1.5b", help=f"tiny or {sorted(KNOWN_SHAPES)}")
    parser.add_argument("--layers", type=int, default=None, help="override the layer count")
    parser.add_argument("--device", default=None, help="cuda / cpu (default: cuda if present)")
    parser.add_argument("--prompt-tokens", type=int, default=4500)
    parser.add_argument("--response-tokens", type=int, default=32)
    parser.add_argument("--rows", type=int, default=4, help="update rows (micro-batch 1)")
    parser.add_argument("--steps", type=int, default=2, help="optimizer steps (>= 2)")
    parser.add_argument("--rollout-rows", type=int, default=16)
    parser.add_argument("--rollout-tokens", type=int, default=64)
    parser.add_argument("--no-checkpointing", action="store_true")
    parser.add_argument("--compute-dtype", default="auto", choices=["auto", "float32", "bfloat16"])
    args = parser.parse_args(argv)
    if args.shape == "tiny":
        shape = TINY
    elif args.shape in KNOWN_SHAPES:
        shape = KNOWN_SHAPES[args.shape]
    else:
        parser.error(f"--shape {args.shape!r}; expected tiny or one of {sorted(KNOWN_SHAPES)}")
    if args.steps < 2:
        parser.error(f"--steps {args.steps}; expected >= 2 (the first step is not timed)")
    if args.layers is not None:
        from dataclasses import replace

        shape = replace(shape, num_layers=args.layers)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    result = run_check(
        shape,
        device=args.device,
        prompt_tokens=args.prompt_tokens,
        response_tokens=args.response_tokens,
        rows=args.rows,
        steps=args.steps,
        rollout_rows=args.rollout_rows,
        rollout_tokens=args.rollout_tokens,
        activation_checkpointing=not args.no_checkpointing,
        compute_dtype=args.compute_dtype,
    )
    print(json.dumps(result), flush=True)
    from empo_gym.agents.training.process_group import ProcessGroup

    ProcessGroup.leave()


if __name__ == "__main__":
    main()
