"""``empo-gym bench twx``: wrapper overhead against raw ``textworld_express``, JVM memory, resets.

Three envs play the same recorded random-walk episodes of one game in lockstep: the raw
package's ``TextWorldExpressEnv`` (its own JVM launcher, the JVM's default heap), the empo-gym
env with the JVM's default heap, and the empo-gym env with its default heap cap. Steps are
interleaved one by one in a rotating order, so the three see the same machine noise (the
machines are shared); per-round figures are reported as medians. The bench also times a JVM
start against a reset, the figure that decides whether a spare JVM (as ScienceWorld uses) pays.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import psutil
from textworld_express import TextWorldExpressEnv as RawTextWorldExpressEnv

from empo_gym.twx.env import DEFAULT_MAX_HEAP_MB, TWXJVM, TextWorldExpressEnv
from empo_gym.twx.games import FOLDS


def _record_episodes(game: str, steps: int, seed: int) -> list[tuple[int, list[str]]]:
    """Random-walk episodes (test-fold game seed, actions) totalling ``steps`` actions."""
    env = TextWorldExpressEnv(game, split="test", max_steps=50)
    rng = np.random.default_rng(seed)
    episodes: list[tuple[int, list[str]]] = []
    total = 0
    try:
        while total < steps:
            game_seed = int(FOLDS["test"][len(episodes) % len(FOLDS["test"])])
            _, info = env.reset(options={"game_seed": game_seed})
            actions: list[str] = []
            while total < steps:
                valid = info["admissible_actions"]
                action = valid[int(rng.integers(len(valid)))]
                actions.append(action)
                total += 1
                *_, term, trunc, info = env.step(action)
                if term or trunc:
                    break
            episodes.append((game_seed, actions))
    finally:
        env.close()
    return episodes


def _lockstep_round(
    game: str,
    raw: RawTextWorldExpressEnv,
    envs: list[TextWorldExpressEnv],
    episodes: list[tuple[int, list[str]]],
    rotate: int,
) -> list[float]:
    """Seconds per step of the raw env and each wrapped env over the recorded episodes."""
    totals = [0.0] * (1 + len(envs))
    steppers = [raw.step] + [env.step for env in envs]
    n = 0
    for game_seed, actions in episodes:
        raw.reset(seed=game_seed, gameFold="test", gameName=game, gameParams="")
        for env in envs:
            env.reset(options={"game_seed": game_seed})
        for i, action in enumerate(actions):
            for k in range(len(steppers)):
                j = (k + i + rotate) % len(steppers)
                t0 = time.perf_counter()
                steppers[j](action)
                totals[j] += time.perf_counter() - t0
            n += 1
    return [t / n for t in totals]


def _rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def run_twx_bench(
    game: str = "coin",
    steps: int = 500,
    rounds: int = 5,
    log: Callable[[str], Any] = print,
) -> dict[str, Any]:
    """Run the benchmark and return its metrics (see the module docstring).

    Args:
        game: The TextWorldExpress game.
        steps: Actions per timing round (recorded random-walk episodes, replayed).
        rounds: Interleaved rounds; medians are reported.
        log: Progress printer.
    """
    episodes = _record_episodes(game, steps, seed=0)
    log(f"[bench] {steps} random-walk actions of {game!r} in {len(episodes)} episodes per round")
    raw = RawTextWorldExpressEnv(envStepLimit=10**9)
    wrapped_default = TextWorldExpressEnv(game, split="test", max_steps=10**9, jvm_max_heap_mb=None)
    wrapped_capped = TextWorldExpressEnv(
        game, split="test", max_steps=10**9, jvm_max_heap_mb=DEFAULT_MAX_HEAP_MB
    )
    envs = [wrapped_default, wrapped_capped]
    per_round: list[list[float]] = []
    try:
        _lockstep_round(game, raw, envs, episodes, 0)  # JIT warm-up
        for r in range(rounds):
            times = _lockstep_round(game, raw, envs, episodes, r)
            per_round.append(times)
            log(
                f"[bench] round {r + 1}/{rounds}: raw {times[0] * 1e3:.3f} ms/step, "
                f"wrapped {times[1] * 1e3:.3f}, capped {times[2] * 1e3:.3f}"
            )
        rss_raw = _rss_mb(raw._gateway.java_process.pid)
        rss_default = _rss_mb(wrapped_default.simulator.pid)
        rss_capped = _rss_mb(wrapped_capped.simulator.pid)

        n_resets = 50
        t0 = time.perf_counter()
        for i in range(n_resets):
            wrapped_capped.reset(seed=i)
        reset_s = (time.perf_counter() - t0) / n_resets
    finally:
        raw.close()
        wrapped_default.close()
        wrapped_capped.close()

    starts = []
    for _ in range(3):
        t0 = time.perf_counter()
        jvm = TWXJVM()
        jvm.server.load(game, "")
        starts.append(time.perf_counter() - t0)
        jvm.close()

    t_raw, t_wrap, t_cap = (statistics.median(col) for col in zip(*per_round, strict=True))
    overhead = statistics.median(w / r for r, w, _ in per_round)
    capped_overhead = statistics.median(c / r for r, _, c in per_round)
    return {
        "bench": "twx",
        "game": game,
        "steps_per_round": steps,
        "rounds": rounds,
        "raw_ms_per_step": round(t_raw * 1e3, 4),
        "wrapped_ms_per_step": round(t_wrap * 1e3, 4),
        "capped_ms_per_step": round(t_cap * 1e3, 4),
        "raw_steps_per_s": round(1.0 / t_raw, 1),
        "wrapped_steps_per_s": round(1.0 / t_cap, 1),
        "wrapper_overhead_ratio": round(overhead, 4),
        "capped_wrapper_overhead_ratio": round(capped_overhead, 4),
        "jvm_rss_mb_raw_package_default": round(rss_raw, 1),
        "jvm_rss_mb_default": round(rss_default, 1),
        "jvm_rss_mb_capped": round(rss_capped, 1),
        "jvm_heap_cap_mb": DEFAULT_MAX_HEAP_MB,
        "reset_ms": round(reset_s * 1e3, 2),
        "jvm_start_ms": round(statistics.median(starts) * 1e3, 1),
        "cpu_count": psutil.cpu_count(),
    }
