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

#: Two-sided 95 % critical values of Student's t for 1..30 degrees of freedom.
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
        raise ValueError(f"df={df!r}; expected a positive int (values - 1)")
    if df <= len(_T975):
        return _T975[df - 1]
    z = _Z975
    return (
        z
        + (z**3 + z) / (4 * df)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
    )


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
