"""Where a result came from: package versions, Python, platform, git commit, date."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata as md
import os
import platform
import subprocess
import sys
from typing import Any

_PACKAGES = ("empo-gym", "scienceworld", "gymnasium", "torch", "transformers")


def package_version(name: str) -> str | None:
    """Installed version of distribution ``name`` or None."""
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def git_commit(path: str | None = None) -> str | None:
    """The git commit of the source tree (with ``-dirty`` when modified), when available."""
    here = path or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        sha = subprocess.run(
            ["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", here, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def collect(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Provenance block for a leaderboard entry.

    Example:
        >>> p = collect({"seeds": [0, 1]})
        >>> sorted(p["versions"])[:2], p["seeds"]
        (['empo-gym', 'gymnasium'], [0, 1])
    """
    versions = {name: package_version(name) for name in _PACKAGES}
    if versions["empo-gym"] is None:
        from empo_gym import __version__

        versions["empo-gym"] = __version__
    out: dict[str, Any] = {
        "versions": versions,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": {"cpu_count": os.cpu_count()},
        "git_commit": git_commit(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    out.update(extra or {})
    return out
