"""The EMPO² out-of-distribution (OOD) trials: a frozen agent, memory only, trials on task B.

The paper trains on a transfer pair's source task A, then runs the trained policy on the target
task B with memory and no weight updates, for 10 trials: trial 0 starts from an empty memory and
every trial adds the tips of its episodes, so later trials can use what earlier ones learnt. It
reports the best of the 10 trials (the EMPO² paper's out-of-distribution protocol; named
"trials" here so that "protocol" keeps one meaning in the code, a typing protocol).

:func:`run_ood` runs these trials on ``empo_gym/ScienceWorldOOD-v0`` (``stage="target"``) with
the harness: every trial evaluates the same episodes (the same seeds, hence the same task
variations and memory partitions) with the one agent object, whose memory carries over. It writes

* ``{out_dir}/ood-{transfer}-{agent}-trials.json``: per-trial metrics, episodes, memory sizes
  and the paper's reference numbers (rewritten atomically after every trial);
* ``{out_dir}/ood-{transfer}-{agent}.png``: the score curve over trials with the paper's GRPO and
  EMPO² reference lines;
* ``{out_dir}/ood-{transfer}-{agent}.memory.safetensors``: the final memory (memory agents);
* a leaderboard entry (env ``ood``, task = transfer name, metrics of the best trial, every
  trial's metrics under ``config.per_trial``) in ``leaderboard_dir``.

Example:
    >>> trial_score_summary([{"metrics": {"mean_score": -3.0}}, {"metrics": {"mean_score": 9.5}}])
    {'best_trial': 1, 'best_score': 9.5, 'first_score': -3.0, 'last_score': 9.5}
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import gymnasium as gym

from empo_gym.agents.base import Agent
from empo_gym.atomic_io import atomic_path, check_writable_dir
from empo_gym.harness import EvalResult, check_eval_settings, evaluate
from empo_gym.leaderboard.entry import build_entry, write_atomic_json, write_entry
from empo_gym.ood import TRANSFERS, Transfer, get_transfer

__all__ = [
    "DEFAULT_EPISODES_PER_TRIAL",
    "DEFAULT_LEADERBOARD_DIR",
    "DEFAULT_OUT_DIR",
    "DEFAULT_TRIALS",
    "plot_trials",
    "run_ood",
    "trial_score_summary",
]

#: The paper's number of trials.
DEFAULT_TRIALS = 10
#: Episodes per trial (each trial replays the same seeds, i.e. the same task variations).
DEFAULT_EPISODES_PER_TRIAL = 5
#: Where the per-trial JSON, the curve and the memory go.
DEFAULT_OUT_DIR = "runs/ood"
#: Where the leaderboard entry goes (the CLI's default results directory).
DEFAULT_LEADERBOARD_DIR = "leaderboard/results"
#: The harness env name of the OOD tasks.
OOD_ENV = "ood"


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def trial_score_summary(trials: list[dict[str, Any]]) -> dict[str, Any]:
    """The best trial (highest mean score; earliest on ties) and the first / last scores.

    Args:
        trials: Per-trial records, each with ``metrics["mean_score"]``.
    """
    if not trials:
        raise ValueError("no trials to summarise; expected at least one")
    scores = [float(t["metrics"]["mean_score"]) for t in trials]
    best = max(range(len(scores)), key=lambda i: (scores[i], -i))
    return {
        "best_trial": best,
        "best_score": scores[best],
        "first_score": scores[0],
        "last_score": scores[-1],
    }


def plot_trials(
    trials: list[dict[str, Any]], transfer: Transfer, path: str | os.PathLike[str], title: str
) -> Path:
    """Save the mean score (± 95% CI) per trial with the paper's reference lines as a PNG.

    Uses matplotlib's Agg canvas directly (no pyplot, no global backend switch); the file is
    written to a temporary name and moved into place.

    Args:
        trials: Per-trial records (``trial``, ``metrics`` with ``mean_score`` and ``ci95``).
        transfer: The pair (its ``paper_grpo`` / ``paper_empo`` give the reference lines).
        path: Target ``.png`` file.
        title: Plot title.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    xs = [int(t["trial"]) for t in trials]
    ys = [float(t["metrics"]["mean_score"]) for t in trials]
    errs = [float(t["metrics"].get("ci95", 0.0)) for t in trials]
    best = [max(ys[: i + 1]) for i in range(len(ys))]
    fig = Figure(figsize=(6.4, 4.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.errorbar(xs, ys, yerr=errs, marker="o", capsize=3, label="mean score of the trial")
    ax.plot(xs, best, linestyle=":", color="black", label="best so far")
    ax.axhline(
        transfer.paper_grpo,
        color="tab:red",
        linestyle="--",
        label=f"paper GRPO (best of 10): {transfer.paper_grpo:g}",
    )
    ax.axhline(
        transfer.paper_empo,
        color="tab:green",
        linestyle="--",
        label=f"paper EMPO² (best of 10): {transfer.paper_empo:g}",
    )
    ax.set_xlabel("trial (memory grows; trial 0 starts empty)")
    ax.set_ylabel(f"score on {transfer.target}")
    ax.set_ylim(-105, 105)
    ax.set_xticks(xs)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    return path


def _build_agent(
    agent: str | Agent, model: str | None, agent_kwargs: dict[str, Any] | None
) -> tuple[Agent, bool]:
    if isinstance(agent, Agent):
        if model is not None or agent_kwargs:
            raise ValueError(
                "model / agent_kwargs apply only when the agent is given by name; got an Agent "
                f"instance {agent.name!r} together with model={model!r}, agent_kwargs="
                f"{agent_kwargs!r}"
            )
        return agent, False
    if not isinstance(agent, str):
        raise TypeError(f"agent must be an agent name or an Agent, got {type(agent).__name__}")
    from empo_gym.agents.registry import make_agent

    kwargs = dict(agent_kwargs or {})
    if model is not None:
        from empo_gym.agents.llm.models import resolve_model

        resolve_model(model)  # a bad name fails before anything (the memory embedder) loads
        kwargs["model"] = str(model)
    return make_agent(agent, OOD_ENV, **kwargs), True


def _memory_size(agent: Agent) -> int | None:
    size = getattr(agent, "memory_size", None)
    return int(size) if size is not None else None


def _trial_record(
    trial: int, res: EvalResult, before: int | None, after: int | None, tips: int, wall: float
) -> dict[str, Any]:
    return {
        "trial": trial,
        "metrics": res.metrics,
        "memory_entries_before": before,
        "memory_entries_after": after,
        "tips_written": tips,
        "wall_s": wall,
        "seeds": res.settings["seeds"],
        "episodes": [{**asdict(r), "trial": trial} for r in res.records],
    }


def run_ood(
    agent_name: str | Agent,
    transfer: str,
    trials: int = DEFAULT_TRIALS,
    model: str | None = None,
    out_dir: str | os.PathLike[str] = DEFAULT_OUT_DIR,
    episodes_per_trial: int = DEFAULT_EPISODES_PER_TRIAL,
    seed: int = 0,
    *,
    split: str = "test",
    max_steps: int | None = None,
    num_envs: int = 1,
    agent_kwargs: dict[str, Any] | None = None,
    env_kwargs: dict[str, Any] | None = None,
    leaderboard_dir: str | os.PathLike[str] | None = DEFAULT_LEADERBOARD_DIR,
    plot: bool = True,
    make_env: Callable[[dict[str, Any]], gym.Env] | None = None,
    on_trial: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run the paper's OOD trials: ``trials`` trials on the target task, memory growing.

    Args:
        agent_name: Registered agent name (``memory-only``, ``naive``, ...) or an Agent. The
            agent must not learn (no weight updates); a memory agent must start empty.
        transfer: ``bio1-bio2``, ``bio2-electricity`` or ``electricity-chemistry``.
        trials: Number of trials (paper: 10).
        model: Model for an agent given by name: the policy trained on the source task (a
            checkpoint directory or file); None = the agent's default model.
        out_dir: Directory of the per-trial JSON, the PNG curve and the memory file.
        episodes_per_trial: Episodes per trial; every trial uses the seeds
            ``seed .. seed + episodes_per_trial - 1`` (the same variations each trial).
        seed: Base seed.
        split: Variation split of the target task (``test``: unseen variations).
        max_steps: Step limit per episode (None: the paper's limit for the task).
        num_envs: Env copies run in lockstep (one batched generation per step).
        agent_kwargs: Extra constructor kwargs for an agent given by name.
        env_kwargs: Extra env constructor kwargs.
        leaderboard_dir: Where the leaderboard entry goes (None: no entry).
        plot: Write the PNG curve.
        make_env: Env factory passed to the harness (tests use toy envs).
        on_trial: Called with each trial's record when it finishes (progress output).

    Returns:
        The summary also saved as ``...-trials.json``: ``transfer``, ``source_task``,
        ``target_task``, ``agent``, ``model``, ``trials`` (per-trial records), ``best_trial``,
        ``best`` (its metrics), ``paper`` (reference scores), ``files`` (paths written).
    """
    pair = get_transfer(transfer)
    trials = _positive_int("trials", trials)
    episodes_per_trial = _positive_int("episodes_per_trial", episodes_per_trial)
    num_envs = _positive_int("num_envs", num_envs)
    check_eval_settings(seed=seed)
    check_writable_dir(out_dir, "out_dir")  # before any model loads or env steps
    if leaderboard_dir is not None:
        check_writable_dir(leaderboard_dir, "leaderboard_dir")
    if max_steps is not None:
        _positive_int("max_steps", max_steps)
    agent, owned = _build_agent(agent_name, model, agent_kwargs)
    try:
        if agent.learns:
            raise ValueError(
                f"agent {agent.name!r} learns; the OOD protocol runs a frozen policy with memory "
                "only (train on the source task first and pass its checkpoint as model=...)"
            )
        if (_memory_size(agent) or 0) > 0:
            raise ValueError(
                f"agent {agent.name!r} starts with {_memory_size(agent)} memory entries; the OOD "
                "protocol's trial 0 must start from an empty memory"
            )
        kwargs: dict[str, Any] = {"stage": "target"}
        if max_steps is not None:
            kwargs["max_steps"] = _positive_int("max_steps", max_steps)
        kwargs.update(env_kwargs or {})
        out = Path(out_dir)
        stem = f"ood-{pair.name}-{agent.name}"
        files = {"trials_json": str(out / f"{stem}-trials.json")}
        summary: dict[str, Any] = {
            "protocol": "EMPO² OOD: frozen policy, memory only, best of N trials",
            "transfer": pair.name,
            "source_task": pair.source,
            "target_task": pair.target,
            "agent": agent.name,
            "model": agent.model,
            "paper": {"grpo": pair.paper_grpo, "empo2": pair.paper_empo, "trials": 10},
            "settings": {
                "trials": trials,
                "episodes_per_trial": episodes_per_trial,
                "seed": seed,
                "split": split,
                "max_steps": max_steps,
                "num_envs": num_envs,
                "env_kwargs": kwargs,
            },
            "trials": [],
            "files": files,
        }
        records: list[dict[str, Any]] = []
        results: list[EvalResult] = []
        t_start = time.perf_counter()
        for trial in range(trials):
            t0 = time.perf_counter()
            before = _memory_size(agent)
            tips_before = len(getattr(agent, "tip_log", []))
            res = evaluate(
                agent,
                OOD_ENV,
                task=pair.name,
                split=split,
                episodes=episodes_per_trial,
                seed=seed,
                num_envs=num_envs,
                env_kwargs=kwargs,
                make_env=make_env,
            )
            flush = getattr(agent, "flush_tips", None)
            if callable(flush):  # the last episodes' tips belong to this trial
                flush()
            tips = len(getattr(agent, "tip_log", [])) - tips_before
            rec = _trial_record(
                trial, res, before, _memory_size(agent), tips, time.perf_counter() - t0
            )
            records.append(rec)
            results.append(res)
            summary["trials"] = records
            summary.update(trial_score_summary(records))
            summary["best"] = records[summary["best_trial"]]["metrics"]
            write_atomic_json(files["trials_json"], summary)
            if on_trial is not None:
                on_trial(rec)
        total_wall = time.perf_counter() - t_start
        store = getattr(agent, "store", None)
        if store is not None and hasattr(store, "save") and _memory_size(agent):
            files["memory"] = str(store.save(out / f"{stem}.memory.safetensors"))
        if plot:
            title = (
                f"OOD {pair.name}: {pair.source} -> {pair.target}\n{agent.name}, "
                f"{agent.model or 'no model'}, {episodes_per_trial} episode(s)/trial"
            )
            files["curve_png"] = str(plot_trials(records, pair, out / f"{stem}.png", title))
        if leaderboard_dir is not None:
            files["leaderboard"] = str(
                _write_leaderboard(agent, pair, summary, results, total_wall, leaderboard_dir)
            )
        summary["wall_s"] = total_wall
        write_atomic_json(files["trials_json"], summary)
        return summary
    finally:
        if owned:
            agent.close()


def _write_leaderboard(
    agent: Agent,
    pair: Transfer,
    summary: dict[str, Any],
    results: list[EvalResult],
    wall: float,
    out_dir: str | os.PathLike[str],
) -> Path:
    best_i = summary["best_trial"]
    best = results[best_i]
    per_trial = [{k: v for k, v in t.items() if k != "episodes"} for t in summary["trials"]]
    metrics = {**best.metrics, "best_trial": best_i, "trials": len(results)}
    config = {
        "agent": agent.config(),
        "protocol": {
            "name": "ood",
            "transfer": pair.name,
            "source_task": pair.source,
            "target_task": pair.target,
            **summary["settings"],
            "selection": "best trial by mean score (paper: best of 10 trials)",
        },
        "per_trial": per_trial,
        "paper_reference": summary["paper"],
        "eval": best.settings,
    }
    entry = build_entry(
        agent=agent.name,
        env=OOD_ENV,
        task=pair.name,
        split=best.settings["split"],
        model=agent.model,
        metrics=metrics,
        config=config,
        seeds=best.settings["seeds"],
        success_rule=best.settings.get("success_rule"),
        wall_time_s=wall,
        episodes=summary["trials"][best_i]["episodes"],
        extra_provenance=best.settings.get("env_provenance") or None,
    )
    return write_entry(entry, out_dir)


#: The transfer names the CLI offers (``--transfer``).
TRANSFER_NAMES = tuple(TRANSFERS)
