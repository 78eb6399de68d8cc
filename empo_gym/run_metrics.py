"""The trainers' ``metrics.jsonl``: one JSON object per iteration, and its one reader.

The trainer appends a line per iteration (fsynced) and, on resume, rewrites the file without
the lines of iterations after its checkpoint; ``empo-gym plot`` reads it. Both read it with
:func:`read_metrics`, so they agree on what a file holds: a kill inside an append leaves an
unterminated, unparsable last line, which is dropped; any other unparsable line raises.

Example:
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / METRICS_FILE
    >>> append_metrics(path, {"iteration": 0, "success": 0.5})
    >>> with path.open("a") as fh:
    ...     _ = fh.write('{"iteration": 1, "succ')  # killed mid-append
    >>> read_metrics(path)
    [{'iteration': 0, 'success': 0.5}]
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from empo_gym.atomic_io import write_text_atomic

__all__ = ["METRICS_FILE", "append_metrics", "read_metrics", "write_metrics"]

#: File name of the metrics inside a run directory.
METRICS_FILE = "metrics.jsonl"


def _line(row: dict[str, Any]) -> str:
    return json.dumps(row, sort_keys=True) + "\n"


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Rows of a ``metrics.jsonl`` file, or of ``<run dir>/metrics.jsonl``.

    Raises:
        FileNotFoundError: No metrics file at ``path``.
        ValueError: A line other than a torn last one is not a JSON object (names file:line).
    """
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_FILE
    if not path.exists():
        raise FileNotFoundError(f"no metrics file at {path}; expected a run dir or metrics.jsonl")
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            if number == len(lines):  # no newline after it: an append cut short by a kill
                break
            raise ValueError(f"{path}:{number}: not JSON ({exc.msg}): {line[:80]!r}") from exc
        if not isinstance(row, dict):
            raise ValueError(f"{path}:{number}: expected a JSON object per line, got {line[:80]!r}")
        rows.append(row)
    return rows


def append_metrics(path: str | os.PathLike[str], row: dict[str, Any]) -> None:
    """Append one row and fsync it (a crash loses at most the line being written)."""
    with Path(path).open("a", encoding="utf-8") as fh:
        fh.write(_line(row))
        fh.flush()
        os.fsync(fh.fileno())


def write_metrics(path: str | os.PathLike[str], rows: Sequence[dict[str, Any]]) -> None:
    """Replace the file atomically with ``rows`` (one line each, as :func:`append_metrics`)."""
    write_text_atomic(Path(path), "".join(_line(r) for r in rows))
