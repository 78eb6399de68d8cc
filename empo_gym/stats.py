"""Confidence intervals for the benches and the run pipeline (no SciPy needed).

One home for the interval math: :func:`t_interval` (a mean and its Student-t half-width over a
few seeds or episodes) and :func:`paired_t_interval` (the same over paired differences, e.g. the
trained vs the untrained policy on the same episodes).

Example:
    >>> mean, half = t_interval([0.2, 0.4, 0.6])
    >>> round(mean, 3), round(half, 3)
    (0.4, 0.497)
    >>> paired_t_interval([1.0, 2.0, 3.0], [0.0, 1.0, 1.0])[0]
    1.3333333333333333
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

__all__ = ["paired_t_interval", "t_interval", "t_quantile_975"]

#: Two-sided 95 % Student-t quantiles (0.975) for 1..30 degrees of freedom.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t_quantile_975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom (normal beyond 120).

    Example:
        >>> t_quantile_975(4), t_quantile_975(1000)
        (2.776, 1.96)
    """
    if df < 1:
        raise ValueError(f"df={df!r}; expected >= 1 degree of freedom")
    if df <= len(_T975):
        return _T975[df - 1]
    if df <= 40:
        return 2.021
    if df <= 60:
        return 2.000
    if df <= 120:
        return 1.980
    return 1.96


def t_interval(values: Sequence[float]) -> tuple[float, float]:
    """``(mean, half-width)`` of the 95 % Student-t interval of the mean of ``values``.

    One value has no spread: its half-width is ``nan`` (an interval cannot be claimed).

    Raises:
        ValueError: ``values`` is empty.
    """
    xs = [float(v) for v in values]
    if not xs:
        raise ValueError("values is empty; expected at least one number")
    mean = statistics.fmean(xs)
    if len(xs) == 1:
        return mean, float("nan")
    return mean, t_quantile_975(len(xs) - 1) * statistics.stdev(xs) / math.sqrt(len(xs))


def paired_t_interval(after: Sequence[float], before: Sequence[float]) -> tuple[float, float]:
    """``(mean, half-width)`` of the 95 % t interval of the paired differences ``after - before``.

    Raises:
        ValueError: The two sequences differ in length (they must pair episode by episode).
    """
    if len(after) != len(before):
        raise ValueError(
            f"paired values need equal lengths; got {len(after)} after and {len(before)} before"
        )
    return t_interval([float(a) - float(b) for a, b in zip(after, before, strict=True)])
