"""The shared evaluation harness: run an agent on an env for N seeded episodes.

Episodes run on ``num_envs`` environment copies in lockstep: every round the agent answers all
active slots with one ``act_batch`` call (one batched generation for LLM agents) and the envs
step in parallel threads (ScienceWorld's work happens in its JVM, so threads overlap it).
Episode ``i`` always resets with seed ``seed + i``, so results do not depend on ``num_envs``.

Example:
    >>> from empo_gym.agents.scripted.random_agent import RandomAgent
    >>> res = evaluate(RandomAgent(), "webshop", episodes=2, num_envs=2)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym

import empo_gym  # noqa: F401  (registers the env ids)
from empo_gym.atomic_io import atomic_path, check_writable_file
from empo_gym.protocols import missing_members
from empo_gym.registry import get_env_info
from empo_gym.stats import t_interval

#: The harness adds the episode's reset seed to the first ``info`` under this key, so agents with
#: their own randomness can seed per episode and results do not depend on ``num_envs``.
EPISODE_SEED_KEY = "episode_seed"


@runtime_checkable
class EvalAgent(Protocol):
    """What the harness drives: any object with these members is an agent here.

    ``empo_gym.agents.base.Agent`` implements it for empo-gym's own agents; code of your own
    needs no base class. The harness runs ``n`` envs in lockstep and addresses each by its
    *slot* index (``0..n-1``), so an agent can keep per-episode state and answer all active
    slots with one batched call.
    """

    #: Name recorded in results and error messages.
    name: str
    #: Env short names the agent supports; empty = any.
    supported_envs: tuple[str, ...]

    def env_kwargs(self, env_name: str) -> dict[str, Any]:
        """Extra constructor kwargs the agent needs from the env (e.g. ``oracle_info=True``)."""
        ...

    def reset(self, slot: int, observation: Any, info: dict[str, Any]) -> None:
        """Start a new episode in ``slot`` with its first observation and info."""
        ...

    def act_batch(
        self, slots: Sequence[int], observations: Sequence[Any], infos: Sequence[dict[str, Any]]
    ) -> list[str]:
        """One action per active slot."""
        ...

    def observe(
        self,
        slot: int,
        action: str,
        observation: Any,
        reward: float,
        terminated: bool,
        truncated: bool,
        info: dict[str, Any],
    ) -> None:
        """The outcome of the last action in ``slot``."""
        ...


#: ``info`` keys whose values say *how* a result was computed (which noun extractor and reward
#: rule scored a WebShop purchase over which catalogue, which embedder the memory used); they go
#: into the leaderboard provenance.
PROVENANCE_INFO_KEYS = (
    "noun_method",
    "reward_rule",
    "catalogue",
    "embedder",
    "scienceworld_version",
)


@runtime_checkable
class FiniteSplit(Protocol):
    """An env whose split holds a fixed list of tasks that seeds ``0..split_size - 1`` enumerate
    (WebShop's goals); other seeds would wrap around and repeat tasks."""

    split_size: int


def _check_enough_tasks(env: gym.Env, name: str, split: str, seed: int, episodes: int) -> None:
    """Raise when the episodes' seeds run past the split's tasks (they would repeat)."""
    inner = env.unwrapped
    if not isinstance(inner, FiniteSplit):
        return
    size = inner.split_size
    if seed < 0 or seed + episodes > size:
        raise ValueError(
            f"{name} split {split!r} has {size} goals, but {episodes} episodes from seed {seed} "
            f"need goals {seed}..{seed + episodes - 1}; use at most {max(size - max(seed, 0), 0)} "
            "episodes from this seed, a lower --seed, or a larger catalogue / another split"
        )


@dataclass
class EpisodeRecord:
    """The outcome of one evaluation episode."""

    episode: int
    seed: int
    task: str | None
    score: float
    success: bool
    steps: int
    episode_return: float
    terminated: bool
    truncated: bool
    invalid_actions: int
    wall_s: float
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class EvalResult:
    """Per-episode records, their aggregate and the settings that produced them."""

    records: list[EpisodeRecord]
    metrics: dict[str, Any]
    settings: dict[str, Any]
    wall_s: float


def aggregate(records: list[EpisodeRecord]) -> dict[str, Any]:
    """Success rate, mean score, its standard deviation and 95% confidence half-width.

    ``ci95`` is the Student-t half-width of the mean score's 95 % interval
    (:func:`empo_gym.stats.t_interval`, the interval of every bench and comparison; 0 for a
    single episode).

    Example:
        >>> recs = [EpisodeRecord(i, i, "t", s, s > 70, 5, s / 100, True, False, 0, 0.1)
        ...         for i, s in enumerate([100.0, 50.0])]
        >>> m = aggregate(recs)
        >>> m["success_rate"], m["mean_score"], round(m["score_std"], 2), round(m["ci95"], 2)
        (0.5, 75.0, 35.36, 317.66)
    """
    if not records:
        raise ValueError("cannot aggregate zero episodes; expected at least one record")
    scores = [r.score for r in records]
    n = len(scores)
    std = statistics.stdev(scores) if n > 1 else 0.0
    return {
        "success_rate": sum(r.success for r in records) / n,
        "mean_score": statistics.fmean(scores),
        "score_std": std,
        "ci95": t_interval(scores)[1] if n > 1 else 0.0,
        "episodes": n,
        "mean_steps": statistics.fmean(r.steps for r in records),
        "mean_return": statistics.fmean(r.episode_return for r in records),
        "invalid_action_rate": sum(r.invalid_actions for r in records)
        / max(1, sum(r.steps for r in records)),
    }


class _Slot:
    """Book-keeping of one env copy while an episode runs in it."""

    def __init__(self, env: gym.Env):
        self.env = env
        self.episode = -1
        self.seed = 0
        self.obs: Any = None
        self.info: dict[str, Any] = {}
        self.steps = 0
        self.ret = 0.0
        self.invalid = 0
        self.t0 = 0.0
        self.transitions: list[dict[str, Any]] = []


def check_eval_settings(
    *, episodes: int | None = None, seed: int | None = None, num_envs: int | None = None
) -> None:
    """Check an evaluation's counts and seed (None: not given); callers run it before any work.

    Raises:
        ValueError: One line naming the bad value and what is expected.

    Example:
        >>> check_eval_settings(episodes=5, seed=0, num_envs=2)
        >>> check_eval_settings(seed=-5)
        Traceback (most recent call last):
        ...
        ValueError: seed must be an int >= 0 (episode i resets with seed + i), got -5
    """
    if episodes is not None and (not isinstance(episodes, int) or episodes < 1):
        raise ValueError(f"episodes must be a positive int, got {episodes!r}")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        raise ValueError(f"seed must be an int >= 0 (episode i resets with seed + i), got {seed!r}")
    if num_envs is not None and (not isinstance(num_envs, int) or num_envs < 1):
        raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")


def evaluate(
    agent: EvalAgent,
    env: str,
    *,
    task: str | None = None,
    split: str | None = None,
    episodes: int = 10,
    seed: int = 0,
    num_envs: int = 1,
    env_kwargs: dict[str, Any] | None = None,
    trajectories_path: str | os.PathLike[str] | None = None,
    on_episode: Callable[[EpisodeRecord], None] | None = None,
    make_env: Callable[[dict[str, Any]], gym.Env] | None = None,
) -> EvalResult:
    """Evaluate ``agent`` on ``episodes`` episodes of env ``env`` (a short name).

    Args:
        agent: Any :class:`EvalAgent` (e.g. an ``empo_gym.agents`` agent).
        env: Short env name (``scienceworld``, ``webshop``, ``ood``).
        task: Task of the env (``--task``), validated against the env's task list.
        split: Split to evaluate on (default: the env's default split).
        episodes: Number of episodes; episode ``i`` resets with seed ``seed + i``.
        seed: Base seed.
        num_envs: Env copies run in lockstep.
        env_kwargs: Extra constructor kwargs (merged over the agent's ``env_kwargs``).
        trajectories_path: When given, one JSON line per episode with every transition.
        on_episode: Callback after each finished episode (progress bars).
        make_env: Factory ``kwargs -> env`` replacing ``gymnasium.make`` (wrappers, tests).

    Returns:
        The per-episode records and the aggregate metrics.
    """
    info = get_env_info(env)
    split = split or info.default_split
    check_eval_settings(episodes=episodes, seed=seed, num_envs=num_envs)
    if trajectories_path is not None:
        check_writable_file(trajectories_path, "trajectories_path")
    if not isinstance(agent, EvalAgent):
        missing = missing_members(agent, EvalAgent)
        raise TypeError(
            f"agent {type(agent).__name__} is not an EvalAgent: it lacks {', '.join(missing)}; "
            "subclass empo_gym.agents.base.Agent or define those members"
        )
    if agent.supported_envs and env not in agent.supported_envs:
        raise ValueError(
            f"agent {agent.name!r} does not support env {env!r}; "
            f"it supports: {', '.join(agent.supported_envs)}"
        )
    kwargs = info.env_kwargs(task, split)
    kwargs.update(agent.env_kwargs(env))
    kwargs.update(env_kwargs or {})
    factory = make_env or (lambda kw: gym.make(info.gym_id, **kw))
    num_envs = min(num_envs, episodes)
    slots = [_Slot(factory(dict(kwargs))) for _ in range(num_envs)]
    _check_enough_tasks(slots[0].env, env, split, seed, episodes)
    records: list[EpisodeRecord] = []
    success_rules: set[str] = set()
    env_provenance: dict[str, set[str]] = {}
    traj_file = None
    # the transitions go to a temp file that replaces trajectories_path only once the evaluation
    # finished: a failed run leaves an existing file as it was
    traj_files = contextlib.ExitStack()
    if trajectories_path is not None:
        traj_tmp = traj_files.enter_context(atomic_path(trajectories_path, suffix=".jsonl"))
        traj_file = traj_files.enter_context(open(traj_tmp, "w", encoding="utf-8"))  # noqa: SIM115
    t_start = time.perf_counter()

    def start(i: int, episode: int) -> None:
        slot = slots[i]
        slot.episode, slot.seed = episode, seed + episode
        slot.t0 = time.perf_counter()
        slot.obs, info = slot.env.reset(seed=slot.seed)
        slot.info = {**info, EPISODE_SEED_KEY: slot.seed}
        slot.steps, slot.ret, slot.invalid, slot.transitions = 0, 0.0, 0, []
        agent.reset(i, slot.obs, slot.info)

    try:
        with ThreadPoolExecutor(max_workers=num_envs) as pool:
            list(pool.map(start, range(num_envs), range(num_envs)))
            next_episode = num_envs
            active = list(range(num_envs))
            while active:
                actions = agent.act_batch(
                    active, [slots[i].obs for i in active], [slots[i].info for i in active]
                )
                if len(actions) != len(active):
                    raise RuntimeError(
                        f"agent {agent.name!r} returned {len(actions)} actions for "
                        f"{len(active)} active envs"
                    )
                outcomes = list(pool.map(lambda i, a: slots[i].env.step(a), active, actions))
                still: list[int] = []
                for i, action, (obs, reward, term, trunc, step_info) in zip(
                    active, actions, outcomes, strict=True
                ):
                    slot = slots[i]
                    slot.steps += 1
                    slot.ret += float(reward)
                    slot.invalid += bool(step_info.get("invalid_action", False))
                    if traj_file is not None:
                        slot.transitions.append(
                            {"action": action, "observation": _jsonable(obs), "reward": reward}
                        )
                    agent.observe(i, action, obs, float(reward), term, trunc, step_info)
                    slot.obs, slot.info = obs, step_info
                    if term or trunc:
                        rec = EpisodeRecord(
                            episode=slot.episode,
                            seed=slot.seed,
                            task=step_info.get("task"),
                            score=float(step_info.get("score", 0.0)),
                            success=bool(step_info.get("success", False)),
                            steps=slot.steps,
                            episode_return=slot.ret,
                            terminated=bool(term),
                            truncated=bool(trunc),
                            invalid_actions=slot.invalid,
                            wall_s=time.perf_counter() - slot.t0,
                            extra=_episode_extra(step_info),
                        )
                        records.append(rec)
                        if step_info.get("success_rule"):
                            success_rules.add(str(step_info["success_rule"]))
                        for key in PROVENANCE_INFO_KEYS:
                            if step_info.get(key) is not None:
                                env_provenance.setdefault(key, set()).add(str(step_info[key]))
                        if traj_file is not None:
                            line = {**asdict(rec), "transitions": slot.transitions}
                            traj_file.write(json.dumps(line, ensure_ascii=False) + "\n")
                            traj_file.flush()
                        if on_episode is not None:
                            on_episode(rec)
                        if next_episode < episodes:
                            start(i, next_episode)
                            next_episode += 1
                            still.append(i)
                    else:
                        still.append(i)
                active = still
    except BaseException as exc:
        traj_files.__exit__(type(exc), exc, exc.__traceback__)
        raise
    finally:
        for slot in slots:
            slot.env.close()
    traj_files.close()
    records.sort(key=lambda r: r.episode)
    settings = {
        "env": env,
        "gym_id": info.gym_id,
        "task": info.canonical_task(task) if task is not None else None,
        "split": split,
        "episodes": episodes,
        "seed": seed,
        "seeds": [seed + i for i in range(episodes)],
        "num_envs": num_envs,
        "env_kwargs": kwargs,
        "success_rule": " | ".join(sorted(success_rules)) or None,
        "env_provenance": {k: " | ".join(sorted(v)) for k, v in env_provenance.items()},
    }
    return EvalResult(
        records=records,
        metrics=aggregate(records),
        settings=settings,
        wall_s=time.perf_counter() - t_start,
    )


def _jsonable(obs: Any) -> Any:
    if isinstance(obs, dict):
        return {k: _jsonable(v) for k, v in obs.items()}
    if isinstance(obs, (list, tuple)):
        return [_jsonable(v) for v in obs]
    if isinstance(obs, (str, int, float, bool)) or obs is None:
        return obs
    return str(obs)


def _episode_extra(info: dict[str, Any]) -> dict[str, Any]:
    keep = ("variation", "goal_index", "reward_breakdown", "goal_progress")
    return {k: _jsonable(info[k]) for k in keep if k in info and k != "goal_progress"}
