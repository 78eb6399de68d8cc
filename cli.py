"""The ``empo-gym`` command line: list envs, run agents, show the leaderboard, benchmark.

Every command is a thin layer over library code (``empo_gym.harness``, ``leaderboard``,
``empo_gym.bench``); bad input ends with a one-line ``error:`` message and exit status 2.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from empo_gym.leaderboard import DEFAULT_RESULTS_DIR

app = typer.Typer(
    name="empo-gym",
    help="Text environments for LLM agents (ScienceWorld, WebShop, OOD) and EMPO²/GRPO agents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
bench_app = typer.Typer(help="Benchmarks (the last output line is one JSON object).")
app.add_typer(bench_app, name="bench")

console = Console(stderr=True)


def _fail(message: str) -> typer.Exit:
    """Print ``error: MESSAGE`` as one line (any line breaks folded, rich markup escaped) and
    return the exit (status 2) to raise."""
    from rich.markup import escape

    line = " ".join(str(message).split())
    console.print(f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def _os_error(exc: OSError) -> str:
    """An OSError as one line naming the file (e.g. a result directory that became read-only)."""
    where = f" {exc.filename!r}" if exc.filename else ""
    return f"cannot write or read{where}: {exc.strerror or exc}; check the path and permissions"


@app.command()
def envs(
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="WebShop: show the original data files this folder provides."
    ),
) -> None:
    """List the environments, their Gymnasium ids, tasks and splits, and WebShop's catalogue."""
    from rich.table import Table

    from empo_gym.registry import env_names, get_env_info

    out = Console(width=max(120, Console().width))
    table = Table(title="empo-gym environments")
    for col in ("env", "gym id", "splits", "tasks", "description"):
        table.add_column(col, no_wrap=col in {"env", "gym id"})
    task_lists = {}
    for name in env_names():
        info = get_env_info(name)
        try:
            task_lists[name] = info.tasks()
        except ImportError:
            task_lists[name] = []
        n = len(task_lists[name])
        table.add_row(
            name, info.gym_id, ", ".join(info.splits), str(n) if n else "-", info.description
        )
    out.print(table)
    for name, tasks in task_lists.items():
        if tasks:
            out.print(f"[bold]{name} tasks:[/] " + ", ".join(tasks), soft_wrap=True)
    out.print(f"[bold]webshop catalogue:[/] {_webshop_catalogue(data_dir)}", soft_wrap=True)


def _webshop_catalogue(data_dir: Path | None) -> str:
    """Which catalogue ``run --env webshop`` uses (with or without ``--data-dir``)."""
    from empo_gym.webshop.loader import WebShopDataError, data_files

    if data_dir is None:
        return (
            "generated (1000 products by default, --num-products N); --data-dir DIR uses the "
            "original data files instead"
        )
    try:
        files = data_files(data_dir, None)
    except WebShopDataError as exc:
        raise _fail(str(exc)) from None
    names = ", ".join(f"{k}={v.name}" for k, v in files.items())
    return f"original data in {data_dir} ({names}; --num-products N|all, default 1000)"


