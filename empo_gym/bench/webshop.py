"""``empo-gym bench webshop``: build / load / search / step / memory figures of WebShop.

Every measurement runs in a fresh Python subprocess (so build caches and memory do not leak
between them) against a temporary cache folder unless ``cache_dir`` is given. Metrics per size
``n`` (label ``1k``, ``100k``, ``1m``, or the number): ``build_s_<n>`` (generate + goals + index
+ write), ``load_s_<n>`` (open from the cache + first reset), ``search_p50_ms_<n>`` /
``search_p99_ms_<n>`` (top-50 BM25 over instruction queries), ``steps_per_s_<n>`` (non-search
steps: clicks through results, item and sub-pages), and for the largest size
``mem_mb_1_env`` / ``mem_mb_64_envs`` (RSS of a process after creating 1, then 64 envs).

Example:
    >>> size_label(1000), size_label(100_000), size_label(1_000_000), size_label(2500)
    ('1k', '100k', '1m', '2500')
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from empo_gym.atomic_io import make_temp_dir

_ROOT = str(Path(__file__).resolve().parents[2])


def size_label(n: int) -> str:
    """Short label of a catalogue size (``1k``, ``100k``, ``1m``)."""
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}m"
    if n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


_BUILD = """
import json, time
from pathlib import Path
from empo_gym.webshop.shop import build_generated
t = time.perf_counter()
folder = build_generated(Path(CACHE) / "webshop", N, 0)
dt = time.perf_counter() - t
print(json.dumps({"build_s": dt, "meta": json.loads((folder / "meta.json").read_text())}))
"""

_LOAD_AND_RUN = """
import json, time
import numpy as np
t = time.perf_counter()
from empo_gym.webshop.env import WebShopEnv
env = WebShopEnv(split="test", num_products=N, cache_dir=CACHE)
obs, info = env.reset(seed=0)
load_s = time.perf_counter() - t
shop = env.shop
goals = env.goals
for k in range(300, 330):  # warm the memory-mapped index pages
    shop.index.search(goals.goal(k % len(goals))["instruction_text"])
times = []
for k in range(300):
    q = goals.goal(k % len(goals))["instruction_text"].split(", and price")[0]
    t = time.perf_counter()
    shop.index.search(q)
    times.append((time.perf_counter() - t) * 1000)
steps = 0
click_s = 0.0
for seed in range(30):
    obs, info = env.reset(seed=seed)
    obs, r, term, trunc, info = env.step("search[" + info["instruction"][:60] + "]")
    t0 = time.perf_counter()
    prods = [c for c in info["clickables"] if c.startswith("b0")]
    acts = ["click[next >]", "click[< prev]"]
    if prods:
        acts += ["click[" + prods[0] + "]", "click[description]", "click[< prev]",
                 "click[features]", "click[< prev]", "click[reviews]", "click[< prev]",
                 "click[< prev]"]
    for a in acts:
        obs, r, term, trunc, info = env.step(a)
        steps += 1
    click_s += time.perf_counter() - t0
elapsed = click_s
print(json.dumps({"load_s": load_s, "search_p50_ms": float(np.percentile(times, 50)),
                  "search_p99_ms": float(np.percentile(times, 99)),
                  "steps_per_s": steps / elapsed}))
"""

_MEMORY = """
import json, psutil, gc
from empo_gym.webshop.env import WebShopEnv
proc = psutil.Process()
envs = [WebShopEnv(split="test", num_products=N, cache_dir=CACHE)]
for k in range(64):  # touch the same index pages the 64 envs will touch
    envs[0].reset(seed=k)
    envs[0].step("search[" + envs[0]._instruction[:40] + "]")
gc.collect()
one = proc.memory_info().rss / 2**20
envs += [WebShopEnv(split="test", num_products=N, cache_dir=CACHE) for _ in range(63)]
for k, e in enumerate(envs):
    e.reset(seed=k)
    e.step("search[" + e._instruction[:40] + "]")
