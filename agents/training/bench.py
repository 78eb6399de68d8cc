"""``empo-gym bench train``: GRPO and EMPO² iterations side by side at equal settings."""

from __future__ import annotations

import dataclasses
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from agents.training.config import EMPOConfig, GRPOConfig
from agents.training.trainer import MemoryHooks, RolloutFn, train

#: Fields that may differ between the two configs of a fair comparison.
_FREE_FIELDS = {"output_dir"}


def compare_iteration_cost(
    grpo_cfg: GRPOConfig,
    empo_cfg: EMPOConfig,
    make_policy: Callable[[], Any],
    rollout_fn: RolloutFn,
    tasks: Sequence[Any],
    make_memory: Callable[[], MemoryHooks] | None = None,
    *,
    warmup: int = 1,
) -> dict[str, Any]:
    """Train GRPO then EMPO² for their ``iterations`` and compare seconds per iteration.

    Args:
        grpo_cfg: GRPO settings.
        empo_cfg: EMPO² settings; every field GRPO has must be equal (except ``output_dir``).
        make_policy: Builds a fresh policy (same initial weights for both runs).
        rollout_fn: Rollout function shared by both runs.
        tasks: Training task instances.
        make_memory: Builds EMPO²'s memory hooks.
        warmup: Leading iterations left out of the averages (first-call overheads).

    Returns:
        ``grpo_s_per_iter``, ``empo_s_per_iter``, ``empo_vs_grpo_iteration_ratio``,
        ``memory_share_of_iteration`` (memory-hook seconds / EMPO² iteration seconds),
        ``update_tok_s`` (both runs), ``empo_modes`` (update modes drawn), ``iterations``.

    Raises:
        ValueError: The settings differ in a shared field (named).
    """
    for f in dataclasses.fields(GRPOConfig):
        if f.name in _FREE_FIELDS:
            continue
        a, b = getattr(grpo_cfg, f.name), getattr(empo_cfg, f.name)
        if a != b:
            raise ValueError(f"unequal settings: {f.name} is {a!r} for GRPO, {b!r} for EMPO²")
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        runs = {}
        for name, cfg, memory in (
            ("grpo", grpo_cfg, None),
            ("empo", empo_cfg, make_memory() if make_memory else None),
        ):
            cfg = dataclasses.replace(cfg, output_dir=f"{tmp}/{name}", checkpoint_every=0)
            runs[name] = train(cfg, make_policy(), rollout_fn, tasks, memory=memory, resume=False)
    rows = {name: res.history[warmup:] or res.history for name, res in runs.items()}

    def mean(name: str, key: str) -> float:
        values = [float(r[key]) for r in rows[name]]
        return sum(values) / len(values) if values else 0.0

    grpo_s, empo_s = mean("grpo", "iter_s"), mean("empo", "iter_s")
    empo_total = sum(r["iter_s"] for r in rows["empo"])
    tokens = sum(r["update_tok_s"] * r["update_s"] for v in rows.values() for r in v)  # scored
    update_s = sum(r["update_s"] for v in rows.values() for r in v)
    return {
        "iterations": len(rows["grpo"]),
        "grpo_s_per_iter": grpo_s,
        "empo_s_per_iter": empo_s,
        "empo_vs_grpo_iteration_ratio": empo_s / grpo_s if grpo_s else float("nan"),
        "memory_share_of_iteration": (
            sum(r["memory_s"] for r in rows["empo"]) / empo_total if empo_total else 0.0
        ),
        "update_tok_s": tokens / update_s if update_s else 0.0,
        "empo_modes": dict(Counter(r["update_mode"] for r in runs["empo"].history)),
    }