@app.command()
def run(
    agent: str = typer.Option(..., "--agent", help="Agent name (see `empo-gym run --help`)."),
    env: str = typer.Option(
        ...,
        "--env",
        help="Env name (`empo-gym envs` lists them): scienceworld, webshop, ood, doors, "
        "the TextWorldExpress games coin, cookingworld, twc, ...",
    ),
    task: str | None = typer.Option(None, "--task", help="Task (ScienceWorld name or id)."),
    episodes: int | None = typer.Option(None, "--episodes", help="Evaluation episodes."),
    seed: int | None = typer.Option(None, "--seed", help="Base seed."),
    split: str | None = typer.Option(None, "--split", help="Evaluation split."),
    config: Path | None = typer.Option(None, "--config", help="YAML run config."),
    out: Path = typer.Option(
        Path(DEFAULT_RESULTS_DIR), "--out", help="Leaderboard output directory."
    ),
    num_envs: int | None = typer.Option(None, "--num-envs", help="Env copies in lockstep."),
    trajectories: Path | None = typer.Option(
        None, "--trajectories", help="Also write every episode's transitions to this JSONL file."
    ),
    model: str | None = typer.Option(
        None, "--model", help="LLM agents: model alias, local dir, .gguf file or hub id."
    ),
    base_url: str | None = typer.Option(
        None,
        "--base-url",
        help="naive / memory-only: evaluate the model NAME (--model) served by this "
        "OpenAI-compatible server (http://host:port/v1) instead of loading it.",
    ),
    data_dir: Path | None = typer.Option(
        None,
        "--data-dir",
        help="WebShop: folder of the original data files (items_shuffle*.json, "
        "items_ins_v2*.json, items_human_ins.json) instead of the generated catalogue.",
    ),
    num_products: str | None = typer.Option(
        None, "--num-products", help="WebShop: catalogue size, or 'all' (with --data-dir)."
    ),
    reward: str | None = typer.Option(
        None, "--reward", help="WebShop: reward rule 'original' (default) or 'corrected'."
    ),
) -> None:
    """Train the agent when it learns, evaluate it, and write its leaderboard JSON."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from empo_gym.pipeline import run as run_pipeline

    def threads_for(built: Any) -> None:
        if built.learns or built.model is not None:
            _cpu_threads()

    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
    bars: list[Any] = []

    def start_bar(split: str, n: int) -> None:
        progress.start()
        bars.append(progress.add_task("episodes", total=n))

    n_products: int | None | str = "default"
    if num_products is not None:
        if num_products.strip().lower() == "all":
            n_products = None
        elif num_products.strip().isdigit() and int(num_products) > 0:
            n_products = int(num_products)
        else:
            raise _fail(f"--num-products must be a positive int or 'all', got {num_products!r}")
    try:
        outcome = run_pipeline(
            agent,
            env,
            data_dir=data_dir,
            num_products=n_products,
            reward=reward,
            config=config,
            task=task,
            split=split,
            episodes=episodes,
            seed=seed,
            num_envs=num_envs,
            model=model,
            base_url=base_url,
            out_dir=out,
            trajectories_path=trajectories,
            on_agent=threads_for,
            on_evaluation=start_bar,
            on_episode=lambda rec: progress.advance(bars[-1]),
            log=_log,
        )
    except (ValueError, TypeError, RuntimeError, OSError) as exc:
        if bars:  # the error is the last line, not a half-filled bar
            progress.live.transient = True
            progress.stop()
        raise _fail(_os_error(exc) if isinstance(exc, OSError) else str(exc)) from None
    finally:
        if bars:
            progress.stop()
    if outcome is None:  # a non-main process of a distributed training run
        return
    if outcome.initial is not None and outcome.comparison is not None:
        _print_metrics("untrained: ", outcome.initial.result)
        _print_metrics("trained:   ", outcome.result)
        d = outcome.comparison
        verdict = "learned" if d.ci95_low > 0 else "no significant gain"
        console.print(
            f"difference: {d.mean:+.1f} mean score (95% CI {d.ci95_low:+.1f} .. "
            f"{d.ci95_high:+.1f}, paired over {d.episodes} episodes, same seeds): {verdict}"
        )
        curve = (outcome.entry["config"]["agent"].get("training") or {}).get("curve")
        if curve:
            console.print(f"learning curve: {curve}")
        print(outcome.initial.path)
    else:
        _print_metrics("", outcome.result)
    print(outcome.path)


def _print_metrics(label: str, result: Any) -> None:
    """One line of an evaluation's headline metrics (stderr)."""
    m = result.metrics
    console.print(
        f"{label}success_rate={m['success_rate']:.3f} mean_score={m['mean_score']:.1f} "
        f"± {m['ci95']:.1f} over {m['episodes']} episodes ({result.wall_s:.1f} s)"
    )


