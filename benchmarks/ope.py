"""Off-policy evaluation on the real Open Bandit Dataset sample (ZOZOTOWN): does it find the TS policy's CTR?

For each campaign (all, men, women), the uniform-random log (10,000 impressions) is used to estimate the
click rate that the Bernoulli Thompson sampling (BTS) policy's action choices would get. The ground truth is
the BTS log's own observed CTR (on-policy, 10,000 impressions of the same week), with its Wilson 95% CI.
The random log's own CTR (the uniform policy's value) is the naive anchor an estimate has to beat.

The evaluation policy's action distribution pi_e(item | position) comes from the BTS log, two ways:
- `avg`: the BTS policy's choice frequencies per position over the week (the time-averaged action
  distribution; the BTS posteriors were updated in batches during the week, so its propensities vary);
- `time`: for each random-log impression, each item's BTS propensity at that position last logged at or
  before that time (the first one logged before it was ever seen), normalised to sum to 1 per position.

Estimators: shopkeeper.experiments.ope's IPW, self-normalized IPW and doubly robust (reward model: the
random log's mean click per item and position), with percentile bootstrap 95% CIs (2,000 resamples).

obp (Open Bandit Pipeline) cannot be installed here: its last release, 0.5.7, is an sdist that requires
Python < 3.11 (pip refuses it on 3.11) and pins Pillow 9.1.1 and mypy-extensions < 0.5 (which mypy >= 1
cannot use). So the `reference` columns are an independent re-implementation of obp's documented estimator
formulas (its `InverseProbabilityWeighting`, `SelfNormalizedInverseProbabilityWeighting` and
`DoublyRobust` with an `action_dist` of shape (rounds, actions, positions)), written separately from
shopkeeper's code, not obp itself. They must agree to rounding.

    .venv/bin/python benchmarks/ope.py [--data DIR] [--bootstrap N]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from goals import record
from shared_data import OPEN_BANDIT

from shopkeeper.experiments.ope import OffPolicyEstimate, PerActionMeanModel, evaluate_policy
from shopkeeper.experiments.stats import wilson_interval

DATA = OPEN_BANDIT
CAMPAIGNS = ("all", "men", "women")
POSITIONS = 3
ROUNDING = 1e-12  # "they must agree to rounding": the CTRs are about 0.005, float64 rounding about 1e-18


def read_log(data: Path, policy: str, campaign: str) -> pd.DataFrame:
    frame = pd.read_csv(
        data / policy / campaign / f"{campaign}.csv.gz",
        usecols=["timestamp", "item_id", "position", "click", "propensity_score"],
    )
    frame["time"] = pd.to_datetime(frame["timestamp"]).astype("int64")
    frame["slot"] = frame["position"] - 1
    return frame.sort_values("time", kind="stable").reset_index(drop=True)


def averaged_distribution(bts: pd.DataFrame, n_items: int) -> np.ndarray:
    """(items, positions): how often BTS chose each item at each position over the week."""
    counts = np.zeros((n_items, POSITIONS))
    np.add.at(counts, (bts["item_id"].to_numpy(), bts["slot"].to_numpy()), 1.0)
    return counts / counts.sum(axis=0, keepdims=True)


def time_matched_distribution(bts: pd.DataFrame, random: pd.DataFrame, n_items: int) -> np.ndarray:
    """(rounds, items, positions): each item's last BTS propensity logged before each random impression."""
    out = np.zeros((len(random), n_items, POSITIONS))
    times = random["time"].to_numpy()
    for (item, slot), group in bts.groupby(["item_id", "slot"]):
        logged_times = group["time"].to_numpy()
        scores = group["propensity_score"].to_numpy()
        last = np.searchsorted(logged_times, times, side="right") - 1
        out[:, int(item), int(slot)] = scores[np.maximum(last, 0)]
    totals = out.sum(axis=1, keepdims=True)
    return out / np.where(totals > 0, totals, 1.0)


