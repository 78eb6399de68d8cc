"""The run pipeline: build an agent, train it when it learns, evaluate it, write its row.

``empo-gym run`` is this module behind a parser; from Python::

    from empo_gym.pipeline import run
    outcome = run("empo", "webshop", config="baselines/empo_webshop_quick.yaml")
    outcome.metrics["success_rate"], outcome.path
    outcome.comparison  # a learning agent: trained minus untrained, paired over the same seeds

A learning agent is evaluated twice on the same episodes (seeds): untrained, then trained. Both
rows are written (the untrained one with ``checkpoint: "initial"``, the trained one with
``checkpoint: "trained"`` and the paired difference as ``comparison``), so every training run
shows whether it learned.

This is the top layer: it imports the agents, the harness and the leaderboard; nothing below
imports it (the envs, memory and harness load no agent code).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from empo_gym.atomic_io import check_writable_dir, check_writable_file
from empo_gym.comparison import PairedDifference, compare_results
from empo_gym.harness import EpisodeRecord, EvalResult, check_eval_settings, evaluate
from empo_gym.leaderboard import DEFAULT_RESULTS_DIR, entry_from_result, write_entry
from empo_gym.registry import get_env_info
from empo_gym.yaml_config import from_dict, load_yaml

__all__ = ["DEFAULT_EPISODES", "InitialEvaluation", "RunConfig", "RunOutcome", "run"]
#: Evaluation episodes when neither the caller, the config nor the agent says how many.
DEFAULT_EPISODES = 10


@dataclass
class RunConfig:
    """Settings of a run (``empo-gym run --config FILE``); :func:`run`'s arguments override."""

    agent: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the agent's constructor (a learning agent's trainer settings)."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments of the environment's constructor."""
    task: str | None = None
    """Task of the env (ScienceWorld task name or id; OOD transfer name)."""
    split: str | None = None
    """Evaluation split (default: the env's default split)."""
    episodes: int | None = None
    """Evaluation episodes (default: the agent's own, e.g. a trainer's ``eval_episodes``, else
    10)."""
    seed: int = 0
    """Base seed; episode i resets with seed + i."""
    num_envs: int = 1
    """Env copies run in lockstep."""


@dataclass
class InitialEvaluation:
    """A learning agent's evaluation before training, and its leaderboard row."""

    result: EvalResult
    """Per-episode records and their aggregate (the untrained policy)."""
    entry: dict[str, Any]
    """The row written (``checkpoint: "initial"``)."""
    path: Path
    """Where the row was written."""


@dataclass
class RunOutcome:
    """What a finished run produced."""

    agent: Any
    """The agent (closed; its ``config()`` is in the entry)."""
    result: EvalResult
    """Per-episode records and their aggregate."""
    entry: dict[str, Any]
    """The leaderboard row written."""
    path: Path
    """Where the row was written."""
    initial: InitialEvaluation | None = None
    """A learning agent's evaluation before training (same episodes), else None."""
    comparison: PairedDifference | None = None
    """A learning agent's trained minus untrained score, paired per episode, else None."""

    @property
    def metrics(self) -> dict[str, Any]:
        """The aggregate metrics (``success_rate``, ``mean_score``, ``ci95``, ...)."""
        return self.result.metrics


def _initial_file(path: str | os.PathLike[str] | None) -> Path | None:
    """Where the untrained evaluation's transitions go (``x.jsonl`` -> ``x.initial.jsonl``).

    Example:
        >>> _initial_file("runs/x.jsonl").as_posix(), _initial_file(None)
        ('runs/x.initial.jsonl', None)
    """
    if path is None:
        return None
    path = Path(path)
    return path.with_name(f"{path.stem}.initial{path.suffix}")


def _load_config(config: RunConfig | str | os.PathLike[str] | None) -> RunConfig:
    if config is None:
        return from_dict(RunConfig, {})
    if isinstance(config, RunConfig):
        return config
    return load_yaml(RunConfig, config)