@app.command()
def ood(
    agent: str = typer.Option("memory-only", "--agent", help="Agent name (run frozen)."),
    transfer: str = typer.Option(
        ..., "--transfer", help="bio1-bio2, bio2-electricity or electricity-chemistry."
    ),
    trials: int = typer.Option(10, "--trials", help="Trials; trial 0 starts with empty memory."),
    model: str | None = typer.Option(
        None, "--model", help="Policy trained on the source task (default: the agent's model)."
    ),
    episodes: int = typer.Option(5, "--episodes", help="Episodes per trial (same seeds each)."),
    out: Path = typer.Option(
        Path("runs/ood"), "--out", help="Directory of the per-trial JSON, PNG curve and memory."
    ),
    leaderboard_out: Path = typer.Option(
        Path(DEFAULT_RESULTS_DIR), "--leaderboard-out", help="Leaderboard output directory."
    ),
    seed: int = typer.Option(0, "--seed", help="Base seed."),
    max_steps: int | None = typer.Option(
        None, "--max-steps", help="Steps per episode (default: the paper's limit)."
    ),
    num_envs: int = typer.Option(1, "--num-envs", help="Env copies in lockstep."),
) -> None:
    """EMPO²'s OOD trials: a frozen agent on a transfer's target task, memory growing."""
    from empo_gym.agents.ood_trials import run_ood

    _cpu_threads()

    def progress(rec: dict[str, Any]) -> None:
        m = rec["metrics"]
        console.print(
            f"trial {rec['trial']}: mean_score={m['mean_score']:.1f} "
            f"success_rate={m['success_rate']:.2f} memory={rec['memory_entries_after']} "
            f"({rec['wall_s']:.0f} s)"
        )

    try:
        summary = run_ood(
            agent,
            transfer,
            trials=trials,
            model=model,
            out_dir=out,
            episodes_per_trial=episodes,
            seed=seed,
            max_steps=max_steps,
            num_envs=num_envs,
            leaderboard_dir=leaderboard_out,
            on_trial=progress,
        )
    except (ValueError, TypeError) as exc:
        raise _fail(str(exc)) from None
    paper = summary["paper"]
    console.print(
        f"best trial {summary['best_trial']}: mean_score={summary['best_score']:.1f} "
        f"(paper, best of 10: GRPO {paper['grpo']}, EMPO² {paper['empo2']})"
    )
    print(json.dumps({k: summary[k] for k in ("transfer", "best_trial", "best_score", "files")}))


@app.command("leaderboard")
def leaderboard_cmd(
    paths: list[Path] = typer.Argument(None, help="Result files or directories."),
    env: str | None = typer.Option(None, "--env", help="Only this env."),
    task: str | None = typer.Option(None, "--task", help="Only this task."),
    agent: str | None = typer.Option(None, "--agent", help="Only this agent."),
    fmt: str = typer.Option("table", "--format", help="table, markdown, json or html."),
    out: Path | None = typer.Option(
        None, "--out", help="html: directory of the page (index.html; required)."
    ),
    hide_reported: bool = typer.Option(
        False, "--hide-reported", help="Leave out the EMPO² paper's reported rows."
    ),
) -> None:
    """Merge result files (and the paper's reported rows) into a table, markdown, JSON or a page."""
    from empo_gym import leaderboard as lb

    if fmt not in lb.FORMATS:
        raise _fail(f"unknown format {fmt!r}; expected one of: {', '.join(lb.FORMATS)}")
    if (fmt == "html") != (out is not None):
        raise _fail(
            f"--out is for --format html only (got --format {fmt}"
            + (f", --out {out})" if out is not None else " without --out); add --out DIR)")
        )
    if not paths and not Path(DEFAULT_RESULTS_DIR).is_dir():
        console.print(
            f"no results yet: {DEFAULT_RESULTS_DIR}/ does not exist here; "
            "run `empo-gym run ...` or pass result files / directories"
        )
        paths = []
        entries: list[dict[str, Any]] = []
    else:
        skipped: list[str] = []

        def skip(exc: Exception) -> None:
            skipped.append(str(exc))
            line = " ".join(str(exc).split())
            console.print(f"warning: skipped {line}", markup=False, highlight=False, soft_wrap=True)

        try:
            entries = lb.load_entries(paths or [Path(DEFAULT_RESULTS_DIR)], on_skip=skip)
        except lb.LeaderboardError as exc:
            raise _fail(str(exc)) from None
        if skipped and not entries:
            raise _fail(f"no readable result file: all {len(skipped)} were skipped (see above)")
    if not hide_reported:
        entries = entries + lb.reported_entries()
    entries = lb.filter_entries(entries, env=env, task=task, agent=agent)
    if fmt == "json":
        print(lb.render_json(entries))
    elif fmt == "markdown":
        print(lb.render_markdown(entries))
    elif fmt == "html":
        from empo_gym.leaderboard.html import write_html

        try:
            page = write_html(entries, out)
        except OSError as exc:
            raise _fail(f"cannot write the page into {out}: {exc.strerror}") from None
        runs = len(lb.measured_runs(entries))
        print(f"wrote {page} ({runs} measured runs, {len(entries) - runs} reported rows)")
    else:
        Console(width=max(160, Console().width)).print(lb.render_table(entries))


