"""``empo-gym bench scienceworld``: wrapper overhead, JVM memory, resets/s, vector throughput.

All comparisons are measured side by side in one run, interleaved round by round, and reported
as medians, because the machines are shared and noisy.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import psutil

import empo_gym  # noqa: F401
from empo_gym.scienceworld.env import ScienceWorldEnv
from empo_gym.scienceworld.jvm import DEFAULT_MAX_HEAP_MB, ScienceWorldJVM

TASK = "boil"


def _gold_actions(steps: int) -> list[str]:
    env = ScienceWorldEnv(task=TASK, oracle_info=True, max_steps=10_000)
    try:
        _, info = env.reset(options={"task": TASK, "variation": 0})
        gold = list(info["oracle"]["gold_actions"])
    finally:
        env.close()
    # stop short of the actions that complete the task: every round must run every action
    return gold[: max(1, min(steps, len(gold) - 3))]


def _lockstep_round(
    raw: ScienceWorldJVM, wrapped: gym.Env, capped: gym.Env, actions: list[str], rotate: int
) -> tuple[float, float, float]:
    """Seconds per step of each env, stepping all three through ``actions`` in lockstep.

    Interleaving step by step (in a rotating order) exposes the three to the same machine
    noise, which matters on shared 2-core machines.
    """
    raw.load(TASK, 0, "easy", False)
    raw.reset()
    for env in (wrapped, capped):
        env.reset(options={"task": TASK, "variation": 0})
    totals = [0.0, 0.0, 0.0]
    steppers = [raw.step, wrapped.step, capped.step]
    for i, a in enumerate(actions):
        for k in range(3):
            j = (k + i + rotate) % 3
            t0 = time.perf_counter()
            steppers[j](a)
            totals[j] += time.perf_counter() - t0
    n = len(actions)
    return totals[0] / n, totals[1] / n, totals[2] / n


def _rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def run_scienceworld_bench(
    steps: int = 60, rounds: int = 5, log: Callable[[str], Any] = print
) -> dict[str, Any]:
    """Run the benchmark and return its metrics (see the module docstring).

    Args:
        steps: Actions per timing round (a prefix of the task's gold path).
        rounds: Interleaved rounds; medians are reported.
        log: Progress printer.
    """
    actions = _gold_actions(steps)
    log(f"[bench] {len(actions)} gold actions of {TASK!r} per round, {rounds} rounds")
    raw = ScienceWorldJVM(max_heap_mb=None)
    wrapped_default = gym.make(
        "empo_gym/ScienceWorld-v0", task=TASK, jvm_max_heap_mb=None, max_steps=10_000
    )
    wrapped_capped = gym.make(
        "empo_gym/ScienceWorld-v0", task=TASK, max_steps=10_000, jvm_max_heap_mb=DEFAULT_MAX_HEAP_MB
    )
    t_raw, t_wrap, t_cap = [], [], []
    try:
        _lockstep_round(raw, wrapped_default, wrapped_capped, actions, 0)  # JIT warm-up
        for r in range(rounds):
            tr, tw, tc = _lockstep_round(raw, wrapped_default, wrapped_capped, actions, r)
            t_raw.append(tr)
            t_wrap.append(tw)
            t_cap.append(tc)
            log(
                f"[bench] round {r + 1}/{rounds}: raw {tr * 1e3:.1f} ms/step, "
                f"wrapped {tw * 1e3:.1f}, capped {tc * 1e3:.1f}"
            )
        rss_default = _rss_mb(wrapped_default.unwrapped.simulator.pid)
        rss_capped = _rss_mb(wrapped_capped.unwrapped.simulator.pid)
        rss_raw = _rss_mb(raw.pid)

        env = wrapped_capped.unwrapped
        n_resets = 20
        t0 = time.perf_counter()
        for i in range(n_resets):
            env.reset(seed=i)
        resets_per_s = n_resets / (time.perf_counter() - t0)
    finally:
        raw.close()
        wrapped_default.close()
        wrapped_capped.close()

    log("[bench] 2-env async vector env")
    vec = gym.make_vec(
        "empo_gym/ScienceWorld-v0",
        num_envs=2,
        vectorization_mode="async",
        task=TASK,
        max_steps=10_000,
    )
    try:
        vec.reset(seed=[0, 0])
        vec.step(["look around"] * 2)
        n_vec = max(10, len(actions) // 2)
        t0 = time.perf_counter()
        for i in range(n_vec):
            a = actions[i % len(actions)]
            vec.step([a, a])
        vector2_steps_per_s = 2 * n_vec / (time.perf_counter() - t0)
    finally:
        vec.close()

    med_raw, med_wrap, med_cap = map(statistics.median, (t_raw, t_wrap, t_cap))
    overhead = statistics.median(w / r for w, r in zip(t_wrap, t_raw, strict=True))
    slowdown = statistics.median(c / w for c, w in zip(t_cap, t_wrap, strict=True))
    return {
        "bench": "scienceworld",
        "task": TASK,
        "steps_per_round": len(actions),
        "rounds": rounds,
        "raw_ms_per_step": round(med_raw * 1e3, 3),
        "wrapped_ms_per_step": round(med_wrap * 1e3, 3),
        "capped_ms_per_step": round(med_cap * 1e3, 3),
        "wrapper_overhead_ratio": round(overhead, 4),
        "jvm_rss_mb_raw_package_default": round(rss_raw, 1),
        "jvm_rss_mb_default": round(rss_default, 1),
        "jvm_rss_mb_capped": round(rss_capped, 1),
        "jvm_heap_cap_mb": DEFAULT_MAX_HEAP_MB,
        "capped_rss_fraction": round(rss_capped / rss_default, 4),
        "capped_step_slowdown_ratio": round(slowdown, 4),
        "resets_per_s": round(resets_per_s, 2),
        "steps_per_s_single": round(1.0 / med_cap, 2),
        "vector2_steps_per_s": round(vector2_steps_per_s, 2),
        "cpu_count": psutil.cpu_count(),
    }
