"""``empo-gym bench explore``: does EMPO² find rewards that GRPO does not? (Doors env)

Both arms train the SAME policy -- a small model taught to read its context, tips included
(:mod:`empo_gym.bench.reader`) -- on the same Doors layouts, with the same iterations,
rollouts and update settings, over several seeds; their iterations are interleaved (as in
``bench train``) so both see the same machine load. Every ``eval_every`` iterations each arm's
policy is evaluated WITHOUT memory on its training layouts, so the curves show what the weights
learned, not what the tips whispered. The last JSON line holds the final successes with 95 %
CIs across seeds, the iterations each arm needs to reach ``success_threshold``, exploration
depth and rooms discovered, and the settings (chosen before the comparison).

Ablations (``--sweep knob=v1,v2``) rerun the EMPO² arm with one knob changed; the OOD part
freezes each trained policy and runs it with memory on layouts of an unseen family for
``ood_trials`` trials (trial 0 with an empty memory).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from empo_gym.agents.llm.rollout import RolloutRunner
from empo_gym.agents.llm.trajectory import Trajectory
from empo_gym.agents.training.algorithm import RolloutMode
from empo_gym.agents.training.config import GRPOConfig
from empo_gym.agents.training.empo import EMPOConfig
from empo_gym.agents.training.trainer import RolloutFn, TrainingRun
from empo_gym.atomic_io import write_text_atomic
from empo_gym.bench.reader import ReflectionTipWriter
from empo_gym.memory import PARTITION_KEY
from empo_gym.stats import t_interval
from empo_gym.yaml_config import check_fields

__all__ = [
    "SWEEP_KNOBS",
    "ExploreBenchConfig",
    "parse_sweep",
    "plot_explore",
    "run_explore_bench",
]

#: Knobs ``--sweep`` may vary, and the EMPO² config field each sets.
SWEEP_KNOBS = {
    "memory_prob": "memory_prob",
    "off_policy_prob": "off_policy_prob",
    "intrinsic": "intrinsic_reward",
    "masking": "low_prob_masking",
}


@dataclass
class ExploreBenchConfig:
    """Settings of ``empo-gym bench explore`` (all recorded in its JSON)."""

    seeds: int = 5
    """Independent runs per arm (each: its own layouts, task draws and sampling seeds)."""
    iterations: int = 300
    """Training iterations per run (an iteration costs ~0.1 s per arm on one CPU core)."""
    depth: int = 5
    """Doors rooms to pass (random success 3^-5 = 0.41 % with 3 doors)."""
    doors: int = 3
    """Doors per room."""
    family: str = "castle"
    """Layout family trained on."""
    train_layouts: int = 4
    """Layouts per run (run ``s`` trains on train-split layouts ``s*n .. s*n+n-1``)."""
    tasks_per_iter: int = 4
    """B: layouts drawn per iteration."""
    group_size: int = 8
    """G: rollouts per drawn layout."""
    lr: float = 1e-3
    """AdamW learning rate of both arms."""
    eval_every: int = 25
    """Evaluate both arms without memory every this many iterations (and before training)."""
    eval_group: int = 8
    """Evaluation episodes per training layout."""
    success_threshold: float = 0.5
    """Evaluation success that counts as "reached" for ``iterations_to_threshold``."""
    memory_prob: float = 0.25
    """EMPO²'s p (memory rollouts)."""
    off_policy_prob: float = 2.0 / 3.0
    """EMPO²'s q (off-policy updates of memory iterations)."""
    intrinsic_reward: bool = True
    """EMPO²'s novelty bonus."""
    low_prob_masking: bool = True
    """Low-probability token masking (both arms)."""
    memory_top_k: int = 5
    """Memories retrieved per turn (the reader was taught on blocks of up to 5)."""
    ood_family: str = "cave"
    """Unseen layout family of the OOD trials."""
    ood_trials: int = 10
    """OOD trials (trial 0 with an empty memory)."""
    ood_layouts: int = 4
    """OOD test layouts per run."""
    reader_steps: int = 1200
    """Teaching steps of the reader policy (cached by its settings)."""
    output_dir: str = "runs/bench-explore"
    """Where the JSON and the plots go."""

    def __post_init__(self) -> None:
        check_fields(self)
        for name in ("seeds", "iterations", "train_layouts", "tasks_per_iter", "eval_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)!r}; expected >= 1")
        if self.group_size < 2:
            raise ValueError(f"group_size={self.group_size!r}; expected >= 2 (a GRPO group)")
        if not 0 < self.success_threshold <= 1:
            raise ValueError(f"success_threshold={self.success_threshold!r}; expected in (0, 1]")