def _cpu_threads() -> None:
    """Use one torch thread on CPU unless EMPO_GYM_TORCH_THREADS says otherwise.

    Measured on 2 shared cores: with torch's default 2 threads, a batched generation next to
    a busy JVM or another process took 14 s against 1.6 s with one thread (OpenMP workers spin
    while waiting for a descheduled peer).
    """
    import torch

    raw = os.environ.get("EMPO_GYM_TORCH_THREADS", "1")
    try:
        n = int(raw)
    except ValueError:
        raise _fail(f"EMPO_GYM_TORCH_THREADS must be an int, got {raw!r}") from None
    if n > 0 and not torch.cuda.is_available():
        torch.set_num_threads(n)


def _log(message: str) -> None:
    """Progress line of a long command (stderr, so stdout stays machine-readable)."""
    console.print(message, markup=False, highlight=False)


def _emit(metrics: dict[str, Any]) -> None:
    """Print the benchmark's final line: one JSON object."""
    sys.stdout.flush()
    print(json.dumps(metrics, sort_keys=True))


@bench_app.command("scienceworld")
def bench_scienceworld(
    steps: int = typer.Option(60, "--steps", help="Steps per timing round."),
    rounds: int = typer.Option(5, "--rounds", help="Timing rounds (medians are reported)."),
) -> None:
    """Wrapper overhead, JVM memory (default vs capped heap), resets/s, 2-env vector steps/s."""
    from empo_gym.bench.scienceworld import run_scienceworld_bench

    _emit(run_scienceworld_bench(steps=steps, rounds=rounds, log=_log))


@bench_app.command("twx")
def bench_twx(
    game: str = typer.Option("coin", "--game", help="TextWorldExpress game."),
    steps: int = typer.Option(500, "--steps", help="Steps per timing round."),
    rounds: int = typer.Option(5, "--rounds", help="Timing rounds (medians are reported)."),
) -> None:
    """TextWorldExpress: wrapper vs raw package steps/s, JVM memory, reset vs JVM start."""
    from empo_gym.bench.twx import run_twx_bench
    from empo_gym.twx.games import resolve_game

    try:
        game = resolve_game(game)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    _emit(run_twx_bench(game=game, steps=steps, rounds=rounds, log=_log))


