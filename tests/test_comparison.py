"""The paired comparison of two evaluations (trained minus untrained, same seeds)."""

from __future__ import annotations

import math
import statistics

import pytest

from empo_gym.comparison import compare_results, paired_difference
from empo_gym.harness import EpisodeRecord, EvalResult
from empo_gym.stats import t_quantile_975


def test_t_quantiles_match_the_published_table() -> None:
    # Student's t, two-sided 95%: standard table values
    for df, t in ((1, 12.706), (2, 4.303), (5, 2.571), (10, 2.228), (29, 2.045), (30, 2.042)):
        assert t_quantile_975(df) == pytest.approx(t, abs=5e-4)
    for df, t in ((40, 2.021), (60, 2.000), (120, 1.980)):
        assert t_quantile_975(df) == pytest.approx(t, abs=5e-4)
    assert t_quantile_975(10**9) == pytest.approx(1.95996, abs=1e-5)
    values = [t_quantile_975(df) for df in range(1, 200)]
    assert values == sorted(values, reverse=True)  # shrinks towards the normal quantile


@pytest.mark.parametrize("df", [0, -1, 2.5, True])
def test_t_quantile_rejects_bad_degrees_of_freedom(df) -> None:
    with pytest.raises(ValueError, match="expected a positive int"):
        t_quantile_975(df)


def test_paired_difference_by_hand() -> None:
    before = [10.0, 0.0, 50.0, 20.0, 0.0]
    after = [30.0, 10.0, 50.0, 60.0, 15.0]
    diffs = [20.0, 10.0, 0.0, 40.0, 15.0]  # mean 17, sample std sqrt(220)
    d = paired_difference(before, after)
    assert d.mean == 17.0 and d.episodes == 5
    assert d.std == pytest.approx(math.sqrt(220.0)) == pytest.approx(statistics.stdev(diffs))
    half = 2.7764 * math.sqrt(220.0) / math.sqrt(5)  # t(0.975, 4) = 2.7764
    assert (d.ci95_low, d.ci95_high) == pytest.approx((17.0 - half, 17.0 + half))
    assert d.ci95_low == pytest.approx(-1.42, abs=0.01)  # 5 episodes: a gain of 17 is not enough
    assert not d.excludes_zero and d.as_dict()["excludes_zero"] is False


def test_pairing_beats_the_unpaired_spread() -> None:
    # every episode gains exactly 5 on very different baselines: paired, that is certain
    before = [0.0, 40.0, 80.0, 10.0]
    d = paired_difference(before, [b + 5.0 for b in before])
    assert (d.mean, d.ci95_low, d.ci95_high) == (5.0, 5.0, 5.0) and d.excludes_zero


def test_no_difference_and_a_loss() -> None:
    same = paired_difference([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert (same.mean, same.excludes_zero) == (0.0, False)
    mixed = paired_difference([0.0, 10.0, 0.0, 10.0], [10.0, 0.0, 10.0, 0.0])
    assert mixed.ci95_low < 0 < mixed.ci95_high and not mixed.excludes_zero
    worse = paired_difference([50.0, 60.0, 70.0], [10.0, 15.0, 20.0])
    assert worse.ci95_high < 0 and worse.excludes_zero


def test_paired_difference_rejects_unpaired_input() -> None:
    with pytest.raises(ValueError, match="got 2 scores before and 3 after"):
        paired_difference([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="expected at least 2"):
        paired_difference([1.0], [2.0])


def _result(scores: list[float], seeds: list[int], split: str = "test") -> EvalResult:
    records = [
        EpisodeRecord(i, s, "t", x, x >= 100, 3, x / 100, True, False, 0, 0.1)
        for i, (s, x) in enumerate(zip(seeds, scores, strict=True))
    ]
    settings = {"env": "guess", "task": None, "split": split, "seeds": seeds}
    return EvalResult(records=records, metrics={}, settings=settings, wall_s=0.0)


def test_compare_results_pairs_by_seed_and_checks_the_episodes() -> None:
    before = _result([0.0, 100.0, 0.0], [0, 1, 2])
    after = _result([100.0, 100.0, 100.0], [0, 1, 2])
    d = compare_results(before, after)
    assert d.mean == pytest.approx(200.0 / 3) and d.episodes == 3
    with pytest.raises(ValueError, match="different seeds"):
        compare_results(before, _result([100.0] * 3, [5, 6, 7]))
    with pytest.raises(ValueError, match="different split"):
        compare_results(before, _result([100.0] * 3, [0, 1, 2], split="train"))
