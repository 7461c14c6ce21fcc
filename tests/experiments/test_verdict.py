"""The verdict: a win only when every interval shown excludes zero on the good side."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from shopkeeper.experiments.power import sample_size_means, sample_size_proportions
from shopkeeper.experiments.stats import Comparison, Summary, compare_means, compare_proportions
from shopkeeper.experiments.verdict import judge, more_people_needed, verdict


def test_a_clear_win_is_one_plain_sentence() -> None:
    result = compare_proportions(400, 10_000, 500, 10_000)
    found = verdict(result, "personalized", "baseline", metric="conversion")
    assert found.verdict == "win"
    assert found.summary.startswith("personalized beats baseline on conversion by 25.0% (95% CI ")
    assert found.summary.endswith("%).")
    assert found.summary.count(".") == 4  # three decimals and the full stop: one sentence


def test_a_clear_loss() -> None:
    result = compare_proportions(500, 10_000, 400, 10_000)
    found = verdict(result, "personalized", "baseline")
    assert found.verdict == "loss"
    assert found.summary.startswith("baseline is better: personalized does worse by 20.0% (95% CI -")


def test_lower_is_better_flips_the_sides() -> None:
    result = compare_proportions(500, 10_000, 400, 10_000)
    assert judge(result, higher_is_better=False) == "win"


def test_inconclusive_says_how_many_more_people() -> None:
    result = compare_proportions(40, 1000, 48, 1000)
    found = verdict(result, "B", "A", metric="conversion", daily_traffic=500)
    assert found.verdict == "inconclusive"
    n_control = sample_size_proportions(0.04, 0.048, ratio=1.0)
    expected = 2 * math.ceil(n_control) - 2000
    assert found.more_people == expected
    assert found.more_days == math.ceil(expected / 500)
    assert f"need about {expected:,} more people" in found.summary
    assert found.summary.startswith("B is not distinguishable from A on conversion yet (+20.0%, 95% CI -")


def test_no_difference_at_all() -> None:
    result = compare_proportions(40, 1000, 40, 1000)
    found = verdict(result)
    assert found.verdict == "inconclusive" and found.more_people is None
    assert "no difference seen so far" in found.summary


def test_means_use_the_t_test_for_more_people() -> None:
    result = compare_means(Summary(200, 10.0, 25.0), Summary(200, 10.5, 25.0))
    assert judge(result) == "inconclusive"
    more = more_people_needed(result)
    # d = 0.1 needs 1570.7 per arm (tt_ind_solve_power); 200 + 200 are there already.
    assert more == 2 * math.ceil(sample_size_means(0.5, 5.0)) - 400 == 2742


def test_the_relative_interval_must_agree_too() -> None:
    # The difference's interval excludes zero but the relative one does not: no win is claimed.
    comparison = Comparison(
        kind="mean",
        method="welch",
        control=Summary(100, 1.0, 1.0),
        treatment=Summary(100, 1.1, 1.0),
        diff=0.1,
        ci_low=0.01,
        ci_high=0.19,
        rel_lift=0.1,
        rel_ci_low=-0.01,
        rel_ci_high=0.21,
    )
    assert judge(comparison) == "inconclusive"


def test_absolute_numbers_when_the_control_mean_is_zero() -> None:
    result = compare_means(Summary(100, 0.0, 1.0), Summary(100, 0.5, 1.0))
    found = verdict(result, "B", "A")
    assert found.verdict == "win"
    assert found.summary.startswith("B beats A by 0.5 (95% CI 0.2")


@settings(max_examples=300, deadline=None)
@given(
    n0=st.integers(2, 5000),
    n1=st.integers(2, 5000),
    r0=st.floats(0, 1),
    r1=st.floats(0, 1),
)
def test_never_a_win_whose_interval_crosses_zero(n0: int, n1: int, r0: float, r1: float) -> None:
    result = compare_proportions(round(r0 * n0), n0, round(r1 * n1), n1)
    found = verdict(result)
    if found.verdict == "win":
        assert result.ci_low > 0
        assert result.rel_ci_low is None or result.rel_ci_low > 0
        assert "beats" in found.summary
    elif found.verdict == "loss":
        assert result.ci_high < 0
    else:
        assert result.ci_low <= 0 <= result.ci_high or (result.rel_ci_low or 0) <= 0 <= (
            result.rel_ci_high or 0
        )
        assert "not distinguishable" in found.summary


def test_no_relative_lift_against_a_negative_control_mean() -> None:
    # Regression: a ratio to a negative mean printed "+-200%" and contradicted the difference's sign.
    result = compare_means(Summary.of([-1.0, -2.0, -3.0]), Summary.of([1.0, 2.0, 3.0]))
    assert result.rel_lift is None
    found = verdict(result, "B", "A")
    assert found.verdict == "win"
    assert found.summary == "B beats A by 4 (95% CI 1.733 to 6.267)."


def test_percentage_points_when_the_relative_interval_is_degenerate() -> None:
    # Everyone converted in both arms: the delta method's interval is [0, 0], Newcombe's is not.
    result = compare_proportions(10, 10, 12, 12)
    assert result.rel_ci_low == result.rel_ci_high == 0.0
    found = verdict(result, "B", "A")
    assert found.verdict == "inconclusive"
    assert found.summary.startswith(
        "B is not distinguishable from A yet (0.0 points, 95% CI -24.2 points to 27.8"
    )