def parse_sweep(items: Sequence[str]) -> dict[str, list[Any]]:
    """``["memory_prob=0.1,0.5", "intrinsic=on,off"]`` -> ``{"memory_prob": [0.1, 0.5], ...}``.

    Example:
        >>> parse_sweep(["memory_prob=0.1,0.5", "masking=off"])
        {'memory_prob': [0.1, 0.5], 'masking': [False]}
    """
    out: dict[str, list[Any]] = {}
    for item in items:
        knob, sep, values = item.partition("=")
        if not sep or not values:
            raise ValueError(f"sweep item {item!r}; expected KNOB=V1,V2 (e.g. memory_prob=0.1,0.5)")
        if knob not in SWEEP_KNOBS:
            raise ValueError(f"sweep knob {knob!r}; expected one of {sorted(SWEEP_KNOBS)}")
        parsed: list[Any] = []
        for v in values.split(","):
            if knob in ("intrinsic", "masking"):
                if v not in ("on", "off"):
                    raise ValueError(f"{knob}={v!r}; expected on or off")
                parsed.append(v == "on")
            else:
                try:
                    parsed.append(float(v))
                except ValueError:
                    raise ValueError(f"{knob}={v!r}; expected a probability") from None
        out[knob] = parsed
    return out


# ------------------------------------------------------------------------------- run pieces
def _trainer_fields(cfg: ExploreBenchConfig, seed: int, out: str) -> dict[str, Any]:
    return {
        "model": "reader",
        "env": "doors",
        "seed": seed,
        "iterations": cfg.iterations,
        "output_dir": out,
        "checkpoint_every": 0,
        "tasks_per_iter": cfg.tasks_per_iter,
        "group_size": cfg.group_size,
        "max_steps": cfg.depth + 2,
        "max_response_tokens": 6,
        "max_context_tokens": 1024,
        "prompt_history": 0,
        "lr": cfg.lr,
        "weight_decay": 0.0,
        "micro_batch_size": 64,
        "kl_coef": 0.0,
        "low_prob_masking": cfg.low_prob_masking,
        "eval_temperature": 0.4,
    }


def _empo_fields(cfg: ExploreBenchConfig) -> dict[str, Any]:
    return {
        "memory_prob": cfg.memory_prob,
        "off_policy_prob": cfg.off_policy_prob,
        "intrinsic_reward": cfg.intrinsic_reward,
        "memory_top_k": cfg.memory_top_k,
        # Doors rooms differ in one word (hashing cosine up to 0.95) and a state's text never
        # varies: novelty counts and retrieval match exact repeats of the state
        "novelty_threshold": 0.99,
        "memory_min_similarity": 0.99,
    }


def _doors_envs(cfg: ExploreBenchConfig, n: int, family: str, split: str) -> list[Any]:
    from empo_gym.doors import DoorsEnv

    return [
        DoorsEnv(depth=cfg.depth, doors=cfg.doors, family=family, split=split) for _ in range(n)
    ]


def _depth(traj: Trajectory) -> int:
    return int((traj.info.get("final_info") or {}).get("depth", 0))


def _summary(trajs: Sequence[Trajectory]) -> dict[str, float]:
    n = max(len(trajs), 1)
    return {
        "success": sum(t.success for t in trajs) / n,
        "return": sum(t.episode_return for t in trajs) / n,
        "depth": sum(_depth(t) for t in trajs) / n,
    }


