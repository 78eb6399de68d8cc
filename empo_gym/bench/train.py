"""``empo-gym bench train``: GRPO and EMPO² iterations side by side at equal settings."""

from __future__ import annotations

import dataclasses
import statistics
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from empo_gym.agents.llm.policy import TrainablePolicy
from empo_gym.agents.training.algorithm import Algorithm, RolloutMode
from empo_gym.agents.training.config import GRPOConfig
from empo_gym.agents.training.empo import EMPOConfig
from empo_gym.agents.training.trainer import RolloutFn, TrainingRun

#: Fields that may differ between the two configs of a fair comparison.
_FREE_FIELDS = {"output_dir"}


def interleave(
    runs: dict[str, TrainingRun], iterations: int, log: Callable[[str], Any] | None = None
) -> None:
    """Step the runs one iteration each in turn, the order reversed every iteration (so all see
    the same machine load; on a shared machine the load drifts far more over a sequential run
    than between two neighbouring iterations). The runs are closed at the end (their output
    directory locks released)."""
    names = list(runs)
    for it in range(iterations):
        for name in names if it % 2 == 0 else names[::-1]:
            row = runs[name].step()
            if log is not None:
                log(
                    f"[bench train] iter {it} {name}: {row['iter_s']:.1f} s "
                    f"(rollout {row['rollout_s']:.1f}, memory+tips {row['memory_s']:.1f}, "
                    f"update {row['update_s']:.1f}, weight sync {row['weight_sync_s']:.1f}, "
                    f"mode {row['update_mode']})"
                )
    for run in runs.values():
        run.close()


