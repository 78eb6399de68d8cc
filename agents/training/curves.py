"""Learning curves from the trainers' ``metrics.jsonl`` (for ``empo-gym plot``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from empo_gym.atomic_io import atomic_path
from empo_gym.run_metrics import read_metrics


def moving_average(values: Sequence[float], window: int) -> list[float]:
    """Trailing moving average (the first points average what exists so far).

    Example:
        >>> moving_average([0.0, 1.0, 2.0, 3.0], 2)
        [0.0, 0.5, 1.5, 2.5]
    """
    if window < 1:
        raise ValueError(f"window={window!r}; expected >= 1")
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def plot_curves(
    runs: Mapping[str, str | Path],
    out_png: str | Path,
    metrics: Sequence[str] = ("success", "return"),
    smooth: int = 1,
    title: str | None = None,
) -> Path:
    """Draw one panel per metric with one line per run (e.g. EMPO² and GRPO) to a PNG.

    Args:
        runs: Label -> run directory or metrics.jsonl.
        out_png: Output file (written atomically).
        metrics: Row keys to plot against the iteration.
        smooth: Trailing moving-average window.
        title: Figure title.

    Returns:
        The PNG path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not runs:
        raise ValueError("runs is empty; expected at least one label -> run directory")
    data = {label: read_metrics(path) for label, path in runs.items()}
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for label, rows in data.items():
            points = [(r["iteration"], float(r[metric])) for r in rows if metric in r]
            if not points:
                continue
            xs = [p[0] for p in points]
            ax.plot(xs, moving_average([p[1] for p in points], smooth), label=label)
        ax.set_xlabel("iteration")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return save_figure(fig, out_png)


def save_figure(fig: Any, out_png: str | Path) -> Path:
    """Write a matplotlib figure to a PNG atomically (creating its folder) and close it."""
    import matplotlib.pyplot as plt

    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.tight_layout()
        with atomic_path(out, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=100)
    finally:
        plt.close(fig)
    return out