class _Arm:
    """One arm of one seed: its training run, its discovered rooms, its evaluation curve."""

    def __init__(
        self, name: str, trainer_cfg: GRPOConfig, bench: ExploreBenchConfig, policy: Any
    ) -> None:
        from empo_gym.agents.llm.policy import SamplingConfig
        from empo_gym.agents.llm.rollout import ResetSpec
        from empo_gym.agents.training.setup import build_training

        self.name, self.bench, self.policy = name, bench, policy
        n_envs = bench.tasks_per_iter * bench.group_size
        layouts = [trainer_cfg.seed * bench.train_layouts + i for i in range(bench.train_layouts)]
        self.tasks = [ResetSpec(seed=i) for i in layouts]
        self.setup = build_training(
            trainer_cfg,
            envs=_doors_envs(bench, n_envs, bench.family, "train"),
            tasks=self.tasks,
            tip_writer=ReflectionTipWriter(),
        )
        self.discovered: set[tuple[str, int]] = set()
        self.curve: list[dict[str, float]] = []
        self.rows: list[dict[str, Any]] = []
        self.run = TrainingRun(
            trainer_cfg,
            policy,
            self._recording(self.setup.rollout_fn),
            self.tasks,
            algorithm=self.setup.algorithm,
            resume=False,
        )
        eval_n = bench.train_layouts * bench.eval_group
        self.eval_fn: RolloutFn = RolloutRunner(
            None,
            _doors_envs(bench, eval_n, bench.family, "train"),
            "doors",
            max_turns=trainer_cfg.max_steps,
            sampling=SamplingConfig(
                temperature=trainer_cfg.eval_temperature,
                max_new_tokens=trainer_cfg.max_response_tokens,
                seed=trainer_cfg.seed + 10_000,
            ),
            prompt_kwargs={"max_history": trainer_cfg.prompt_history},
            max_context_tokens=trainer_cfg.max_context_tokens,
        )

    def _recording(self, fn: RolloutFn) -> RolloutFn:
        def rollout(policy: Any, tasks: Sequence[Any], g: int, use_memory: bool) -> Any:
            trajs = fn(policy, tasks, g, use_memory)
            for t in trajs:
                partition = str(t.info.get(PARTITION_KEY))
                self.discovered.update((partition, d) for d in range(_depth(t) + 1))
            return trajs

        return rollout

    def evaluate(self, iteration: int) -> dict[str, float]:
        """Success, return and depth without memory on the training layouts."""
        model = self.run.model
        model.eval()
        with torch.no_grad():
            trajs = self.eval_fn(self.policy, self.tasks, self.bench.eval_group, False)
        point = {"iteration": iteration, **_summary(trajs), "discovered": len(self.discovered)}
        self.curve.append(point)
        return point

    def step(self) -> dict[str, Any]:
        row = self.run.step()
        self.rows.append(row)
        return row

    def close(self) -> None:
        self.setup.close()
        self.run.close()


def _ood_trials(
    bench: ExploreBenchConfig, policy: Any, seed: int, log: Callable[[str], Any]
) -> list[float]:
    """Success per trial of a frozen ``policy`` with memory on unseen-family layouts."""
    from empo_gym.agents.llm.rollout import ResetSpec
    from empo_gym.agents.training.setup import build_training

    cfg = EMPOConfig(**_trainer_fields(bench, seed, "unused"), **_empo_fields(bench))
    n_envs = bench.ood_layouts * bench.group_size
    tasks = [ResetSpec(seed=seed * bench.ood_layouts + i) for i in range(bench.ood_layouts)]
    setup = build_training(
        cfg,
        envs=_doors_envs(bench, n_envs, bench.ood_family, "test"),
        tasks=tasks,
        tip_writer=ReflectionTipWriter(),
    )
    out = []
    try:
        policy.model.eval()
        with torch.no_grad():
            for _ in range(bench.ood_trials):
                # trial 0 retrieves from an empty memory; every trial's tips go into it
                trajs = setup.rollout_fn(policy, tasks, bench.group_size, True)
                setup.algorithm.after_rollouts(policy, trajs, RolloutMode.PLAIN)
                out.append(_summary(trajs)["success"])
    finally:
        setup.close()
    log(f"[bench explore] OOD ({bench.ood_family}) success per trial: {[round(x, 2) for x in out]}")
    return out