@bench_app.command("webshop")
def bench_webshop(
    sizes: str = typer.Option(
        "1000,100000,1000000", "--sizes", help="Comma-separated catalogue sizes."
    ),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help="Keep the built caches here."),
    memory: bool = typer.Option(True, "--memory/--no-memory", help="Measure 1 vs 64 envs."),
    original_products: int = typer.Option(
        0,
        "--original-products",
        help="Also write this many products in the original's file format and time the "
        "streamed cache build and a fresh load from it (0: skip).",
    ),
) -> None:
    """Catalogue build/load time, search latency, steps/s and memory of 1 vs 64 envs."""
    from empo_gym.bench.webshop import run_original_data_bench, run_webshop_bench

    try:
        size_list = [int(s) for s in sizes.split(",") if s.strip()]
        if not size_list or min(size_list) < 1:
            raise ValueError
    except ValueError:
        raise _fail(f"--sizes must be comma-separated positive ints, got {sizes!r}") from None
    if original_products < 0:
        raise _fail(f"--original-products must be >= 0, got {original_products}")
    metrics = run_webshop_bench(
        sizes=size_list,
        cache_dir=str(cache_dir) if cache_dir else None,
        memory=memory,
        log=_log,
    )
    if original_products:
        metrics.update(run_original_data_bench(original_products, log=_log))
    _emit(metrics)


@bench_app.command("memory")
def bench_memory(
    embedders: str = typer.Option("hashing,minilm", "--embedders", help="Embedders to time."),
    entries: int = typer.Option(10_000, "--entries", help="Store size for query/add timing."),
    big_entries: int = typer.Option(100_000, "--big-entries", help="Large store (hashing)."),
    queries: int = typer.Option(200, "--queries", help="Timed queries per setting."),
    episodes: int = typer.Option(3, "--episodes", help="Wrapped ScienceWorld episodes."),
    task: str = typer.Option("boil", "--task", help="ScienceWorld task for the overhead."),
    seed: int = typer.Option(0, "--seed", help="Seed."),
) -> None:
    """Memory query latency and add rate per embedder, and its share of episode time."""
    from empo_gym.bench.memory import run_memory_bench
    from empo_gym.memory import make_embedder

    names = [e.strip() for e in embedders.split(",") if e.strip()]
    counts = {"--entries": entries, "--big-entries": big_entries, "--queries": queries}
    for flag, value in {**counts, "--episodes": episodes}.items():
        if value < 1:
            raise _fail(f"{flag} must be a positive int, got {value}")
    if seed < 0:
        raise _fail(f"--seed must be an int >= 0, got {seed}")
    try:
        from empo_gym.scienceworld.tasks import resolve_task

        task = resolve_task(task)
        for name in names:
            if name not in {"hashing", "minilm"}:
                make_embedder(name)  # raises the library's error listing valid names
    except ValueError as exc:
        raise _fail(str(exc)) from None
    _emit(
        run_memory_bench(
            embedders=names,
            entries=entries,
            big_entries=big_entries,
            queries=queries,
            episodes=episodes,
            task=task,
            seed=seed,
            log=_log,
        )
    )


@bench_app.command("rollout")
def bench_rollout(
    model: str | None = typer.Option(None, "--model", help="Model (default: SmolLM2-135M)."),
    env: str = typer.Option("synthetic", "--env", help="synthetic or scienceworld."),
    task: str | None = typer.Option(None, "--task", help="ScienceWorld task (--env scienceworld)."),
    group_size: int = typer.Option(8, "--group-size", help="Rollouts per group (G)."),
    turns: int = typer.Option(4, "--turns", help="Turns per episode."),
    max_new_tokens: int = typer.Option(32, "--max-new-tokens", help="Tokens per turn."),
    threads: int | None = typer.Option(1, "--threads", help="torch CPU threads (0: default)."),
    seed: int = typer.Option(0, "--seed", help="Seed."),
) -> None:
    """Batched vs sequential rollout throughput and the bare-generate ceiling (same episodes)."""
    from empo_gym.bench.rollout import run_rollout_bench

    if env not in {"synthetic", "scienceworld"}:
        raise _fail(f"unknown bench env {env!r}; expected one of: synthetic, scienceworld")
    if group_size < 1 or turns < 1 or max_new_tokens < 1:
        raise _fail("--group-size, --turns and --max-new-tokens must be positive")
    try:
        result = run_rollout_bench(
            model,
            env=env,
            task=task,
            group_size=group_size,
            turns=turns,
            max_new_tokens=max_new_tokens,
            seed=seed,
            threads=threads or None,
            log=_log,
        )
    except ValueError as exc:
        raise _fail(str(exc)) from None
    _emit(result)