gc.collect()
many = proc.memory_info().rss / 2**20
print(json.dumps({"mem_mb_1_env": one, "mem_mb_64_envs": many}))
"""


def write_original_files(
    directory: str | os.PathLike[str], num_products: int, seed: int = 0
) -> Path:
    """Write a generated catalogue as the original's data files (``items_shuffle.json``,
    ``items_ins_v2.json``, ``items_human_ins.json``), streaming, and return the folder.

    One product in 50 gets a human instruction. Used by the streaming-load test and bench.

    Example:
        >>> import tempfile, json
        >>> d = write_original_files(tempfile.mkdtemp(), 3)
        >>> sorted(json.loads((d / "items_shuffle.json").read_text())[0])[:3]
        ['asin', 'average_rating', 'category']
    """
    from empo_gym.webshop.catalogue import GeneratedCatalogue

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    cat = GeneratedCatalogue.generate(num_products, seed)
    human: dict[str, list[dict[str, Any]]] = {}
    with (
        open(d / "items_shuffle.json", "w", encoding="utf-8") as fp,
        open(d / "items_ins_v2.json", "w", encoding="utf-8") as fa,
    ):
        fp.write("[")
        fa.write("{")
        for i in range(num_products):
            p = cat.product(i)
            pricing = p["pricing"]
            raw = {
                "asin": p["asin"],
                "name": p["Title"],
                "full_description": p["Description"],
                "pricing": " to ".join(f"${x:.2f}" for x in pricing),
                "images": [f"https://example.com/{p['asin']}.jpg"],
                "product_category": p["product_category"],
                "small_description": p["BulletPoints"],
                "customization_options": {
                    name.title(): [{"value": v, "image": None} for v in values]
                    for name, values in p["options"].items()
                },
                "category": p["category"],
                "query": p["query"],
                "average_rating": None,
            }
            ins = p["instruction_attributes"]
            attrs = {
                "attributes": p["Attributes"],
                "instruction": f"i am looking for {' and '.join(ins)} {p['query']}",
                "instruction_attributes": ins,
            }
            sep = "," if i else ""
            fp.write(sep + json.dumps(raw, ensure_ascii=False))
            fa.write(sep + json.dumps(p["asin"]) + ":" + json.dumps(attrs, ensure_ascii=False))
            if i % 50 == 7:
                first = {name: values[0] for name, values in p["options"].items()}
                human[p["asin"]] = [
                    {
                        "asin": p["asin"],
                        "instruction": f"i want {ins[0]} {p['query']} in "
                        + " and ".join(first.values())
                        + ".",
                        "instruction_attributes": ins[:1],
                        "instruction_options": list(first.values()),
                    }
                ]
        fp.write("]")
        fa.write("}")
    (d / "items_human_ins.json").write_text(json.dumps(human, ensure_ascii=False), encoding="utf-8")
    return d


_ORIGINAL_BUILD = """
import json, time, psutil
from empo_gym.webshop.shop import get_shop
t = time.perf_counter()
shop = get_shop(None, 0, DATA, CACHE)
dt = time.perf_counter() - t
print(json.dumps({"build_s": dt, "rss_mb": psutil.Process().memory_info().rss / 2**20,
                  "num_products": len(shop.catalogue)}))