def _run_seed(
    bench: ExploreBenchConfig,
    seed: int,
    arms: dict[str, GRPOConfig],
    make_policy: Callable[[GRPOConfig], Any],
    log: Callable[[str], Any],
    ood: bool,
) -> dict[str, Any]:
    built = {name: _Arm(name, cfg, bench, make_policy(cfg)) for name, cfg in arms.items()}
    t0 = time.perf_counter()
    try:
        for arm in built.values():
            arm.evaluate(0)
        for it in range(bench.iterations):
            names = list(built) if it % 2 == 0 else list(reversed(built))
            for name in names:
                built[name].step()
            if (it + 1) % bench.eval_every == 0 or it + 1 == bench.iterations:
                points = {name: arm.evaluate(it + 1) for name, arm in built.items()}
                log(
                    f"[bench explore] seed {seed} iter {it + 1}: "
                    + ", ".join(
                        f"{n} success {p['success']:.2f} depth {p['depth']:.2f} "
                        f"rooms {p['discovered']}"
                        for n, p in points.items()
                    )
                    + f" ({time.perf_counter() - t0:.0f} s)"
                )
        out: dict[str, Any] = {}
        for name, arm in built.items():
            rows = arm.rows
            out[name] = {
                "curve": arm.curve,
                "train_success": [r["success"] for r in rows],
                "intrinsic": [r["intrinsic"] for r in rows],
                "zero_signal_iterations": sum(
                    1 for r in rows if float(r.get("adv_abs_mean", 1.0) or 0.0) == 0.0
                ),
                # updates whose only signal is the novelty bonus (no rollout succeeded)
                "bonus_only_updates": sum(
                    1
                    for r in rows
                    if r["success"] == 0 and float(r.get("adv_abs_mean", 0.0) or 0.0) > 0
                ),
                "iter_s": sum(r["iter_s"] for r in rows) / max(len(rows), 1),
                "memory_s": sum(r.get("memory_s", 0.0) for r in rows) / max(len(rows), 1),
                "modes": [r["update_mode"] for r in rows],
            }
            if ood:
                out[name]["ood"] = _ood_trials(bench, arm.policy, seed, log)
        return out
    finally:
        for arm in built.values():
            arm.close()


# ------------------------------------------------------------------------------ aggregation
def _first_reaching(curve: Sequence[dict[str, float]], threshold: float) -> int | None:
    return next((int(p["iteration"]) for p in curve if p["success"] >= threshold), None)


