"""Group statistics against scipy's reference implementations."""

from __future__ import annotations

import math

import pytest
from scipy import stats as sps

from trainlab.studies.stats import compare, format_summary, summarize


def test_summary_mean_std_and_t_interval() -> None:
    xs = [0.81, 0.84, 0.80, 0.86]
    s = summarize(xs)
    assert s.n == 4 and s.mean == pytest.approx(sum(xs) / 4)
    assert s.std == pytest.approx(sps.tstd(xs))
    lo, hi = sps.t.interval(0.95, 3, loc=s.mean, scale=sps.sem(xs))
    assert (s.ci95_low, s.ci95_high) == (pytest.approx(lo), pytest.approx(hi))
    assert "± " in format_summary(s) and "95% CI" in format_summary(s)


def test_summary_of_one_and_none_and_nan() -> None:
    assert summarize([0.5]).std == 0.0 and summarize([0.5]).ci95_low is None
    assert summarize([]).n == 0 and math.isnan(summarize([]).mean)
    assert summarize([0.5, float("nan"), 0.7]).n == 2  # non-finite values are left out
    assert format_summary(summarize([])) == "-"


def test_welch_and_paired_match_scipy() -> None:
    a, b = [0.80, 0.82, 0.81], [0.85, 0.88, 0.86]
    w = compare(a, b)
    ref = sps.ttest_ind(b, a, equal_var=False)
    assert w.test == "welch" and w.p == pytest.approx(ref.pvalue)
    assert w.diff == pytest.approx(sum(b) / 3 - sum(a) / 3)
    p = compare(a, b, paired=True)
    assert p.test == "paired" and p.p == pytest.approx(sps.ttest_rel(b, a).pvalue)
    assert compare(a, b[:2], paired=True).test == "welch"  # unequal lengths cannot pair


def test_undefined_tests_say_so() -> None:
    assert compare([0.5], [0.6]).p is None  # one value per side
    assert compare([0.5, 0.5], [0.5, 0.5]).p is None  # no variance anywhere