"""

_ORIGINAL_LOAD = """
import json, time, psutil
t = time.perf_counter()
from empo_gym.webshop.env import WebShopEnv
env = WebShopEnv(split="test", num_products=None, data_dir=DATA, cache_dir=CACHE)
obs, info = env.reset(seed=0)
load_s = time.perf_counter() - t
obs, r, term, trunc, info = env.step("search[" + info["instruction"][:60] + "]")
print(json.dumps({"load_s": load_s, "rss_mb": psutil.Process().memory_info().rss / 2**20}))
"""


def run_original_data_bench(
    num_products: int, *, work_dir: str | None = None, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Write ``num_products`` products in the original's file format, then measure the
    streamed build of the shop cache and a fresh process's load from that cache (time, RSS).

    Returns:
        ``{"original_file_mb", "original_build_s", "original_build_rss_mb",
        "original_load_s", "original_load_rss_mb"}`` (each suffixed with the size label).
    """
    # named for this process: a killed bench's folder is swept by the next one in work_dir
    tmp = make_temp_dir(work_dir or tempfile.gettempdir(), "empo-gym-bench-orig")
    label = size_label(num_products)
    try:
        log(f"[webshop bench] writing {num_products:,} products in the original format ...")
        data = write_original_files(Path(tmp) / "data", num_products)
        size = (data / "items_shuffle.json").stat().st_size / 2**20
        log(f"[webshop bench] items_shuffle.json: {size:.0f} MB; building the shop cache ...")
        extra = f"DATA = {str(data)!r}\n"
        b = _run(extra + _ORIGINAL_BUILD, num_products, str(Path(tmp) / "cache"))
        log(f"[webshop bench] built in {b['build_s']:.1f} s; loading in a fresh process ...")
        r = _run(extra + _ORIGINAL_LOAD, num_products, str(Path(tmp) / "cache"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        f"original_file_mb_{label}": round(size, 1),
        f"original_build_s_{label}": round(b["build_s"], 2),
        f"original_build_rss_mb_{label}": round(b["rss_mb"], 1),
        f"original_load_s_{label}": round(r["load_s"], 3),
        f"original_load_rss_mb_{label}": round(r["rss_mb"], 1),
    }


def _run(code: str, n: int, cache: str) -> dict[str, Any]:
    prog = f"N = {n}\nCACHE = {cache!r}\n" + code
    env = dict(os.environ)
    env["PYTHONPATH"] = _ROOT + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run(
        [sys.executable, "-c", prog], capture_output=True, text=True, env=env, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"bench subprocess failed (n={n}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_webshop_bench(
    sizes: list[int],
    *,
    cache_dir: str | None = None,
    memory: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Measure WebShop at each catalogue size; print progress and a final JSON line.

    Args:
        sizes: Catalogue sizes, e.g. ``[1000, 100_000, 1_000_000]``.
        cache_dir: Cache folder to build into (default: a temporary folder, removed after).
        memory: Also measure 1-env vs 64-env memory (at the largest size).
        log: Progress printer.

    Returns:
        The metrics dict (also printed as the last line, one JSON object).
    """
    if not sizes or any(not isinstance(n, int) or n < 1 for n in sizes):
        raise ValueError(f"sizes must be a non-empty list of positive ints, got {sizes!r}")
    tmp = None
    if cache_dir is None:
        tmp = tempfile.mkdtemp(prefix="empo-gym-bench-")
        cache_dir = tmp
    metrics: dict[str, Any] = {"cpu_count": os.cpu_count()}
    try:
        for n in sorted(set(sizes)):
            label = size_label(n)
            log(f"[webshop bench] n={n:,}: building catalogue + index ...")
            b = _run(_BUILD, n, cache_dir)
            metrics[f"build_s_{label}"] = round(b["build_s"], 3)
            metrics[f"build_parts_s_{label}"] = {
                k: round(v, 3) for k, v in b["meta"].get("timings_s", {}).items()
            }
            log(f"[webshop bench] n={n:,}: built in {b['build_s']:.1f} s; loading + searching")
            r = _run(_LOAD_AND_RUN, n, cache_dir)
            metrics[f"load_s_{label}"] = round(r["load_s"], 3)
            metrics[f"search_p50_ms_{label}"] = round(r["search_p50_ms"], 3)
            metrics[f"search_p99_ms_{label}"] = round(r["search_p99_ms"], 3)
            metrics[f"steps_per_s_{label}"] = round(r["steps_per_s"], 1)
            log(
                f"[webshop bench] n={n:,}: load {r['load_s']:.2f} s, search p50 "
                f"{r['search_p50_ms']:.2f} ms / p99 {r['search_p99_ms']:.2f} ms, "
                f"{r['steps_per_s']:.0f} steps/s"
            )
        if memory:
            n = max(sizes)
            log(f"[webshop bench] memory: 1 env vs 64 envs at n={n:,} ...")
            m = _run(_MEMORY, n, cache_dir)
            metrics["mem_mb_1_env"] = round(m["mem_mb_1_env"], 1)
            metrics["mem_mb_64_envs"] = round(m["mem_mb_64_envs"], 1)
            metrics["mem_size"] = n
            metrics["mem_ratio_64_to_1"] = round(m["mem_mb_64_envs"] / m["mem_mb_1_env"], 3)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    log(json.dumps(metrics))
    return metrics