def _check_served_agent(agent: str, env: str, base_url: str) -> None:
    """Raise ValueError unless agent ``agent`` can act with a model served at ``base_url``."""
    import inspect

    from empo_gym.agents.registry import agent_class

    cls = agent_class(agent, env)
    if "base_url" not in inspect.signature(cls).parameters:
        kind = "trains its own model" if cls.learns else "takes no served model"
        raise ValueError(
            f"base_url={base_url!r} (--base-url) applies to agents that act with a served "
            f"model (naive, memory-only); agent {agent!r} {kind}: drop --base-url"
        )


def run(
    agent: str,
    env: str,
    *,
    config: RunConfig | str | os.PathLike[str] | None = None,
    task: str | None = None,
    split: str | None = None,
    episodes: int | None = None,
    seed: int | None = None,
    num_envs: int | None = None,
    model: str | None = None,
    base_url: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    num_products: int | None | str = "default",
    reward: str | None = None,
    out_dir: str | os.PathLike[str] = DEFAULT_RESULTS_DIR,
    trajectories_path: str | os.PathLike[str] | None = None,
    on_agent: Callable[[Any], None] | None = None,
    on_episode: Callable[[EpisodeRecord], None] | None = None,
    on_evaluation: Callable[[str, int], None] | None = None,
    log: Callable[[str], None] = print,
) -> RunOutcome | None:
    """Train ``agent`` on ``env`` when it learns, evaluate it, and write its leaderboard JSON.

    A learning agent is also evaluated before training on the same episodes; both rows are
    written and the outcome carries the paired difference (see the module docstring).

    Args:
        agent: Agent name (``random``, ``oracle``, ``naive``, ``memory-only``, ``grpo``, ...).
        env: Env short name (``scienceworld``, ``webshop``, ``ood``, or one registered).
        config: A :class:`RunConfig`, a YAML file of one, or None for the defaults.
        task, split, episodes, seed, num_envs: Override the config's values.
        model: LLM agents: model alias, local dir, ``.gguf`` file or hub id (with
            ``base_url``: the name the server serves).
        base_url: Evaluate the model an OpenAI-compatible server serves at this URL
            (``http://host:port/v1``) instead of loading it: agents that act with a served
            model only (``naive``, ``memory-only``), never a learning one.
        data_dir: WebShop only: folder of the original data files (``items_shuffle*.json``,
            ``items_ins_v2*.json``, ``items_human_ins.json``) instead of the generated
            catalogue.
        num_products: WebShop only: catalogue size (None: every product of ``data_dir``);
            ``"default"`` keeps the config's / env's value.
        reward: WebShop only: ``"original"`` (default) or ``"corrected"`` reward rule.
        out_dir: Directory of the leaderboard row.
        trajectories_path: Also write every evaluation episode's transitions to this JSONL file
            (a learning agent's untrained episodes go to ``NAME.initial.jsonl`` beside it).
        on_agent: Called with the agent once it is built, before training (e.g. to set the
            process's torch threads for model-backed agents).
        on_episode: Called after each evaluation episode (progress).
        on_evaluation: Called before each evaluation with the split and the episode count
            (twice for a learning agent: untrained, then trained).
        log: Progress lines.

    Returns:
        The outcome, or None on a non-main process of a distributed training run (only the
        main process evaluates and writes the row).

    Every argument, the model name and every output path are checked before a model loads
    or an env steps, so a bad value fails at once instead of after training.

    Raises:
        ValueError: A bad name, task, split, count, seed, output path or config value (the
            message names it).
    """
    from empo_gym.agents.registry import make_agent

    cfg = _load_config(config)
    info = get_env_info(env)
    task = task if task is not None else cfg.task
    split = split or cfg.split or info.default_split
    info.env_kwargs(task, split)  # validates task and split before anything loads
    seed = seed if seed is not None else cfg.seed
    num_envs = num_envs if num_envs is not None else cfg.num_envs
    check_eval_settings(
        episodes=episodes if episodes is not None else cfg.episodes, seed=seed, num_envs=num_envs
    )
    check_writable_dir(out_dir, "out_dir")
    env_kwargs = dict(cfg.env_kwargs)
    for key, value, unset in (
        ("data_dir", data_dir, None),
        ("num_products", num_products, "default"),
        ("reward", reward, None),
    ):
        if value is unset:
            continue
        if env != "webshop":
            raise ValueError(f"{key} applies to env 'webshop' only, not {env!r}; drop it")
        env_kwargs[key] = os.fspath(value) if key == "data_dir" else value
    agent_kwargs = dict(cfg.agent)
    if model is not None:
        agent_kwargs["model"] = model
    if base_url is not None:
        agent_kwargs["base_url"] = base_url
    if agent_kwargs.get("base_url") is not None:
        _check_served_agent(agent, env, agent_kwargs["base_url"])
    the_agent = make_agent(agent, env, **agent_kwargs)
    if the_agent.supported_envs and env not in the_agent.supported_envs:
        raise ValueError(
            f"agent {agent!r} does not support env {env!r}; "
            f"it supports: {', '.join(the_agent.supported_envs)}"
        )
    if trajectories_path is not None:
        check_writable_file(trajectories_path, "trajectories_path")
        if the_agent.learns:
            check_writable_file(_initial_file(trajectories_path), "trajectories_path")
    if agent_kwargs.get("model") is not None and "base_url" not in agent_kwargs:
        from empo_gym.agents.llm.models import resolve_model

        resolve_model(agent_kwargs["model"])  # a name only: nothing loads yet
    where = f"{env} / {task}" if task else env

    def evaluate_agent(
        label: str, n: int, trajectories: str | os.PathLike[str] | None
    ) -> EvalResult:
        log(f"evaluating {label} on {where} ({split} split, {n} episodes)")
        if on_evaluation is not None:
            on_evaluation(split, n)
        return evaluate(
            the_agent,
            env,
            task=task,
            split=split,
            episodes=n,
            seed=seed,
            num_envs=num_envs,
            env_kwargs=env_kwargs,
            trajectories_path=trajectories,
            on_episode=on_episode,
        )

    initial: tuple[EvalResult, dict[str, Any]] | None = None
    try:
        if the_agent.learns:  # its env-specific preset may set its evaluation episodes; it
            # checks (and locks) its run directory
            the_agent.prepare(env, task)
        n = next(
            (x for x in (episodes, cfg.episodes, the_agent.eval_episodes) if x is not None),
            DEFAULT_EPISODES,
        )
        check_eval_settings(episodes=n)
        if on_agent is not None:
            on_agent(the_agent)
        if the_agent.learns:
            if the_agent.is_main_process:  # the untrained policy, on the trained one's episodes
                before = evaluate_agent(f"untrained {agent}", n, _initial_file(trajectories_path))
                m = before.metrics
                log(
                    f"untrained {agent}: success_rate={m['success_rate']:.3f} "
                    f"mean_score={m['mean_score']:.1f}"
                )
                # the row is built now: its config is the agent's before training
                initial = (before, entry_from_result(before, agent=the_agent, checkpoint="initial"))
            log(f"training {agent} on {where}")
            the_agent.train(env, task)
            if not the_agent.is_main_process:
                log("training done on this process; the main process evaluates")
                return None
        result = evaluate_agent(
            f"trained {agent}" if the_agent.learns else agent, n, trajectories_path
        )
    finally:
        the_agent.close()
    if initial is None:
        entry = entry_from_result(result, agent=the_agent)
        return RunOutcome(
            agent=the_agent, result=result, entry=entry, path=Path(write_entry(entry, out_dir))
        )
    before, initial_entry = initial
    comparison = compare_results(before, result)
    entry = entry_from_result(
        result,
        agent=the_agent,
        checkpoint="trained",
        comparison={"baseline": "initial", **comparison.as_dict()},
    )
    initial_path = Path(write_entry(initial_entry, out_dir))
    return RunOutcome(
        agent=the_agent,
        result=result,
        entry=entry,
        path=Path(write_entry(entry, out_dir)),
        initial=InitialEvaluation(before, initial_entry, initial_path),
        comparison=comparison,
    )
