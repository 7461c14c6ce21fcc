"""Lift with honest 95% confidence intervals: Wilson, Newcombe, Welch, the delta method and CUPED.

Every comparison is treatment minus control. The intervals:
- a single proportion: Wilson's score interval;
- a difference of proportions: Newcombe's hybrid score interval (his method 10), built from the two Wilson
  intervals; it stays inside [-1, 1] and behaves near 0 and 1, where the Wald interval does not;
- a difference of means: Welch's t interval (unequal variances, Welch-Satterthwaite degrees of freedom);
- the relative lift `treatment / control - 1`: the delta method on the ratio of the two means, with the
  normal quantile; only for a positive control mean (a ratio to zero or a negative mean means nothing);
- CUPED (Deng, Xu, Kohavi and Walker, 2013): each person's outcome less `theta * (pre - mean pre)`, where
  `theta` is the within-arm pooled covariance of outcome and pre-period covariate over the pooled variance
  of the covariate; then Welch and the delta method on the adjusted outcomes. The adjusted means are
  unbiased for the same lift, with less variance the more the covariate predicts the outcome;
- sample ratio mismatch: a chi-square goodness-of-fit test of the arm counts against the intended
  weights, flagged when p < 0.001.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import stats as _scipy

MetricKind = Literal["proportion", "mean"]
SRM_THRESHOLD = 0.001
Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Summary:
    """What the statistics need of one arm's metric: the count, the mean and the sample variance."""

    n: int
    mean: float
    variance: float

    @classmethod
    def of(cls, values: npt.ArrayLike) -> Summary:
        array = np.asarray(values, dtype=np.float64)
        if array.ndim != 1 or array.size == 0:
            raise ValueError("a summary needs a non-empty 1-d array")
        variance = float(array.var(ddof=1)) if array.size > 1 else 0.0
        return cls(n=int(array.size), mean=float(array.mean()), variance=variance)

    @classmethod
    def of_proportion(cls, successes: int, n: int) -> Summary:
        """A 0/1 metric: mean x/n and its sample variance x(n-x)/(n(n-1))."""
        if n <= 0 or not 0 <= successes <= n:
            raise ValueError(f"need 0 <= successes <= n and n > 0, not {successes}/{n}")
        variance = successes * (n - successes) / (n * (n - 1)) if n > 1 else 0.0
        return cls(n=n, mean=successes / n, variance=variance)


@dataclass(frozen=True)
class Comparison:
    """Treatment against control on one metric: the difference and relative lift with their CIs."""

    kind: MetricKind
    method: str
    control: Summary
    treatment: Summary
    diff: float
    ci_low: float
    ci_high: float
    rel_lift: float | None
    rel_ci_low: float | None
    rel_ci_high: float | None
    confidence: float = 0.95

    @property
    def pooled_sd(self) -> float:
        """The square root of the average of the two arms' variances (for power calculations)."""
        return math.sqrt((self.control.variance + self.treatment.variance) / 2)


