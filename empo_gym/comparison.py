"""Paired comparison of two evaluations of the same episodes (e.g. an agent before and after
training): the mean per-episode score difference and its 95% t-interval.

Both evaluations must have run the same seeds (so the same goals / task variations): pairing
removes the between-episode spread that an unpaired comparison of two means would keep.

Example:
    >>> d = paired_difference([0.0, 10.0, 20.0, 0.0], [30.0, 40.0, 45.0, 35.0])
    >>> d.mean, round(d.ci95_low, 2), round(d.ci95_high, 2), d.excludes_zero
    (30.0, 23.5, 36.5, True)
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from empo_gym.harness import EvalResult

__all__ = ["PairedDifference", "compare_results", "paired_difference", "t_quantile_975"]

#: Two-sided 95% critical values of Student's t for 1..30 degrees of freedom.
_T975 = (
    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
    2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
    2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
)  # fmt: skip
_Z975 = 1.959963984540054


def t_quantile_975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom.

    Exact table values up to 30; beyond, the Cornish-Fisher expansion around the normal
    quantile (error below 1e-4 from df = 31 on), so no scipy is needed.

    Example:
        >>> t_quantile_975(9), round(t_quantile_975(60), 3), round(t_quantile_975(10**9), 3)
        (2.2622, 2.0, 1.96)
    """
    if isinstance(df, bool) or not isinstance(df, int) or df < 1:
        raise ValueError(f"df={df!r}; expected a positive int (episodes - 1)")
    if df <= len(_T975):
        return _T975[df - 1]
    z = _Z975
    return (
        z
        + (z**3 + z) / (4 * df)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
    )


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
    n = len(diffs)
    mean = statistics.fmean(diffs)
    std = statistics.stdev(diffs)
    half = t_quantile_975(n - 1) * std / math.sqrt(n)
    return PairedDifference(mean, mean - half, mean + half, std, n)


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
