"""Load, merge, filter and render many leaderboard result files."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from empo_gym.leaderboard.entry import LeaderboardError, entry_source, validate_entry

FORMATS = ("table", "markdown", "json", "html")
#: Where runs write their rows by default (relative to the working directory).
DEFAULT_RESULTS_DIR = "leaderboard/results"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def load_entry(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate one result file; errors name the file (and the field).

    Raises:
        LeaderboardError: One line naming the file: unreadable, not UTF-8, not JSON (``NaN``
            and ``Infinity`` included), nested too deeply, or against the schema.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LeaderboardError(f"{path}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise LeaderboardError(
            f"{path}: not UTF-8 text (byte {exc.start}); expected a JSON result file"
        ) from exc
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise LeaderboardError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}") from exc
    except ValueError as exc:
        raise LeaderboardError(f"{path}: not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise LeaderboardError(
            f"{path}: JSON nested too deeply to read; expected a leaderboard result file"
        ) from exc
    try:
        return validate_entry(data, str(path))
    except RecursionError as exc:
        raise LeaderboardError(
            f"{path}: JSON nested too deeply to validate; expected a leaderboard result file"
        ) from exc


def load_entries(
    paths: Iterable[str | os.PathLike[str]],
    on_skip: Callable[[LeaderboardError], None] | None = None,
) -> list[dict[str, Any]]:
    """Load result files and directories (``*.json`` inside, recursively).

    Args:
        paths: Result files and directories.
        on_skip: Called with the error of each bad file, which is then skipped (the others
            still load); None: the first bad file raises.

    Raises:
        LeaderboardError: A path does not exist, or (without ``on_skip``) a file is bad.
    """
    entries = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            files = sorted(f for f in p.rglob("*.json") if not f.name.startswith("."))
        elif p.exists():
            files = [p]
        else:
            raise LeaderboardError(f"{p}: no such file or directory")
        for f in files:
            try:
                entry = load_entry(f)
            except LeaderboardError as exc:
                if on_skip is None:
                    raise
                on_skip(exc)
                continue
            entry.setdefault("_source", str(f))
            entries.append(entry)
    return entries


def filter_entries(
    entries: Iterable[dict[str, Any]],
    *,
    env: str | None = None,
    task: str | None = None,
    agent: str | None = None,
) -> list[dict[str, Any]]:
    """Keep entries matching every given field."""
    out = []
    for e in entries:
        if env is not None and e["env"] != env:
            continue
        if task is not None and e["task"] != task:
            continue
        if agent is not None and e["agent"] != agent:
            continue
        out.append(e)
    return out


#: How a learning agent's untrained row is told apart in rendered tables.
INITIAL_SUFFIX = " (untrained)"


def rows(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One flat row per entry; within each (env, task) measured runs first, best mean score first.

    A learning agent's untrained row (``checkpoint: "initial"``) shows its agent as e.g.
    ``empo (untrained)``. A reported row (``source: "reported"``) has ``None`` for what a
    publication does not give (``ci95``, ``episodes``, ``date``, often ``success_rate``).
    """
    out = []
    for e in entries:
        m = e["metrics"]
        initial = e.get("checkpoint") == "initial"
        out.append(
            {
                "env": e["env"],
                "task": e["task"] or "-",
                "split": e["split"],
                "agent": e["agent"] + (INITIAL_SUFFIX if initial else ""),
                "model": e["model"] or "-",
                "success_rate": m.get("success_rate"),
                "mean_score": m["mean_score"],
                "ci95": m.get("ci95"),
                "episodes": m.get("episodes"),
                "date": e["provenance"]["date"] if "provenance" in e else None,
                "source": entry_source(e),
            }
        )
    out.sort(key=row_key)
    return out


def row_key(row: dict[str, Any]) -> tuple[Any, ...]:
    """The order of :func:`rows`: env, task, measured before reported, best score, agent."""
    return (row["env"], row["task"], row["source"] != "measured", -row["mean_score"], row["agent"])


_COLUMNS = [
    "env", "task", "split", "agent", "model", "success", "score", "episodes", "date", "source"
]  # fmt: skip


def _cells(r: dict[str, Any]) -> list[str]:
    """A row's cells as text, each on one line (a line break inside a name would split the
    row of any table)."""

    def num(value: Any, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    score = f"{r['mean_score']:.1f}" + ("" if r["ci95"] is None else f" ± {r['ci95']:.1f}")
    cells = [
        r["env"],
        r["task"],
        r["split"],
        r["agent"],
        r["model"],
        num(r["success_rate"], ".3f"),
        score,
        num(r["episodes"], "d"),
        (r["date"] or "-")[:19],
        r["source"],
    ]
    return [_LINE_BREAKS.sub(" ", str(c)) for c in cells]


_LINE_BREAKS = re.compile(r"\s*[\r\n\u2028\u2029]+\s*")


def escape_markdown_cell(text: str) -> str:
    """A markdown table cell showing ``text`` literally (``|`` and backslashes escaped).

    Example:
        >>> escape_markdown_cell("a|b")
        'a\\\\|b'
    """
    return text.replace("\\", "\\\\").replace("|", "\\|")


def render_markdown(entries: Iterable[dict[str, Any]]) -> str:
    """A GitHub-flavoured markdown table (names escaped: see :func:`escape_markdown_cell`)."""
    lines = ["| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    lines += [
        "| " + " | ".join(escape_markdown_cell(c) for c in _cells(r)) + " |" for r in rows(entries)
    ]
    return "\n".join(lines)


def render_json(entries: Iterable[dict[str, Any]]) -> str:
    """The merged rows as a JSON list (strict JSON: no ``NaN`` / ``Infinity``).

    Raises:
        ValueError: A metric is not finite (validated entries never have one).
    """
    return json.dumps(rows(entries), indent=2, ensure_ascii=False, allow_nan=False)


def render_table(entries: Iterable[dict[str, Any]]) -> Any:
    """A rich Table (names shown literally: rich markup in them is escaped)."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="empo-gym leaderboard")
    for c in _COLUMNS:
        table.add_column(c, justify="right" if c in {"success", "score", "episodes"} else "left")
    entries = list(entries)
    for r in rows(entries):
        table.add_row(
            *(escape(c) for c in _cells(r)),
            style="italic dim" if r["source"] == "reported" else None,
        )
    cited = sorted(
        {
            f"{e['reference']['citation']}, {e['reference']['hardware']}"
            for e in entries
            if "reference" in e
        }
    )
    if cited:  # reported rows: say whose figures they are (not runs of this code)
        table.caption = escape(
            "reported (italic): " + "; ".join(cited) + " (hide: --hide-reported)"
        )
    return table
