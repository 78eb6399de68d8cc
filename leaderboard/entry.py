"""Leaderboard entries: build one from an evaluation, validate it, write it atomically."""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from empo_gym import provenance
from empo_gym.atomic_io import write_text_atomic

SCHEMA_VERSION = 1
#: Where a row's numbers come from: ``measured`` by a run of this code (the default when a file
#: has no ``source``), or ``reported`` in a publication (a reference row, never a run).
SOURCES = ("measured", "reported")


class LeaderboardError(ValueError):
    """A leaderboard file is unreadable or violates the schema (names the file and field)."""


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The JSON Schema every entry follows (``leaderboard/schema.json``)."""
    return json.loads(
        resources.files("empo_gym.leaderboard").joinpath("schema.json").read_text("utf-8")
    )


def validate_entry(entry: Any, source: str = "<entry>") -> dict[str, Any]:
    """Validate ``entry`` against the schema; raise :class:`LeaderboardError` naming the field.

    Example:
        >>> validate_entry({"schema_version": 1}, "x.json")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        empo_gym...LeaderboardError: x.json: field 'agent': 'agent' is a required property
    """
    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(entry), key=lambda e: (len(e.path), list(e.path)))
    if errors:
        err = errors[0]
        field = ".".join(str(p) for p in err.path)
        if err.validator == "required":
            missing = re.match(r"'([^']+)'", err.message)
            if missing:
                field = ".".join(filter(None, [field, missing.group(1)]))
        raise LeaderboardError(f"{source}: field {field or '<root>'!r}: {err.message}")
    return entry


def entry_source(entry: dict[str, Any]) -> str:
    """``"measured"`` or ``"reported"`` (files written before the field existed are measured).

    Example:
        >>> entry_source({"agent": "random"}), entry_source({"source": "reported"})
        ('measured', 'reported')
    """
    return entry.get("source", "measured")


def build_entry(
    *,
    agent: str,
    env: str,
    task: str | None,
    split: str,
    model: str | None,
    metrics: dict[str, Any],
    config: dict[str, Any],
    seeds: list[int],
    success_rule: str | None,
    wall_time_s: float,
    episodes: list[dict[str, Any]] | None = None,
    extra_provenance: dict[str, Any] | None = None,
    checkpoint: str | None = None,
    comparison: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble and validate a leaderboard entry.

    ``checkpoint`` marks a learning agent's row as its ``"initial"`` (untrained) or
    ``"trained"`` policy; ``comparison`` is the trained row's paired difference to the initial
    one (``baseline``, ``mean``, ``ci95_low``, ``ci95_high``, ``episodes``, ...).
    """
    prov = provenance.collect(
        {"seeds": list(seeds), "success_rule": success_rule, "wall_time_s": float(wall_time_s)}
    )
    prov.update(extra_provenance or {})
    entry: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "source": "measured",
        "agent": agent,
        "env": env,
        "task": task,
        "split": split,
        "model": model,
        "metrics": metrics,
        "config": config,
        "provenance": prov,
    }
    if episodes is not None:
        entry["episodes"] = episodes
    if checkpoint is not None:
        entry["checkpoint"] = checkpoint
    if comparison is not None:
        entry["comparison"] = comparison
    check_finite(entry)
    return validate_entry(json.loads(json.dumps(entry, default=str)))


def check_finite(data: Any, where: str = "") -> None:
    """Refuse NaN / Infinity anywhere in ``data`` (strict JSON has no such numbers).

    Raises:
        LeaderboardError: Naming the field, e.g. ``metrics.mean_score``.

    Example:
        >>> check_finite({"metrics": {"mean_score": float("nan")}})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        empo_gym...LeaderboardError: field 'metrics.mean_score' is nan; expected a finite ...
    """
    if isinstance(data, float) and not math.isfinite(data):
        raise LeaderboardError(
            f"field {where or '<root>'!r} is {data}; expected a finite number (JSON has no NaN "
            "or Infinity): check the evaluation that produced it"
        )
    if isinstance(data, dict):
        for key, value in data.items():
            check_finite(value, f"{where}.{key}" if where else str(key))
    elif isinstance(data, (list, tuple)):
        for i, value in enumerate(data):
            check_finite(value, f"{where}.{i}" if where else str(i))


def entry_from_result(
    result: Any,
    *,
    agent: Any,
    extra_config: dict[str, Any] | None = None,
    checkpoint: str | None = None,
    comparison: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build an entry from a :class:`empo_gym.harness.EvalResult` and the agent that ran it
    (``checkpoint`` and ``comparison``: see :func:`build_entry`)."""
    s = result.settings
    rules = {r.extra.get("success_rule") for r in result.records} - {None}
    return build_entry(
        agent=agent.name,
        env=s["env"],
        task=s["task"],
        split=s["split"],
        model=agent.model,
        metrics=result.metrics,
        config={"agent": agent.config(), "eval": s, **(extra_config or {})},
        seeds=s["seeds"],
        success_rule=s.get("success_rule") or (rules.pop() if len(rules) == 1 else None),
        wall_time_s=result.wall_s,
        episodes=[asdict(r) for r in result.records],
        extra_provenance=s.get("env_provenance") or None,
        checkpoint=checkpoint,
        comparison=comparison,
    )


def write_atomic_json(path: str | os.PathLike[str], data: Any, *, exclusive: bool = False) -> Path:
    """Write strict JSON (no NaN / Infinity) to ``path`` via a temp file (never a half-written
    file); ``exclusive``: fail with ``FileExistsError`` rather than replace an existing file."""
    text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    return write_text_atomic(path, text, exclusive=exclusive)


def entry_filename(entry: dict[str, Any]) -> str:
    """A readable file name, ``env[-task]-agent[-initial]-YYYYmmddTHHMMSS-<12 hex>.json``; the
    48 random bits make a clash unlikely and :func:`write_entry` never overwrites one anyway."""
    stamp = re.sub(r"[^0-9T]", "", entry["provenance"]["date"])[:15]
    initial = "initial" if entry.get("checkpoint") == "initial" else None
    parts = [entry["env"], entry["task"], entry["agent"], initial, stamp, os.urandom(6).hex()]
    return "-".join(re.sub(r"[^A-Za-z0-9_.]+", "_", str(p)) for p in parts if p) + ".json"


def write_entry(entry: dict[str, Any], out_dir: str | os.PathLike[str]) -> Path:
    """Validate ``entry`` and write it into ``out_dir`` under a fresh name (never replacing a
    file: a name taken meanwhile is drawn again).

    Raises:
        LeaderboardError: The entry violates the schema or holds a non-finite number.
    """
    check_finite(entry)
    validate_entry(entry)
    for _ in range(100):
        try:
            return write_atomic_json(Path(out_dir) / entry_filename(entry), entry, exclusive=True)
        except FileExistsError:
            continue
    raise RuntimeError(f"could not find a free result file name in {out_dir}")