def _aggregate(per_seed: list[dict[str, Any]], name: str, threshold: float) -> dict[str, Any]:
    curves = [s[name]["curve"] for s in per_seed]
    iterations = [p["iteration"] for p in curves[0]]
    agg: dict[str, Any] = {"iterations": iterations}
    for metric in ("success", "return", "depth", "discovered"):
        means, halves = [], []
        for k in range(len(iterations)):
            m, h = t_interval([c[k][metric] for c in curves])
            means.append(m)
            halves.append(h)
        agg[metric] = means
        agg[f"{metric}_ci95"] = halves
    reached = [_first_reaching(c, threshold) for c in curves]
    agg["iterations_to_threshold_per_seed"] = reached
    agg["iterations_to_threshold"] = _first_reaching(
        [{"iteration": i, "success": s} for i, s in zip(iterations, agg["success"], strict=True)],
        threshold,
    )
    agg["final_success_per_seed"] = [c[-1]["success"] for c in curves]
    agg["s_per_iter"] = sum(s[name]["iter_s"] for s in per_seed) / len(per_seed)
    agg["memory_s_per_iter"] = sum(s[name]["memory_s"] for s in per_seed) / len(per_seed)
    agg["zero_signal_iterations"] = [s[name]["zero_signal_iterations"] for s in per_seed]
    agg["bonus_only_updates"] = [s[name]["bonus_only_updates"] for s in per_seed]
    # the novelty bonus per trajectory of memory iterations, early vs late (does it fade?)
    quarter = max(len(per_seed[0][name]["intrinsic"]) // 4, 1)
    for label, part in (("first", slice(0, quarter)), ("last", slice(-quarter, None))):
        values = [v for s in per_seed for v in s[name]["intrinsic"][part] if v > 0]
        agg[f"intrinsic_{label}_quarter"] = sum(values) / len(values) if values else 0.0
    if "ood" in per_seed[0][name]:
        # one interval per trial, across seeds
        per_trial = zip(*(s[name]["ood"] for s in per_seed), strict=True)
        intervals = [t_interval(trial) for trial in per_trial]
        agg["ood_success"] = [m for m, _ in intervals]
        agg["ood_success_ci95"] = [h for _, h in intervals]
    return agg


def _band(ax: Any, xs: Sequence[float], ys: Sequence[float], half: Sequence[float], label: str):
    """A line with its 95 % CI band (no band where the interval is undefined)."""
    h = [0.0 if math.isnan(x) else x for x in half]
    ax.plot(xs, ys, label=label, marker="o", ms=3)
    lows = [y - d for y, d in zip(ys, h, strict=True)]
    highs = [y + d for y, d in zip(ys, h, strict=True)]
    ax.fill_between(xs, lows, highs, alpha=0.2)


def plot_explore(
    result: dict[str, Any], out_png: str | Path, arms: Sequence[str], title: str
) -> Path:
    """Success, depth and (when present) OOD curves of ``arms`` with 95 % CI bands."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from empo_gym.agents.training.curves import save_figure

    has_ood = all("ood_success" in result[a] for a in arms)
    panels = [("success", "success (no memory)"), ("depth", "rooms passed (no memory)")]
    fig, axes = plt.subplots(1, len(panels) + has_ood, figsize=(5 * (len(panels) + has_ood), 3.6))
    for ax, (metric, label) in zip(axes, panels, strict=False):
        for arm in arms:
            r = result[arm]
            _band(ax, r["iterations"], r[metric], r[f"{metric}_ci95"], arm)
        ax.set_xlabel("iteration")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    if has_ood:
        ax = axes[-1]
        for arm in arms:
            ys = result[arm]["ood_success"]
            _band(ax, list(range(len(ys))), ys, result[arm]["ood_success_ci95"], f"{arm}-trained")
        ax.set_xlabel("trial (frozen policy, memory on)")
        ax.set_ylabel("success on the unseen family")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    return save_figure(fig, out_png)


def _verdict(grpo: dict[str, Any], empo: dict[str, Any]) -> dict[str, Any]:
    g, gh = grpo["success"][-1], grpo["success_ci95"][-1]
    e, eh = empo["success"][-1], empo["success_ci95"][-1]
    separated = e - eh > g + gh
    g_it, e_it = grpo["iterations_to_threshold"], empo["iterations_to_threshold"]
    faster = e_it is not None and (g_it is None or e_it <= g_it / 2)
    return {
        "empo_at_least_twice_grpo_with_separated_ci": bool(e >= 2 * g and separated),
        "empo_reaches_threshold_in_half_the_iterations": bool(faster),
    }


# ------------------------------------------------------------------------------------ entry
def run_explore_bench(
    bench: ExploreBenchConfig = ExploreBenchConfig(),
    *,
    sweep: dict[str, list[Any]] | None = None,
    ood: bool = True,
    log: Callable[[str], Any] = print,
) -> dict[str, Any]:
    """Run the bench (GRPO vs EMPO²; then each sweep value as an extra EMPO² arm).

    Returns:
        The JSON-ready result: ``settings``, ``grpo`` / ``empo`` aggregates, the headline keys
        (``grpo_final_success``, ``empo_final_success``, their ``*_ci95``,
        ``iterations_to_threshold``), the verdict, and ``sweep`` (per knob, per value).
    """
    from empo_gym.agents.training.setup import training_sampling
    from empo_gym.bench.reader import ReaderSettings, reader_policy, reader_report

    reader = ReaderSettings(
        depth=bench.depth,
        doors=bench.doors,
        steps=bench.reader_steps,
        max_tips=bench.memory_top_k,
    )

    def make_policy(cfg: GRPOConfig) -> Any:
        return reader_policy(reader, sampling=training_sampling(cfg), log=log)

    make_policy(GRPOConfig(**_trainer_fields(bench, 0, "x")))  # teach (or load) once, up front
    out_dir = Path(bench.output_dir)
    t0 = time.perf_counter()
    per_seed = []
    for seed in range(bench.seeds):
        fields = _trainer_fields(bench, seed, str(out_dir / f"seed{seed}"))
        arms = {
            "grpo": GRPOConfig(**{**fields, "output_dir": f"{fields['output_dir']}/grpo"}),
            "empo": EMPOConfig(
                **{**fields, "output_dir": f"{fields['output_dir']}/empo"}, **_empo_fields(bench)
            ),
        }
        per_seed.append(_run_seed(bench, seed, arms, make_policy, log, ood))
    result: dict[str, Any] = {
        "settings": dataclasses.asdict(bench),
        "reader": dataclasses.asdict(reader),
        "reader_checks": reader_report(reader),
        "random_policy_success": float(bench.doors) ** -bench.depth,
    }
    for name in ("grpo", "empo"):
        result[name] = _aggregate(per_seed, name, bench.success_threshold)
        result[f"{name}_final_success"] = result[name]["success"][-1]
        result[f"{name}_final_success_ci95"] = result[name]["success_ci95"][-1]
        result[f"{name}_iterations_to_threshold"] = result[name]["iterations_to_threshold"]
        result[f"{name}_final_depth"] = result[name]["depth"][-1]
        result[f"{name}_rooms_discovered"] = result[name]["discovered"][-1]
    result["verdict"] = _verdict(result["grpo"], result["empo"])
    result["empo_vs_grpo_s_per_iter"] = result["empo"]["s_per_iter"] / result["grpo"]["s_per_iter"]
    result["plot"] = str(
        plot_explore(
            result,
            out_dir / "explore.png",
            ["grpo", "empo"],
            f"Doors depth {bench.depth}, {bench.doors} doors: {bench.seeds} seeds",
        )
    )
    result["sweep"] = {}
    for knob, values in (sweep or {}).items():
        field_name = SWEEP_KNOBS[knob]
        arms_out: dict[str, Any] = {}
        for value in values:
            label = f"{knob}={value}"
            runs = []
            for seed in range(bench.seeds):
                fields = _trainer_fields(bench, seed, str(out_dir / "sweep" / label / f"s{seed}"))
                cfg = EMPOConfig(**{**fields, **_empo_fields(bench), field_name: value})
                runs.append(_run_seed(bench, seed, {label: cfg}, make_policy, log, False))
            arms_out[label] = _aggregate(runs, label, bench.success_threshold)
        result["sweep"][knob] = {
            label: {
                "final_success": a["success"][-1],
                "final_success_ci95": a["success_ci95"][-1],
                "iterations_to_threshold": a["iterations_to_threshold"],
                "final_depth": a["depth"][-1],
            }
            for label, a in arms_out.items()
        }
        merged = {**arms_out, "empo (default)": result["empo"], "grpo": result["grpo"]}
        result["sweep"][knob]["plot"] = str(
            plot_explore(
                {
                    k: {kk: vv for kk, vv in v.items() if not kk.startswith("ood")}
                    for k, v in merged.items()
                },
                out_dir / f"sweep-{knob}.png",
                list(merged),
                f"ablation: {knob}",
            )
        )
    result["seconds"] = time.perf_counter() - t0
    write_text_atomic(out_dir / "explore.json", json.dumps(result, indent=1) + "\n")
    return result
