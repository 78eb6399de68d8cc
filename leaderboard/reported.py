"""Reported rows: the EMPO² paper's published results, shown next to measured runs.

``reported.json`` (package data) holds the paper's ScienceWorld and WebShop figures with one
shared reference (citation, base model, hardware); the out-of-distribution figures are those of
the transfer pairs (:data:`empo_gym.ood.TRANSFERS`, their one home). Every row is a schema
entry with ``source: "reported"`` and a ``reference`` instead of ``config`` / ``provenance``:
it is never a run of this code (:func:`measured_runs` leaves it out).

Example:
    >>> rows = reported_entries(env="webshop")
    >>> sorted((r["agent"], r["metrics"]["mean_score"]) for r in rows)
    [('empo', 88.3), ('gigpo', 84.4), ('grpo', 79.3)]
    >>> {r["source"] for r in rows}, measured_runs(rows)
    ({'reported'}, [])
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources
from typing import Any

from empo_gym.leaderboard.entry import SCHEMA_VERSION, entry_source, validate_entry

#: The package file of the paper's ScienceWorld and WebShop rows.
REPORTED_FILE = "reported.json"
#: The env short name of the out-of-distribution rows (as measured OOD runs write them).
OOD_ENV = "ood"


def _reported_row(
    reference: dict[str, Any], note: str | None, row: dict[str, Any]
) -> dict[str, Any]:
    ref = {k: reference[k] for k in ("citation", "url", "hardware")}
    if note:
        ref["note"] = note
    return {
        "schema_version": SCHEMA_VERSION,
        "source": "reported",
        "agent": row["agent"],
        "env": row["env"],
        "task": row["task"],
        "split": row["split"],
        "model": row.get("model", reference["model"]),
        "metrics": dict(row["metrics"]),
        "reference": ref,
    }


@lru_cache(maxsize=1)
def _all_reported() -> tuple[dict[str, Any], ...]:
    from empo_gym.ood import TRANSFERS

    data = json.loads(
        resources.files("empo_gym.leaderboard").joinpath(REPORTED_FILE).read_text("utf-8")
    )
    reference, notes = data["reference"], data["notes"]
    rows = [_reported_row(reference, notes.get(r["env"]), r) for r in data["rows"]]
    for pair in TRANSFERS.values():
        for agent, score in (("grpo", pair.paper_grpo), ("empo", pair.paper_empo)):
            rows.append(
                _reported_row(
                    reference,
                    f"{notes[OOD_ENV]}; {pair.source} -> {pair.target}",
                    {
                        "agent": agent,
                        "env": OOD_ENV,
                        "task": pair.name,
                        "split": "test",
                        "metrics": {"mean_score": score, "trials": 10},
                    },
                )
            )
    return tuple(validate_entry(r, f"{REPORTED_FILE} ({r['env']}/{r['agent']})") for r in rows)


def reported_entries(env: str | None = None) -> list[dict[str, Any]]:
    """The paper's rows (all, or one env's), as fresh dicts the caller may change."""
    return [copy.deepcopy(r) for r in _all_reported() if env is None or r["env"] == env]


def is_reported(entry: dict[str, Any]) -> bool:
    """Whether ``entry`` is a published figure rather than a run of this code."""
    return entry_source(entry) == "reported"


def measured_runs(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries that are runs of this code (reported rows never count as runs)."""
    return [e for e in entries if not is_reported(e)]
