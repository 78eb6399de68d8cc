"""``empo-gym bench memory``: tip-store speed per embedder and memory overhead on ScienceWorld.

Metrics (returned as one flat dict; the CLI prints it as the last output line):

* per embedder ``E`` (``hashing``, ``minilm``): ``add_per_s_10k_E`` (entries added per second
  while filling one partition to 10k entries, keys embedded in batches of ``add_batch``),
  ``query_p50_ms_10k_E`` / ``query_p95_ms_10k_E`` (one query = embed the state + retrieve, at 10k
  entries), ``search_p50_ms_10k_E`` (retrieval only, query embedding precomputed);
  ``embedder_E`` records which embedder ran (name and source);
* ``query_p50_ms_10k`` and ``add_per_s_10k``: the hashing embedder's figures (the targets);
* ``query_p50_ms_100k``: hashing embedder, 100k entries in one partition;
* ``overhead_fraction`` (hashing; ``overhead_fraction_minilm`` when minilm is benched): memory
  time / total time of memory-augmented ScienceWorld episodes played with the
  :class:`~empo_gym.memory.MemoryWrapper` (seeded random admissible actions; the
  wrapper times its own memory work).

MiniLM is slow to embed 10k texts on a CPU, so its store is filled with ``minilm_add_sample``
really-embedded entries (that is what ``add_per_s_10k_minilm`` measures) and the rest with
embeddings of those texts plus small noise; retrieval cost depends only on the entry count.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from empo_gym.memory.embedders import Embedder, make_embedder, normalize_rows
from empo_gym.memory.observation import USE_MEMORY_OPTION
from empo_gym.memory.store import MemoryEntry, MemoryStore

__all__ = ["run_memory_bench", "synthetic_states"]

_TEXT = (
    "kitchen stove sink fridge table chair cup pot water ice thermometer lighter door hallway "
    "greenhouse seed flower pot soil orange apple banana bowl counter cupboard drawer oven "
    "agent air substance called containing nothing open closed see in on the a is you room "
    "living bedroom workshop battery wire bulb switch red blue green paint art studio "
    "bathroom toilet glass metal wood focus move pick up look around inventory"
)
_WORDS = _TEXT.split(" ")


def synthetic_states(n: int, seed: int = 0, words: int = 40) -> list[str]:
    """``n`` ScienceWorld-like room descriptions (random word sequences, deterministic).

    Example:
        >>> a = synthetic_states(2, seed=1)
        >>> a == synthetic_states(2, seed=1), len(a[0].split())
        (True, 40)
    """
    rng = np.random.default_rng(seed)
    vocab = np.array(_WORDS)
    return [" ".join(rng.choice(vocab, words)) for _ in range(n)]


def _entries(states: Sequence[str], partition: str, seed: int) -> list[MemoryEntry]:
    rng = np.random.default_rng(seed + 1)
    scores = rng.integers(-100, 101, len(states))
    return [
        MemoryEntry(
            f"Tip {i}: look around before acting; At that timestep, the specific action you "
            f"took was look around; Eventually you got the score {int(s)}/100.",
            key=st,
            score=float(s),
            partition=partition,
            step=i % 30,
            action="look around",
        )
        for i, (st, s) in enumerate(zip(states, scores, strict=True))
    ]


def _pcts(times: list[float]) -> tuple[float, float]:
    ms = np.asarray(times) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def _store_bench(
    emb: Embedder,
    n: int,
    queries: int,
    add_batch: int,
    seed: int,
    real_adds: int | None,
    log: Callable[[str], Any],
) -> dict[str, float]:
    states = synthetic_states(n, seed)
    entries = _entries(states, "bench", seed)
    store = MemoryStore(emb, capacity=n)
    real = n if real_adds is None else min(n, real_adds)
    t0 = time.perf_counter()
    for i in range(0, real, add_batch):
        store.add(entries[i : min(real, i + add_batch)])
    add_s = time.perf_counter() - t0
    if real < n:  # fill with perturbed copies of the real embeddings (retrieval cost = count)
        base = store.embeddings("bench")
        rng = np.random.default_rng(seed + 2)
        idx = rng.integers(0, len(base), n - real)
        fill = normalize_rows(base[idx] + 0.05 * rng.standard_normal((n - real, emb.dim)))
        store.add(entries[real:], fill)
    qstates = synthetic_states(queries, seed + 3)
    store.query("bench", qstates[0])  # warm-up
    total, search = [], []
    for q in qstates:
        t = time.perf_counter()
        store.query("bench", q)
        total.append(time.perf_counter() - t)
    qvecs = emb(qstates)
    for v in qvecs:
        t = time.perf_counter()
        store.query_batch(["bench"], embeddings=v[None, :])
        search.append(time.perf_counter() - t)
    p50, p95 = _pcts(total)
    s50, _ = _pcts(search)
    log(
        f"  {emb.name}: {n} entries, add {real / add_s:,.0f}/s, query p50 {p50:.3f} ms "
        f"(p95 {p95:.3f}), search-only p50 {s50:.3f} ms"
    )
    return {"add_per_s": real / add_s, "query_p50_ms": p50, "query_p95_ms": p95, "search": s50}


def _play(env: Any, seed: int, ep: int, options: dict[str, Any] | None) -> tuple[float, int]:
    """One episode with seeded random admissible actions; returns (seconds, steps)."""
    rng = np.random.default_rng([seed, ep])
    t0 = time.perf_counter()
    _, info = env.reset(seed=seed, options=options)
    steps, done = 0, False
    while not done:
        # no "focus on": a wrong focus ends the episode at once (short episodes)
        acts = [a for a in info["admissible_actions"] if not a.startswith("focus")]
        acts = acts or info["admissible_actions"]
        _, _, term, trunc, info = env.step(acts[int(rng.integers(len(acts)))])
        done = term or trunc
        steps += 1
    return time.perf_counter() - t0, steps


def _overhead(
    embedders: dict[str, Embedder], episodes: int, task: str, seed: int, log: Callable[[str], Any]
) -> dict[str, Any]:
    """Interleave plain and memory-augmented episodes (same actions) on one ScienceWorld env."""
    import gymnasium as gym

    import empo_gym  # noqa: F401  (registers the env ids)
    from empo_gym.memory.wrapper import MemoryWrapper

    base = gym.make("empo_gym/ScienceWorld-v0", task=task)
    wrapped = {n: MemoryWrapper(base, embedder=e) for n, e in embedders.items()}
    times: dict[str, float] = {"plain": 0.0, **{n: 0.0 for n in wrapped}}
    steps: dict[str, int] = {"plain": 0, **{n: 0 for n in wrapped}}
    try:
        base.reset(seed=seed)  # JVM start-up and task load are not episode time
        for ep in range(episodes):
            for name, env in [("plain", base), *wrapped.items()]:
                opts = None if name == "plain" else {USE_MEMORY_OPTION: True}
                dt, n = _play(env, seed, ep, opts)
                times[name] += dt
                steps[name] += n
            log(f"  episode {ep}: " + ", ".join(f"{k} {v:.2f} s" for k, v in times.items()))
    finally:
        base.close()
    out: dict[str, Any] = {"plain_episode_s": times["plain"], "plain_steps": steps["plain"]}
    for name, env in wrapped.items():
        mem, total = env.memory_seconds, times[name]
        out[name] = {
            "fraction": mem / total,
            "episode_s": total,
            "memory_s": mem,
            "steps": steps[name],
        }
        log(
            f"  {env.store.embedder.name}: {episodes} episodes, {steps[name]} steps, {total:.2f} s "
            f"(plain {times['plain']:.2f} s), memory {mem * 1e3:.1f} ms -> overhead "
            f"{mem / total:.4f}"
        )
    return out


def run_memory_bench(
    embedders: Sequence[str] = ("hashing", "minilm"),
    entries: int = 10_000,
    big_entries: int = 100_000,
    queries: int = 200,
    add_batch: int = 64,
    minilm_add_sample: int = 1_000,
    episodes: int = 3,
    task: str = "boil",
    seed: int = 0,
    log: Callable[[str], Any] = print,
) -> dict[str, Any]:
    """Run the memory benchmark and return its metrics (see the module docstring).

    Args:
        embedders: Embedder names to bench (``hashing`` is always included: it gives the
            headline figures).
        entries: Entries in the store for the ``*_10k`` figures.
        big_entries: Entries for ``query_p50_ms_100k`` (hashing); 0 skips it.
        queries: Timed queries per measurement.
        add_batch: Entries per ``add`` call (one embedder call each).
        minilm_add_sample: Entries really embedded by MiniLM when filling its store.
        episodes: Memory-augmented ScienceWorld episodes per embedder for the overhead; 0 skips.
        task: ScienceWorld task of the overhead episodes.
        seed: Seed of the synthetic data and of the random policy.
        log: Progress printer.

    Returns:
        Flat metrics dict (JSON-serialisable).
    """
    names = ["hashing"] + [e for e in embedders if e != "hashing"]
    out: dict[str, Any] = {
        "bench": "memory",
        "entries": entries,
        "queries": queries,
        "add_batch": add_batch,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "numpy": np.__version__,
    }
    built: dict[str, Embedder] = {}
    for name in names:
        log(f"[memory bench] embedder {name}: building")
        t0 = time.perf_counter()
        emb = make_embedder(name)
        built[name] = emb
        out[f"embedder_{name}"] = emb.name + (
            f" ({emb.source})" if getattr(emb, "source", None) else ""
        )
        out[f"embedder_load_s_{name}"] = round(time.perf_counter() - t0, 3)
        log(f"[memory bench] {emb.name}: store with {entries} entries")
        r = _store_bench(
            emb,
            entries,
            queries,
            add_batch,
            seed,
            minilm_add_sample if name == "minilm" else None,
            log,
        )
        out[f"add_per_s_10k_{name}"] = round(r["add_per_s"], 1)
        out[f"query_p50_ms_10k_{name}"] = round(r["query_p50_ms"], 4)
        out[f"query_p95_ms_10k_{name}"] = round(r["query_p95_ms"], 4)
        out[f"search_p50_ms_10k_{name}"] = round(r["search"], 4)
    out["query_p50_ms_10k"] = out["query_p50_ms_10k_hashing"]
    out["add_per_s_10k"] = out["add_per_s_10k_hashing"]
    if big_entries:
        log(f"[memory bench] hashing: store with {big_entries} entries")
        r = _store_bench(built["hashing"], big_entries, queries, 1_000, seed, None, log)
        out["query_p50_ms_100k"] = round(r["query_p50_ms"], 4)
        out["add_per_s_100k"] = round(r["add_per_s"], 1)
    if episodes:
        log(f"[memory bench] ScienceWorld overhead: {episodes} episodes of {task} per variant")
        r = _overhead(built, episodes, task, seed, log)
        out["overhead_plain_episode_s"] = round(r["plain_episode_s"], 3)
        out["overhead_steps"] = r["plain_steps"]
        for name in names:
            key = "overhead_fraction" if name == "hashing" else f"overhead_fraction_{name}"
            out[key] = round(r[name]["fraction"], 5)
            out[f"overhead_episode_s_{name}"] = round(r[name]["episode_s"], 3)
            out[f"overhead_memory_s_{name}"] = round(r[name]["memory_s"], 4)
        out["overhead_task"] = task
    # the key names follow the targets (10k / 100k); the sizes actually used are here
    out["entries"], out["big_entries"] = entries, big_entries
    measured = "overhead_fraction" in out and entries == 10_000
    out["targets_met"] = (
        bool(out["query_p50_ms_10k"] < 2.0 and out["overhead_fraction"] < 0.03)
        if measured
        else None
    )
    log("[memory bench] done")
    return out