# ---- the reference: obp's documented estimator formulas, written out independently --------------------
def reference_estimates(
    reward: np.ndarray,
    action: np.ndarray,
    position: np.ndarray,
    pscore: np.ndarray,
    action_dist: np.ndarray,
    estimated_rewards_by_reg_model: np.ndarray,
) -> dict[str, float]:
    rounds = np.arange(reward.shape[0])
    iw = action_dist[rounds, action, position] / pscore
    ipw = float(np.mean(reward * iw))
    snipw = float(np.mean(reward * iw) / np.mean(iw))
    q_hat_at_position = estimated_rewards_by_reg_model[rounds, :, position]
    pi_e_at_position = action_dist[rounds, :, position]
    q_hat_factual = estimated_rewards_by_reg_model[rounds, action, position]
    dr_rounds = np.average(q_hat_at_position, weights=pi_e_at_position, axis=1) + iw * (
        reward - q_hat_factual
    )
    return {"ipw": ipw, "snipw": snipw, "dr": float(np.mean(dr_rounds))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--bootstrap", type=int, default=2000)
    args = parser.parse_args()
    summary_rows: list[tuple[str, OffPolicyEstimate, float, float]] = []
    largest_gap = 0.0
    for campaign in CAMPAIGNS:
        random = read_log(args.data, "random", campaign)
        bts = read_log(args.data, "bts", campaign)
        n_items = int(max(random["item_id"].max(), bts["item_id"].max())) + 1
        truth = float(bts["click"].mean())
        truth_low, truth_high = wilson_interval(int(bts["click"].sum()), len(bts))
        naive = float(random["click"].mean())
        naive_low, naive_high = wilson_interval(int(random["click"].sum()), len(random))
        reward = random["click"].to_numpy(dtype=np.float64)
        action = random["item_id"].to_numpy(dtype=np.int64)
        slot = random["slot"].to_numpy(dtype=np.int64)
        pscore = random["propensity_score"].to_numpy(dtype=np.float64)
        model = PerActionMeanModel(n_items, n_strata=POSITIONS).fit(action, reward, slot)
        q = model.predict(slot)  # (rounds, items): the model at each impression's own position
        q3 = np.repeat(model.means_.T[None, :, :], len(random), axis=0)  # (rounds, items, positions)
        print(f"\n=== campaign {campaign}: {len(random):,} random impressions, {n_items} items ===")
        print(f"ground truth, BTS on-policy CTR: {truth:.5f} (95% CI {truth_low:.5f} to {truth_high:.5f})")
        print(f"naive anchor, random-log CTR:    {naive:.5f} (95% CI {naive_low:.5f} to {naive_high:.5f})")
        print(
            f"the truth's own noise: its 95% CI is {(truth_low - truth) / truth:+.0%} to "
            f"{(truth_high - truth) / truth:+.0%} of it ({int(bts['click'].sum())} clicks)"
        )
        header = (
            f"{'pi_e':<5} {'estimator':<9} {'estimate':>9} {'95% CI (bootstrap)':>21} "
            f"{'rel. err':>9} {'reference':>10} {'|ours - ref|':>12} {'seconds':>8}"
        )
        print(header)
        print("-" * len(header))
        distributions = {
            "avg": np.repeat(averaged_distribution(bts, n_items)[None, :, :], len(random), axis=0),
            "time": time_matched_distribution(bts, random, n_items),
        }
        for name, action_dist in distributions.items():
            target = action_dist[np.arange(len(random)), :, slot]  # (rounds, items) at the logged position
            started = time.perf_counter()
            ours = evaluate_policy(
                reward, action, pscore, target, q, n_bootstrap=args.bootstrap, random_state=0
            )
            seconds = time.perf_counter() - started
            reference = reference_estimates(reward, action, slot, pscore, action_dist, q3)
            for estimate in ours:
                error = (estimate.estimate - truth) / truth
                gap = abs(estimate.estimate - reference[estimate.estimator])
                largest_gap = max(largest_gap, gap)
                print(
                    f"{name:<5} {estimate.estimator:<9} {estimate.estimate:9.5f} "
                    f"{estimate.ci_low:9.5f} to {estimate.ci_high:7.5f} {error:+9.1%} "
                    f"{reference[estimate.estimator]:10.5f} {gap:12.1e} {seconds:8.2f}"
                )
                summary_rows.append((name, estimate, error, truth))
        naive_error = (naive - truth) / truth
        print(f"{'':<5} {'naive':<9} {naive:9.5f} {naive_low:9.5f} to {naive_high:7.5f} {naive_error:+9.1%}")
        summary_rows.append(
            ("naive", OffPolicyEstimate("ctr", naive, naive_low, naive_high), naive_error, truth)
        )
    print("\n=== summary over the three campaigns: against the BTS on-policy CTR ===")
    for name, estimators in (
        ("avg", ("ipw", "snipw", "dr")),
        ("time", ("ipw", "snipw", "dr")),
        ("naive", ("ctr",)),
    ):
        for estimator in estimators:
            rows = [r for r in summary_rows if r[0] == name and r[1].estimator == estimator]
            errors = [abs(r[2]) for r in rows]
            covered = sum(r[1].ci_low <= r[3] <= r[1].ci_high for r in rows)
            print(
                f"pi_e={name:<4} {estimator:<6} mean |rel. err| {np.mean(errors):6.1%}   "
                f"95% CI covers the truth: {covered}/{len(rows)}"
            )
    record_goals(summary_rows, largest_gap)


def record_goals(summary_rows: list[tuple[str, OffPolicyEstimate, float, float]], largest_gap: float) -> None:
    """The two goals: agree with obp's formulas to rounding, and beat the naive random-log CTR (the mean
    |relative error| over the three campaigns against the on-policy CTR, with pi_e as the README shows)."""
    record(
        "ope",
        "IPW / SNIPW / DR vs obp's formulas re-implemented, largest |ours - reference|",
        f"{largest_gap:.1e}",
        anchor="the reference formulas, same inputs",
        goal=f"agree to rounding (<= {ROUNDING:g})",
        met=largest_gap <= ROUNDING,
    )
    naive = float(np.mean([abs(r[2]) for r in summary_rows if r[0] == "naive"]))
    errors = {
        name: float(np.mean([abs(r[2]) for r in summary_rows if r[0] == "avg" and r[1].estimator == key]))
        for key, name in (("ipw", "IPW"), ("snipw", "SNIPW"), ("dr", "DR"))
    }
    best = min(errors.values())
    record(
        "ope",
        "mean |rel. err| vs the BTS on-policy CTR, 3 campaigns (pi_e avg)",
        ", ".join(f"{name} {error:.1%}" for name, error in errors.items()),
        anchor=f"random-log CTR {naive:.1%}",
        ratio=best / naive,
        goal="an estimate below the random-log CTR's error",
        met=best < naive,
    )


if __name__ == "__main__":
    main()
