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
    LeaderboardError,
    build_entry,
    entry_from_result,
    validate_entry,
    write_atomic_json,
    write_entry,
)

__all__ = [
    "DEFAULT_RESULTS_DIR",
    "FORMATS",
    "SCHEMA_VERSION",
    "LeaderboardError",
    "build_entry",
    "entry_from_result",
    "filter_entries",
    "load_entries",
    "load_entry",
    "render_json",
    "render_markdown",
    "render_table",
    "rows",
    "validate_entry",
    "write_atomic_json",
    "write_entry",
]