def compare_iteration_cost(
    grpo_cfg: GRPOConfig,
    empo_cfg: EMPOConfig,
    make_policy: Callable[[], TrainablePolicy],
    rollout_fn: RolloutFn,
    tasks: Sequence[Any],
    make_empo: Callable[[], Algorithm] | None = None,
    *,
    warmup: int = 1,
    timing_keys: Sequence[str] = (),
    log: Callable[[str], Any] | None = None,
) -> dict[str, Any]:
    """Train GRPO and EMPO² side by side, one iteration each in turn, and compare their cost.

    The runs alternate iteration by iteration (:func:`interleave`).

    Args:
        grpo_cfg: GRPO settings.
        empo_cfg: EMPO² settings; every field GRPO has must be equal (except ``output_dir``).
        make_policy: Builds a fresh policy (same initial weights for both runs).
        rollout_fn: Rollout function shared by both runs.
        tasks: Training task instances.
        make_empo: Builds the EMPO² run's algorithm (default: the one ``empo_cfg``
            configures, :func:`~empo_gym.agents.training.algorithm.make_algorithm`).
        warmup: Leading iterations left out of the averages (first-call overheads).
        timing_keys: Extra per-iteration seconds reported by the EMPO² algorithm
            (``timings``); each is summed and reported as a share of EMPO² time.
        log: Progress lines (one per iteration) go here.

    Returns:
        ``grpo_s_per_iter`` / ``empo_s_per_iter`` (means after the warm-up),
        ``empo_vs_grpo_iteration_ratio`` (their ratio), ``paired_ratio_median`` (median over
        iterations of EMPO² / GRPO seconds of the same iteration index),
        ``empo_vs_grpo_ratio_skipping_zero_adv`` (the same run's ratio without the seconds
        spent on zero-advantage turns, i.e. the cost with ``skip_zero_advantage=True``),
        ``empo_expected_s_per_iter`` / ``empo_vs_grpo_expected_ratio`` (EMPO² cost weighted by
        the rollout-mode probability p instead of the modes this short run happened to draw;
        only when both modes were drawn), ``memory_share_of_iteration`` (memory + tip seconds /
        EMPO² seconds), ``update_tok_s`` (response tokens per update second, both runs),
        ``update_forward_tok_s`` (prompt + response tokens), ``update_shared_prefix_fraction``
        (of those, the share computed once as a shared prompt prefix), ``empo_modes``,
        ``iterations``.

    Raises:
        ValueError: The settings differ in a shared field (named).
    """
    for f in dataclasses.fields(GRPOConfig):
        if f.name in _FREE_FIELDS:
            continue
        a, b = getattr(grpo_cfg, f.name), getattr(empo_cfg, f.name)
        if a != b:
            raise ValueError(f"unequal settings: {f.name} is {a!r} for GRPO, {b!r} for EMPO²")
    if grpo_cfg.iterations <= warmup:
        raise ValueError(f"iterations={grpo_cfg.iterations} must exceed warmup={warmup}")

    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        runs: dict[str, TrainingRun] = {}
        for name, cfg, algorithm in (
            ("grpo", grpo_cfg, None),
            ("empo", empo_cfg, make_empo() if make_empo else None),
        ):
            cfg = dataclasses.replace(cfg, output_dir=f"{tmp}/{name}", checkpoint_every=0)
            runs[name] = TrainingRun(
                cfg, make_policy(), rollout_fn, tasks, algorithm=algorithm, resume=False
            )
        interleave(runs, grpo_cfg.iterations, log)
    rows = {name: run.history[warmup:] for name, run in runs.items()}

    def total(name: str, key: str) -> float:
        return sum(float(r.get(key, 0.0)) for r in rows[name])

    n = len(rows["grpo"])
    grpo_s, empo_s = total("grpo", "iter_s") / n, total("empo", "iter_s") / n
    paired = [e["iter_s"] / g["iter_s"] for g, e in zip(rows["grpo"], rows["empo"], strict=True)]
    skipping = {k: total(k, "iter_s") - total(k, "zero_adv_s") for k in rows}
    empo_total = total("empo", "iter_s")
    by_mode: dict[bool, list[float]] = {True: [], False: []}
    for r in rows["empo"]:
        by_mode[r["rollout_mode"] == RolloutMode.MEMORY.value].append(float(r["iter_s"]))
    expected = None
    if by_mode[True] and by_mode[False]:
        p = empo_cfg.memory_prob
        expected = p * statistics.fmean(by_mode[True]) + (1 - p) * statistics.fmean(by_mode[False])
    update_s = total("grpo", "update_s") + total("empo", "update_s")
    response_tokens = sum(r["update_tok_s"] * r["update_s"] for v in rows.values() for r in v)
    forward_tokens = total("grpo", "update_forward_tokens") + total("empo", "update_forward_tokens")
    return {
        "iterations": n,
        "grpo_s_per_iter": grpo_s,
        "empo_s_per_iter": empo_s,
        "empo_vs_grpo_iteration_ratio": empo_s / grpo_s if grpo_s else float("nan"),
        "paired_ratio_median": statistics.median(paired),
        "empo_vs_grpo_ratio_skipping_zero_adv": (
            skipping["empo"] / skipping["grpo"] if skipping["grpo"] > 0 else float("nan")
        ),
        "empo_expected_s_per_iter": expected,
        "empo_vs_grpo_expected_ratio": expected / grpo_s if expected and grpo_s else None,
        "memory_share_of_iteration": total("empo", "memory_s") / empo_total if empo_total else 0.0,
        "update_tok_s": response_tokens / update_s if update_s else 0.0,
        "update_forward_tok_s": forward_tokens / update_s if update_s else 0.0,
        "update_shared_prefix_fraction": (
            (
                total("grpo", "update_shared_prefix_tokens")
                + total("empo", "update_shared_prefix_tokens")
            )
            / forward_tokens
            if forward_tokens
            else 0.0
        ),
        "empo_modes": dict(Counter(r["update_mode"] for r in runs["empo"].history)),
        **{
            f"{key}_share_of_iteration": total("empo", key) / empo_total if empo_total else 0.0
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
    equal_update_work: bool = True,
    overrides: dict[str, Any] | None = None,
    log: Callable[[str], Any] = print,
) -> dict[str, Any]:
    """``empo-gym bench train``: GRPO vs EMPO² seconds per iteration at equal quick settings.

    Both runs use the same memory-wrapped training envs (GRPO never turns retrieval on), the
    same fresh initial weights and the same rollout engine; only the algorithm differs. Their
    iterations alternate (see :func:`compare_iteration_cost`).

    With ``equal_update_work`` (the default) both forward every unmasked turn, including those
    with advantage 0 (``skip_zero_advantage=False``, as verl does). Otherwise a small model
    that never earns a reward gives GRPO all-zero advantages and no update at all, while
    EMPO²'s novelty bonus gives it non-zero advantages in memory iterations: the ratio would
    then compare "update" with "no update" rather than the cost EMPO² adds. The same run also
    reports the ratio with zero-advantage turns skipped
    (``empo_vs_grpo_ratio_skipping_zero_adv``).

    Returns:
        :func:`compare_iteration_cost`'s metrics plus ``tip_share_of_iteration`` (the policy
        writing tips) and ``memory_share_of_iteration`` (store + retrieval + novelty).
    """
    from empo_gym.agents.training.config import quick_preset
    from empo_gym.agents.training.setup import build_training, make_policy

    overrides = {
        "skip_zero_advantage": not equal_update_work,
        **(overrides or {}),
        "iterations": iterations,
        "seed": seed,
        "task": task,
    }
    if model is not None:
        overrides["model"] = model
    grpo_cfg = quick_preset("grpo", env, **overrides)
    empo_cfg = quick_preset("empo", env, **overrides)
    # one set of memory-wrapped envs and one rollout function for both runs (GRPO never
    # retrieves); only the algorithm differs
    setup = build_training(empo_cfg)

    def load_policy() -> Any:
        log(f"[bench train] loading {grpo_cfg.model}")
        return make_policy(grpo_cfg)

    log(
        f"[bench train] {env}: {iterations} iterations each of GRPO and EMPO², interleaved "
        f"(B={grpo_cfg.tasks_per_iter}, G={grpo_cfg.group_size}, {grpo_cfg.max_steps} steps, "
        f"equal update work: {equal_update_work})"
    )
    try:
        out = compare_iteration_cost(
            grpo_cfg,
            empo_cfg,
            load_policy,
            setup.rollout_fn,
            setup.tasks,
            lambda: setup.algorithm,
            warmup=warmup,
            timing_keys=("tip_generate_s", "memory_store_s", "memory_retrieval_s"),
            log=log,
        )
    finally:
        setup.close()
    # "memory" = the store, retrieval and novelty; the policy writing tips is LLM generation
    # that EMPO² adds on top, reported apart so neither hides the other.
    out["memory_share_incl_tips"] = out["memory_share_of_iteration"]
    out["memory_share_of_iteration"] = (
        out["memory_store_s_share_of_iteration"] + out["memory_retrieval_s_share_of_iteration"]
    )
    out["tip_share_of_iteration"] = out.pop("tip_generate_s_share_of_iteration")
    out.update(env=env, task=task, model=grpo_cfg.model, equal_update_work=equal_update_work)
    return out


def run_backend_bench(
    env: str = "webshop",
    task: str | None = None,
    *,
    iterations: int = 4,
    warmup: int = 1,
    model: str | None = None,
    seed: int = 0,
    vllm_urls: Sequence[str] | None = None,
    overrides: dict[str, Any] | None = None,
    log: Callable[[str], Any] = print,
) -> dict[str, Any]:
    """``empo-gym bench train --rollout-backend vllm``: GRPO with local rollouts vs vLLM
    rollouts, side by side at equal quick settings (iterations interleaved).

    The vLLM run starts its own server from ``.venv-vllm`` (colocated) unless ``vllm_urls``
    name running ones; it syncs the weights to vLLM after every update (disk sync) and
    re-scores the sampled tokens with the trainer.

    Returns:
        ``local_s_per_iter`` / ``vllm_s_per_iter`` and their ratio, each run's rollout and
        update seconds per iteration (the vLLM run's rollout seconds include the trainer
        re-scoring vLLM's tokens), ``weight_sync_s_median`` (and every sync's seconds).
    """
    from empo_gym.agents.training.config import quick_preset
    from empo_gym.agents.training.setup import build_training, make_policy

    base = {**(overrides or {}), "iterations": iterations, "seed": seed, "task": task}
    if model is not None:
        base["model"] = model
    if iterations <= warmup:
        raise ValueError(f"iterations={iterations} must exceed warmup={warmup}")
    with tempfile.TemporaryDirectory(prefix="bench-backend-") as tmp:
        vllm = {"rollout_backend": "vllm", "vllm_colocate": not vllm_urls}
        if vllm_urls:
            vllm["vllm_urls"] = list(vllm_urls)
        cfgs = {
            "local": quick_preset("grpo", env, **base, output_dir=f"{tmp}/local"),
            "vllm": quick_preset("grpo", env, **base, **vllm, output_dir=f"{tmp}/vllm"),
        }
        cfgs = {k: dataclasses.replace(c, checkpoint_every=0) for k, c in cfgs.items()}
        log(
            f"[bench train] {env}: {iterations} GRPO iterations with local and with vLLM "
            f"rollouts, interleaved (B={cfgs['local'].tasks_per_iter}, "
            f"G={cfgs['local'].group_size}, {cfgs['local'].max_steps} steps)"
        )
        setups, runs = {}, {}
        try:
            for name, cfg in cfgs.items():
                log(f"[bench train] {name}: loading {cfg.model}")
                setups[name] = build_training(cfg)
                policy = make_policy(cfg)
                runs[name] = TrainingRun(
                    cfg, policy, setups[name].rollout_fn, setups[name].tasks, resume=False
                )
            interleave(runs, iterations, log)
        finally:
            for run in runs.values():
                run.policy.close()  # type: ignore[attr-defined]
            for setup in setups.values():
                setup.close()
    rows = {name: run.history[warmup:] for name, run in runs.items()}

    def mean(name: str, key: str) -> float:
        return statistics.fmean(float(r.get(key, 0.0)) for r in rows[name])

    syncs = [float(r["weight_sync_s"]) for r in runs["vllm"].history]
    local_s, vllm_s = mean("local", "iter_s"), mean("vllm", "iter_s")
    return {
        "env": env,
        "model": cfgs["local"].model,
        "iterations": len(rows["local"]),
        "local_s_per_iter": local_s,
        "vllm_s_per_iter": vllm_s,
        "vllm_vs_local_ratio": vllm_s / local_s if local_s else float("nan"),
        "local_rollout_s_per_iter": mean("local", "rollout_s"),
        "vllm_rollout_s_per_iter": mean("vllm", "rollout_s"),
        "local_update_s_per_iter": mean("local", "update_s"),
        "vllm_update_s_per_iter": mean("vllm", "update_s"),
        "weight_sync_s_median": statistics.median(syncs),
        "weight_sync_s": syncs,
        "vllm_servers": "given" if vllm_urls else "started (colocated)",
    }