def _z(confidence: float) -> float:
    return float(_scipy.norm.ppf(0.5 + confidence / 2))


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson's score interval for the proportion successes / n."""
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n > 0, not {successes}/{n}")
    z = _z(confidence)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_interval(
    successes_treatment: int,
    n_treatment: int,
    successes_control: int,
    n_control: int,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Newcombe's hybrid score interval for p_treatment - p_control."""
    p1, p0 = successes_treatment / n_treatment, successes_control / n_control
    low1, high1 = wilson_interval(successes_treatment, n_treatment, confidence)
    low0, high0 = wilson_interval(successes_control, n_control, confidence)
    diff = p1 - p0
    return (
        diff - math.sqrt((p1 - low1) ** 2 + (high0 - p0) ** 2),
        diff + math.sqrt((high1 - p1) ** 2 + (p0 - low0) ** 2),
    )


def welch_interval(control: Summary, treatment: Summary, confidence: float = 0.95) -> tuple[float, float]:
    """Welch's t interval for mean_treatment - mean_control."""
    if control.n < 2 or treatment.n < 2:
        raise ValueError("Welch's interval needs at least 2 values in each arm")
    a, b = treatment.variance / treatment.n, control.variance / control.n
    diff = treatment.mean - control.mean
    se = math.sqrt(a + b)
    if se == 0:
        return diff, diff
    df = (a + b) ** 2 / (a * a / (treatment.n - 1) + b * b / (control.n - 1))
    half = float(_scipy.t.ppf(0.5 + confidence / 2, df)) * se
    return diff - half, diff + half


def relative_lift_interval(
    control: Summary, treatment: Summary, confidence: float = 0.95
) -> tuple[float, float, float] | None:
    """treatment / control - 1 with its delta-method interval; None unless the control mean is positive."""
    if control.mean <= 0:
        return None
    ratio = treatment.mean / control.mean
    variance = treatment.variance / (treatment.n * control.mean**2) + control.variance * treatment.mean**2 / (
        control.n * control.mean**4
    )
    half = _z(confidence) * math.sqrt(variance)
    return ratio - 1, ratio - 1 - half, ratio - 1 + half


def _with_relative(
    kind: MetricKind,
    method: str,
    control: Summary,
    treatment: Summary,
    interval: tuple[float, float],
    confidence: float,
) -> Comparison:
    relative = relative_lift_interval(control, treatment, confidence)
    return Comparison(
        kind=kind,
        method=method,
        control=control,
        treatment=treatment,
        diff=treatment.mean - control.mean,
        ci_low=interval[0],
        ci_high=interval[1],
        rel_lift=None if relative is None else relative[0],
        rel_ci_low=None if relative is None else relative[1],
        rel_ci_high=None if relative is None else relative[2],
        confidence=confidence,
    )


def compare_proportions(
    successes_control: int,
    n_control: int,
    successes_treatment: int,
    n_treatment: int,
    confidence: float = 0.95,
) -> Comparison:
    """A 0/1 metric: Newcombe for the difference, the delta method for the relative lift."""
    control = Summary.of_proportion(successes_control, n_control)
    treatment = Summary.of_proportion(successes_treatment, n_treatment)
    interval = newcombe_interval(successes_treatment, n_treatment, successes_control, n_control, confidence)
    return _with_relative("proportion", "newcombe", control, treatment, interval, confidence)


def compare_means(control: Summary, treatment: Summary, confidence: float = 0.95) -> Comparison:
    """Any numeric metric: Welch for the difference, the delta method for the relative lift."""
    interval = welch_interval(control, treatment, confidence)
    return _with_relative("mean", "welch", control, treatment, interval, confidence)


@dataclass(frozen=True)
class CupedResult:
    """A CUPED comparison and what the adjustment did."""

    comparison: Comparison
    theta: float
    variance_reduction: float  # 1 - adjusted variance / raw variance, pooled over the arms
    raw: Comparison


def cuped_theta(
    outcome_control: Array, pre_control: Array, outcome_treatment: Array, pre_treatment: Array
) -> float:
    """Within-arm pooled cov(outcome, pre) / var(pre); 0 when the covariate does not vary."""
    numerator = 0.0
    denominator = 0.0
    for y, x in ((outcome_control, pre_control), (outcome_treatment, pre_treatment)):
        dx = x - x.mean()
        numerator += float(np.dot(y - y.mean(), dx))
        denominator += float(np.dot(dx, dx))
    return numerator / denominator if denominator > 0 else 0.0


def compare_cuped(
    outcome_control: npt.ArrayLike,
    pre_control: npt.ArrayLike,
    outcome_treatment: npt.ArrayLike,
    pre_treatment: npt.ArrayLike,
    confidence: float = 0.95,
) -> CupedResult:
    """CUPED-adjusted Welch and delta-method intervals (see the module docstring)."""
    y0, x0 = np.asarray(outcome_control, np.float64), np.asarray(pre_control, np.float64)
    y1, x1 = np.asarray(outcome_treatment, np.float64), np.asarray(pre_treatment, np.float64)
    if y0.shape != x0.shape or y1.shape != x1.shape:
        raise ValueError("each arm needs one pre-period value per outcome")
    theta = cuped_theta(y0, x0, y1, x1)
    centre = float(np.concatenate([x0, x1]).mean())
    adjusted0 = Summary.of(y0 - theta * (x0 - centre))
    adjusted1 = Summary.of(y1 - theta * (x1 - centre))
    raw = compare_means(Summary.of(y0), Summary.of(y1), confidence)
    interval = welch_interval(adjusted0, adjusted1, confidence)
    comparison = _with_relative("mean", "cuped-welch", adjusted0, adjusted1, interval, confidence)
    raw_variance = raw.control.variance + raw.treatment.variance
    adjusted_variance = adjusted0.variance + adjusted1.variance
    reduction = 1 - adjusted_variance / raw_variance if raw_variance > 0 else 0.0
    return CupedResult(comparison=comparison, theta=theta, variance_reduction=reduction, raw=raw)


@dataclass(frozen=True)
class SampleRatioCheck:
    """The chi-square goodness-of-fit test of the arm counts against the intended traffic weights."""

    chi2: float
    p_value: float
    expected: tuple[float, ...]
    mismatch: bool


def sample_ratio_mismatch(
    counts: Sequence[int], weights: Sequence[float], threshold: float = SRM_THRESHOLD
) -> SampleRatioCheck:
    """Whether the arms' counts are implausible under the intended weights (p < `threshold`)."""
    observed = np.asarray(counts, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if observed.shape != w.shape or observed.size < 2:
        raise ValueError("need one intended weight per arm, and at least two arms")
    if (w <= 0).any() or (observed < 0).any():
        raise ValueError("weights must be positive and counts non-negative")
    expected = observed.sum() * w / w.sum()
    if observed.sum() == 0:
        return SampleRatioCheck(0.0, 1.0, tuple(float(e) for e in expected), False)
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    p_value = float(_scipy.chi2.sf(chi2, observed.size - 1))
    return SampleRatioCheck(chi2, p_value, tuple(float(e) for e in expected), p_value < threshold)