@bench_app.command("train")
def bench_train(
    env: str = typer.Option("webshop", "--env", help="Env to train on (webshop needs no JVM)."),
    task: str | None = typer.Option(None, "--task", help="Task (ScienceWorld)."),
    iterations: int = typer.Option(4, "--iterations", help="Iterations per algorithm."),
    warmup: int = typer.Option(1, "--warmup", help="Leading iterations left out."),
    model: str | None = typer.Option(None, "--model", help="Model (default: SmolLM2-135M)."),
    seed: int = typer.Option(0, "--seed", help="Seed."),
    tasks_per_iter: int | None = typer.Option(None, "--tasks-per-iter", help="B (quick: 2)."),
    group_size: int | None = typer.Option(None, "--group-size", help="G (quick: 4)."),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Steps per episode."),
    equal_update_work: bool = typer.Option(
        True,
        "--equal-update-work/--skip-zero-adv",
        help="Forward zero-advantage turns in both runs (verl's behaviour) or skip them.",
    ),
    rollout_backend: str = typer.Option(
        "local",
        "--rollout-backend",
        help="local: GRPO vs EMPO² (local rollouts). vllm: GRPO with local vs vLLM rollouts "
        "side by side, and the weight-sync time (starts a server from .venv-vllm).",
    ),
    vllm_url: list[str] = typer.Option(
        [], "--vllm-url", help="Running vLLM servers for --rollout-backend vllm (repeatable)."
    ),
) -> None:
    """GRPO vs EMPO² seconds per iteration at equal settings, memory share, update tokens/s;
    with ``--rollout-backend vllm``, local vs vLLM rollouts instead.

    The two runs alternate iteration by iteration so both see the same machine load.
    """
    from empo_gym.bench.train import run_backend_bench, run_train_bench

    if iterations <= warmup:
        raise _fail(f"--iterations ({iterations}) must exceed --warmup ({warmup})")
    if rollout_backend not in ("local", "vllm"):
        raise _fail(f"--rollout-backend {rollout_backend!r}; expected 'local' or 'vllm'")
    _cpu_threads()
    try:
        overrides = {
            k: v
            for k, v in (
                ("tasks_per_iter", tasks_per_iter),
                ("group_size", group_size),
                ("max_steps", max_steps),
            )
            if v is not None
        }
        if rollout_backend == "vllm":
            _emit(
                run_backend_bench(
                    env,
                    task,
                    iterations=iterations,
                    warmup=warmup,
                    model=model,
                    seed=seed,
                    vllm_urls=vllm_url or None,
                    overrides={"skip_zero_advantage": not equal_update_work, **overrides},
                    log=_log,
                )
            )
            return
        result = run_train_bench(
            env,
            task,
            iterations=iterations,
            warmup=warmup,
            model=model,
            seed=seed,
            equal_update_work=equal_update_work,
            overrides=overrides,
            log=_log,
        )
    except ValueError as exc:
        raise _fail(str(exc)) from None
    _emit(result)


