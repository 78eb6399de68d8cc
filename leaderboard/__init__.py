"""The empo-gym leaderboard: one JSON file per run (``results/``), a schema, merging, rendering."""

from empo_gym.leaderboard.board import (
    DEFAULT_RESULTS_DIR,
    FORMATS,
    filter_entries,
    load_entries,
    load_entry,
    render_json,
    render_markdown,
    render_table,
    rows,
)
from empo_gym.leaderboard.entry import (
    SCHEMA_VERSION,
    SOURCES,
    LeaderboardError,
    build_entry,
    entry_from_result,
    entry_source,
    validate_entry,
    write_atomic_json,
    write_entry,
)
from empo_gym.leaderboard.reported import is_reported, measured_runs, reported_entries

__all__ = [
    "DEFAULT_RESULTS_DIR",
    "FORMATS",
    "SCHEMA_VERSION",
    "SOURCES",
    "LeaderboardError",
    "build_entry",
    "entry_from_result",
    "entry_source",
    "filter_entries",
    "is_reported",
    "load_entries",
    "load_entry",
    "measured_runs",
    "render_json",
    "render_markdown",
    "render_table",
    "reported_entries",
    "rows",
    "validate_entry",
    "write_atomic_json",
    "write_entry",
]
