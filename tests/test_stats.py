"""Confidence intervals on hand-computed numbers."""

from __future__ import annotations

import math

import pytest

from empo_gym.stats import paired_t_interval, t_interval


def test_t_interval_matches_hand_computation() -> None:
    # mean 2, sample sd 1, n 4: half = 3.182 * 1 / 2
    mean, half = t_interval([1.0, 2.0, 3.0, 2.0])
    assert mean == 2.0
    assert half == pytest.approx(3.1824 * math.sqrt(2 / 3) / 2)


def test_single_value_has_no_interval_and_empty_is_an_error() -> None:
    assert math.isnan(t_interval([0.5])[1])
    with pytest.raises(ValueError, match="empty"):
        t_interval([])


def test_paired_interval_is_over_differences() -> None:
    mean, half = paired_t_interval([3.0, 5.0, 7.0], [1.0, 3.0, 5.0])
    assert (mean, half) == (2.0, 0.0)  # identical differences: no spread
    with pytest.raises(ValueError, match="equal lengths"):
        paired_t_interval([1.0], [1.0, 2.0])