@bench_app.command("explore")
def bench_explore(
    seeds: int | None = typer.Option(None, "--seeds", help="Runs per arm (default 5)."),
    iterations: int | None = typer.Option(None, "--iterations", help="Iterations (40)."),
    depth: int | None = typer.Option(None, "--depth", help="Doors rooms to pass (5)."),
    eval_every: int | None = typer.Option(None, "--eval-every", help="Evaluate every N (5)."),
    sweep: list[str] = typer.Option(
        [],
        "--sweep",
        help="Ablation KNOB=V1,V2 (memory_prob, off_policy_prob, intrinsic=on,off, "
        "masking=on,off); repeat the option for several knobs.",
    ),
    ood: bool = typer.Option(True, "--ood/--no-ood", help="Run the OOD trials afterwards."),
    config: Path | None = typer.Option(None, "--config", help="YAML of bench settings."),
    out: str | None = typer.Option(None, "--out", help="Directory of JSON and PNGs."),
) -> None:
    """EMPO² vs GRPO on the exploration-hard Doors env: success curves with 95 % CIs.

    Both arms train the same small context-reading policy with equal settings over several
    seeds (interleaved); the last line is the JSON summary, the plots go to --out.
    """
    from empo_gym.atomic_io import check_writable_dir
    from empo_gym.bench.explore import (
        ExploreBenchConfig,
        parse_sweep,
        run_explore_bench,
    )
    from empo_gym.yaml_config import from_dict, load_yaml

    _cpu_threads()
    try:
        base = load_yaml(ExploreBenchConfig, config) if config is not None else None
        given = {
            "seeds": seeds,
            "iterations": iterations,
            "depth": depth,
            "eval_every": eval_every,
            "output_dir": out,
        }
        settings = {
            **(dataclasses.asdict(base) if base is not None else {}),
            **{k: v for k, v in given.items() if v is not None},
        }
        bench = from_dict(ExploreBenchConfig, settings, "bench explore")
        check_writable_dir(bench.output_dir, "--out")  # before hours of training, not after
        result = run_explore_bench(bench, sweep=parse_sweep(sweep), ood=ood, log=_log)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    _emit({k: v for k, v in result.items() if k not in ("grpo", "empo")})


@app.command()
def plan(
    config: Path = typer.Option(..., "--config", help="Training YAML (e.g. baselines/*.yaml)."),
    gpus: int = typer.Option(8, "--gpus", help="Training GPUs (one process each)."),
    gpu_mem: float = typer.Option(80.0, "--gpu-mem", help="Memory of one GPU in GB."),
    agent: str | None = typer.Option(None, "--agent", help="grpo | empo (default: the file's)."),
    env: str | None = typer.Option(None, "--env", help="Env (default: the file's)."),
) -> None:
    """Per-GPU memory estimate of a training config, and whether it fits (nothing downloaded)."""
    from empo_gym.tools.plan import format_plan, load_plan_config, plan_memory

    try:
        cfg = load_plan_config(config, agent=agent, env=env)
        result = plan_memory(cfg, gpus, gpu_mem)
    except (ValueError, OSError) as exc:
        raise _fail(str(exc)) from None
    Console(width=max(100, Console().width)).print(format_plan(result, title=cfg.model))
    if not result.fits:
        raise typer.Exit(code=1)


@app.command()
def plot(
    runs: list[str] = typer.Argument(..., help="LABEL=RUN_DIR pairs (or bare run dirs)."),
    out: Path = typer.Option(Path("curves.png"), "--out", help="PNG to write."),
    metrics: str = typer.Option("success,return", "--metrics", help="Metrics to plot."),
    smooth: int = typer.Option(1, "--smooth", help="Moving-average window."),
) -> None:
    """Learning curves (e.g. EMPO² and GRPO on one figure) from runs' metrics.jsonl."""
    from empo_gym.agents.training.curves import plot_curves

    labelled: dict[str, str] = {}
    for item in runs:
        label, _, path = item.partition("=") if "=" in item else (Path(item).name, "", item)
        if not (Path(path) / "metrics.jsonl").exists() and not str(path).endswith(".jsonl"):
            raise _fail(f"{path!r} has no metrics.jsonl; expected a training run directory")
        labelled[label] = path
    try:
        png = plot_curves(labelled, out, metrics=tuple(metrics.split(",")), smooth=smooth)
    except (ValueError, KeyError) as exc:
        raise _fail(str(exc)) from None
    print(png)


def main() -> None:  # pragma: no cover - console entry point alternative
    """Run the app (``python cli.py ...``)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
