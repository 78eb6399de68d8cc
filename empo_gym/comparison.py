"""Paired comparison of two evaluations of the same episodes (e.g. an agent before and after
training): the mean per-episode score difference and its 95% t-interval
(:func:`empo_gym.stats.paired_t_interval`).

Both evaluations must have run the same seeds (so the same goals / task variations): pairing
removes the between-episode spread that an unpaired comparison of two means would keep.

Example:
    >>> d = paired_difference([0.0, 10.0, 20.0, 0.0], [30.0, 40.0, 45.0, 35.0])
    >>> d.mean, round(d.ci95_low, 2), round(d.ci95_high, 2), d.excludes_zero
    (30.0, 23.5, 36.5, True)
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from empo_gym.harness import EvalResult
from empo_gym.stats import paired_t_interval

__all__ = ["PairedDifference", "compare_results", "paired_difference"]


@dataclass(frozen=True)
class PairedDifference:
    """Mean of ``after - before`` over paired episodes and its 95% t-interval."""

    mean: float
    """Mean per-episode difference (after minus before)."""
    ci95_low: float
    """Lower end of the 95% confidence interval of the mean difference."""
    ci95_high: float
    """Upper end of the 95% confidence interval."""
    std: float
    """Sample standard deviation of the differences."""
    episodes: int
    """Number of pairs."""

    @property
    def excludes_zero(self) -> bool:
        """Whether the 95% interval lies entirely above or below 0."""
        return self.ci95_low > 0 or self.ci95_high < 0

    def as_dict(self) -> dict[str, Any]:
        """The fields plus ``excludes_zero`` and the method (for leaderboard entries)."""
        return {
            **asdict(self),
            "excludes_zero": self.excludes_zero,
            "method": "paired t-interval over per-episode score differences (same seeds)",
        }


def paired_difference(before: Sequence[float], after: Sequence[float]) -> PairedDifference:
    """The mean of ``after[i] - before[i]`` with its two-sided 95% t-interval.

    Args:
        before: Per-episode scores of the first evaluation.
        after: Per-episode scores of the second, episode ``i`` paired with ``before[i]``.

    Raises:
        ValueError: The lengths differ or there are fewer than 2 pairs.

    Example:
        >>> d = paired_difference([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
        >>> d.mean, d.ci95_low, d.ci95_high, d.excludes_zero
        (0.0, 0.0, 0.0, False)
    """
    if len(before) != len(after):
        raise ValueError(
            f"got {len(before)} scores before and {len(after)} after; expected one pair per episode"
        )
    if len(before) < 2:
        raise ValueError(
            f"got {len(before)} paired episode(s); expected at least 2 for an interval"
        )
    diffs = [float(b) - float(a) for a, b in zip(before, after, strict=True)]
    mean, half = paired_t_interval(after, before)
    return PairedDifference(mean, mean - half, mean + half, statistics.stdev(diffs), len(diffs))


def compare_results(before: EvalResult, after: EvalResult) -> PairedDifference:
    """:func:`paired_difference` of two evaluations' scores, checking that they share seeds.

    Raises:
        ValueError: The evaluations ran different env settings or episode seeds.
    """
    for key in ("env", "task", "split", "seeds"):
        if before.settings.get(key) != after.settings.get(key):
            raise ValueError(
                f"cannot pair evaluations with different {key}: {before.settings.get(key)!r} "
                f"before, {after.settings.get(key)!r} after; expected the same episodes"
            )
    by_seed = {r.seed: r.score for r in before.records}
    return paired_difference(
        [by_seed[r.seed] for r in after.records], [r.score for r in after.records]
    )
