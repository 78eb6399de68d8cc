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
    timing_keys: Sequence[str] = (),
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
        timing_keys: Extra per-iteration seconds reported by the memory hooks
            (``last_timings``); each is summed and reported as a share of EMPO² time.

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
        **{
            f"{key}_share_of_iteration": (
                sum(float(r.get(key, 0.0)) for r in rows["empo"]) / empo_total
                if empo_total
                else 0.0
            )
            for key in timing_keys
        },
    }


def run_train_bench(
    env: str = "webshop",
    task: str | None = None,
    *,
    iterations: int = 4,
    warmup: int = 1,
    model: str | None = None,
    seed: int = 0,
    overrides: dict[str, Any] | None = None,
    log: Callable[[str], Any] = print,
) -> dict[str, Any]:
    """``empo-gym bench train``: GRPO vs EMPO² seconds per iteration at equal quick settings.

    Both runs use the same memory-wrapped training envs (GRPO never turns retrieval on), the
    same fresh initial weights and the same rollout engine; only the algorithm differs.

    Returns:
        :func:`compare_iteration_cost`'s metrics plus ``tip_share_of_iteration`` (the policy
        writing tips) and ``memory_share_of_iteration`` (store + retrieval + novelty).
    """
    import gymnasium as gym

    from agents.llm.policy import SamplingConfig, TransformersPolicy
    from agents.llm.rollout import ResetSpec
    from agents.training.config import quick_preset
    from agents.training.memory_hooks import EMPOMemory
    from agents.training.trainer import engine_rollout_fn
    from empo_gym.memory import MemoryObservationWrapper, MemoryStore, NoveltyReward
    from empo_gym.registry import get_env_info

    overrides = {**(overrides or {}), "iterations": iterations, "seed": seed, "task": task}
    if model is not None:
        overrides["model"] = model
    grpo_cfg = quick_preset("grpo", env, **overrides)
    empo_cfg = quick_preset("empo", env, **overrides)
    info = get_env_info(env)
    kwargs = {**info.env_kwargs(task, "train"), "max_steps": grpo_cfg.max_steps}
    store = MemoryStore("hashing")
    envs = [
        MemoryObservationWrapper(
            gym.make(info.gym_id, **kwargs), store, write_tips=False, novelty=False
        )
        for _ in range(grpo_cfg.tasks_per_iter * grpo_cfg.group_size)
    ]
    sampling = SamplingConfig(
        temperature=grpo_cfg.temperature, max_new_tokens=grpo_cfg.max_response_tokens, seed=seed
    )
    rollout_fn = engine_rollout_fn(
        envs, env, max_turns=grpo_cfg.max_steps, sampling=sampling, prompt_kwargs={"max_history": 4}
    )
    tasks = [ResetSpec(seed=seed + i) for i in range(max(grpo_cfg.tasks_per_iter, 5))]
    hooks: list[EMPOMemory] = []

    def make_memory() -> EMPOMemory:
        hooks.append(
            EMPOMemory(
                store,
                novelty=NoveltyReward(store.embedder),
                tip_max_tokens=empo_cfg.tip_max_tokens,
                wrappers=envs,
            )
        )
        return hooks[-1]

    def make_policy() -> Any:
        log(f"[bench train] loading {grpo_cfg.model}")
        return TransformersPolicy(grpo_cfg.model, sampling=sampling)

    log(
        f"[bench train] {env}: {iterations} iterations each of GRPO then EMPO² "
        f"(B={grpo_cfg.tasks_per_iter}, G={grpo_cfg.group_size}, {grpo_cfg.max_steps} steps)"
    )
    try:
        out = compare_iteration_cost(
            grpo_cfg,
            empo_cfg,
            make_policy,
            rollout_fn,
            tasks,
            make_memory,
            warmup=warmup,
            timing_keys=("tip_generate_s", "memory_store_s", "memory_retrieval_s"),
        )
    finally:
        for e in envs:
            e.close()
    # "memory" = the store, retrieval and novelty; the policy writing tips is LLM generation
    # that EMPO² adds on top, reported apart so neither hides the other.
    out["memory_share_incl_tips"] = out["memory_share_of_iteration"]
    out["memory_share_of_iteration"] = (
        out["memory_store_s_share_of_iteration"] + out["memory_retrieval_s_share_of_iteration"]
    )
    out["tip_share_of_iteration"] = out.pop("tip_generate_s_share_of_iteration")
    out.update(env=env, task=task, model=grpo_cfg.model)
    return out
