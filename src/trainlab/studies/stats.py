"""Statistics for groups of runs: mean ± std, a 95 % confidence interval, and a test of the
difference between two groups (Welch's t-test, or the paired t-test when seeds match).

Every grouped figure in trainlab (sweep groups over seeds, cross-validation folds,
``trainlab compare`` given two groups) goes through these two functions, so "batch norm
helped" always comes with the same figures.

>>> s = summarize([0.90, 0.91, 0.92])
>>> round(s.mean, 3), round(s.std, 3), s.n
(0.91, 0.01, 3)
>>> d = compare([0.90, 0.91, 0.92], [0.80, 0.81, 0.83])
>>> d.test, d.p < 0.01
('welch', True)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Summary", "Difference", "summarize", "compare", "format_summary"]


@dataclass(frozen=True)
class Summary:
    """Figures of one group: ``std`` is the sample standard deviation (n − 1); the interval is
    Student's t interval for the mean (``None`` bounds with fewer than two values)."""

    n: int
    mean: float
    std: float
    ci95_low: float | None
    ci95_high: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Difference:
    """``mean_b - mean_a`` and the test of it: ``welch`` (unequal variances) or ``paired``
    (the same seeds in both groups, matched by position). ``p`` is two-sided; ``None`` where
    the test is undefined (fewer than two values, or zero variance on both sides)."""

    test: str
    diff: float
    t: float | None
    p: float | None
    n_a: int
    n_b: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _finite(values: Sequence[float]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def summarize(values: Sequence[float]) -> Summary:
    """Mean, sample standard deviation and the 95 % t interval of the finite ``values``."""
    from scipy import stats

    xs = _finite(values)
    n = len(xs)
    if n == 0:
        return Summary(0, math.nan, math.nan, None, None)
    mean = sum(xs) / n
    if n == 1:
        return Summary(1, mean, 0.0, None, None)
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    half = float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half, mean + half)


def compare(
    a: Sequence[float], b: Sequence[float], *, paired: bool = False
) -> Difference:
    """Test whether groups ``a`` and ``b`` differ: Welch's t-test, or (``paired=True`` and
    equal lengths) the paired t-test on ``b[i] - a[i]``."""
    from scipy import stats

    xa, xb = _finite(a), _finite(b)
    diff = (sum(xb) / len(xb) if xb else math.nan) - (sum(xa) / len(xa) if xa else math.nan)
    paired = paired and len(xa) == len(xb) == len(a) == len(b)
    if len(xa) < 2 or len(xb) < 2:
        return Difference("paired" if paired else "welch", diff, None, None, len(xa), len(xb))
    test = "paired" if paired else "welch"
    spread = [b - a for a, b in zip(xa, xb)] if paired else xa + xb
    if paired and max(spread) - min(spread) < 1e-12 or not paired and _constant(xa, xb):
        return Difference(test, diff, None, None, len(xa), len(xb))  # no variance: no test
    with warnings.catch_warnings():  # scipy warns when one group is constant: p still holds
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.ttest_rel(xb, xa) if paired else stats.ttest_ind(xb, xa, equal_var=False)
    t, p = float(res.statistic), float(res.pvalue)
    if not math.isfinite(p):
        return Difference(test, diff, None, None, len(xa), len(xb))
    return Difference(test, diff, t, p, len(xa), len(xb))


def _constant(xa: list[float], xb: list[float]) -> bool:
    return max(xa) - min(xa) < 1e-12 and max(xb) - min(xb) < 1e-12


def format_summary(s: Summary, digits: int = 4) -> str:
    """``0.9100 ± 0.0100 (n=3, 95% CI 0.8852–0.9348)``."""
    if s.n == 0:
        return "-"
    text = f"{s.mean:.{digits}f} ± {s.std:.{digits}f} (n={s.n}"
    if s.ci95_low is not None and s.ci95_high is not None:
        text += f", 95% CI {s.ci95_low:.{digits}f}–{s.ci95_high:.{digits}f}"
    return text + ")"
