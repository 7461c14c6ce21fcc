"""One treatment arm against the control on one metric: the statistics, the verdict, as a plain dict.

This is what `shopkeeper lift` prints per arm and metric, and what an experiment report can reuse:

- a metric whose values are all 0 or 1 is a proportion (Newcombe; delta method for the relative lift),
  anything else a mean (Welch; delta method);
- with a pre-period covariate, CUPED for both kinds; `control` and `treatment` are then the CUPED-adjusted
  means (so `diff` is still `treatment - control`), and `control_raw` / `treatment_raw` the plain means;
- `always_valid_ci_low` / `_high` is the interval that stays valid however often one looks
  (`shopkeeper.experiments.sequential`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from shopkeeper.experiments.sequential import always_valid_interval
from shopkeeper.experiments.stats import (
    MetricKind,
    Summary,
    compare_cuped,
    compare_means,
    compare_proportions,
)
from shopkeeper.experiments.verdict import verdict

Array = npt.NDArray[np.float64]


def metric_kind(values: Array) -> MetricKind:
    """ "proportion" when every value is 0 or 1, else "mean"."""
    return "proportion" if bool(np.isin(values, (0.0, 1.0)).all()) else "mean"


def compare_metric(
    metric: str,
    control_values: Array,
    treatment_values: Array,
    kind: MetricKind,
    control_pre: Array | None = None,
    treatment_pre: Array | None = None,
    treatment_name: str = "treatment",
    control_name: str = "control",
    daily_traffic: float | None = None,
) -> dict[str, Any]:
    """The statistics and verdict of one metric as JSON-ready values (see the module docstring)."""
    cuped: dict[str, float] | None = None
    if control_pre is not None and treatment_pre is not None:
        adjusted = compare_cuped(control_values, control_pre, treatment_values, treatment_pre)
        comparison = adjusted.comparison
        cuped = {"theta": adjusted.theta, "variance_reduction": adjusted.variance_reduction}
    elif kind == "proportion":
        comparison = compare_proportions(
            int(control_values.sum()), control_values.size, int(treatment_values.sum()), treatment_values.size
        )
    else:
        comparison = compare_means(Summary.of(control_values), Summary.of(treatment_values))
    judged = verdict(comparison, treatment_name, control_name, metric=metric, daily_traffic=daily_traffic)
    valid_low, valid_high = always_valid_interval(comparison.control, comparison.treatment)
    if kind == "proportion":  # a difference of two rates lies in [-1, 1]: the interval's valid part of it
        valid_low, valid_high = max(valid_low, -1.0), min(valid_high, 1.0)
    result: dict[str, Any] = {
        "metric": metric,
        "control": comparison.control.mean,
        "treatment": comparison.treatment.mean,
        "diff": comparison.diff,
        "ci_low": comparison.ci_low,
        "ci_high": comparison.ci_high,
        "rel_lift": comparison.rel_lift,
        "verdict": judged.verdict,
        "summary": judged.summary,
        "kind": kind,
        "method": comparison.method,
        "rel_ci_low": comparison.rel_ci_low,
        "rel_ci_high": comparison.rel_ci_high,
        "always_valid_ci_low": valid_low,
        "always_valid_ci_high": valid_high,
        "more_people": judged.more_people,
        "more_days": judged.more_days,
        "control_raw": float(control_values.mean()),
        "treatment_raw": float(treatment_values.mean()),
    }
    if cuped is not None:
        result["cuped"] = cuped
    return result
