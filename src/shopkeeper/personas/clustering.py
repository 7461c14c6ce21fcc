"""Persona discovery: customers grouped by k-means (or RFM rules in a small shop), named, ruled and checked.

Who is grouped: customers, people with at least one order. People with no order are never in a persona;
they get label -1 ("everyone else") and confidence 0. `coverage` is the share of customers in personas.

Small shops (fewer than `small_shop` customers) get RFM groups, fixed rules on days since last order and
orders (see `rfm_rules`). Other shops get k-means on the scaled features (`features.feature_matrix`),
fitted on a sample of at most 20,000 customers and applied to every customer:

- Choosing k: each k from 3 to 10 is fitted (fewer when the customers have fewer distinct rows) with 6
  initialisations, the lowest inertia kept (with 2, k flipped between 3 and 4 with the seed on Online
  Retail, where every k's silhouette is within ~0.06 of the best). Its personas are its largest clusters
  taken in size order until they cover `target` of the customers, and at least 3 of them, and every
  cluster of 10% of the customers or more, and any cluster that brings 20% of the revenue or more (a
  few big spenders are a persona, never "everyone else"); its remaining (small) clusters become
  "everyone else" (-1).
  Its silhouette is taken on 3,000 of the fitted rows (`SELECTION_SEEDS` > 1 would fit each k once per
  seed and take the median silhouette). A k is *acceptable* when its silhouette is within 0.05 of the
  best and its personas cover `target` of the customers. With `previous`, the previous run's number of
  personas (its distinct labels >= 0) wins whenever a k giving that many is acceptable, so that personas
  do not reshuffle between runs for a tie; otherwise, among the ks within 0.05 of the best, the one
  needing the fewest personas wins (ties: the higher coverage, then the higher silhouette). A given `k`
  fits exactly k clusters (2 initialisations), all personas.
- Rules: see `rules.tree_rule`; a persona's `rule_agreement` is the F1 of its printed rule against its
  members; the overall `agreement` is the share of customers whose group by the rules alone (the first
  rule, in persona order, that selects them, else everyone else) is their group.
- Confidence: 1 - d_own / d_second, the person's distance to their persona's mean over their distance to
  the nearest other persona's mean, in the scaled space (0 for everyone else).
- Typical members: the 5 members nearest their persona's mean in the scaled space.
- Stability: see `stability`. Matching a previous run: see `stability.match_previous`.

Personas are numbered by size, largest first. Everything is deterministic for a given `random_state`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

from shopkeeper.errors import InvalidInput
from shopkeeper.personas.features import (
    CAP_DAYS,
    Features,
    PersonaInputs,
    customers_of,
    feature_matrix,
    features,
)
from shopkeeper.personas.naming import RFM_NAMES, Portrait, description, unique_names
from shopkeeper.personas.rules import (
    Condition,
    Leaf,
    Readable,
    Rule,
    make_rule,
    rule_labels,
    selects,
    tree_rule,
)
from shopkeeper.personas.stability import Move, Stability, bootstrap_stability, match_previous

__all__ = ["Discovery", "Group", "Move", "PersonaInputs", "discover", "feature_matrix", "rfm_rules"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

CANDIDATE_K = range(3, 11)
MIN_PERSONAS = 3
LARGEST_REST = 0.10  # a cluster with this share of customers is never "everyone else"
RICHEST_REST = 0.20  # nor is one that brings this share of the revenue
REFIT_INIT = 3  # initialisations of each bootstrap refit (with 1, a poor fit read as instability)
FIT_SAMPLE = 20_000
SILHOUETTE_SAMPLE = 3_000
SILHOUETTE_SLACK = 0.05
SELECTION_SEEDS = 1  # the candidate fits' seeds: random_state, random_state + 1, ...
SELECTION_INIT = 6  # initialisations per seed (the best inertia is kept)
GIVEN_K_INIT = 2  # a given k is not chosen: its one fit keeps 2 initialisations
TYPICAL = 5


@dataclass(frozen=True)
class Group:
    """One persona. `index` is its label in `Discovery.labels`; `previous` its match in the previous run."""

    index: int
    name: str
    description: str
    rule: str
    rule_agreement: float
    size: int
    share_customers: float
    share_revenue: float
    top_categories: list[str]
    typical: list[int]
    stable: bool
    stability: float | None
    previous: int | None


@dataclass(frozen=True)
class Discovery:
    """A run's personas. `labels[i]`: person i's group index, -1 for everyone else. `churn`: see
    `stability.match_previous`."""

    method: str  # "rfm" | "kmeans"
    k: int  # persona groups, everyone else not counted
    coverage: float
    silhouette: float | None
    stability_ari: float | None
    labels: IntArray
    confidence: FloatArray
    groups: list[Group]
    churn: list[Move]
    agreement: float


@dataclass(frozen=True)
class _Clustering:
    """What a method found among customers: persona labels (-1 else), the partition stability is measured
    on, rules, and a function that redoes the method on a bootstrap sample for the stability check."""

    labels: IntArray
    partition: IntArray
    rules: list[Rule]
    silhouette: float | None
    refit: Callable[[IntArray, int], IntArray]
    names: list[str] | None


def discover(
    inputs: PersonaInputs,
    *,
    k: int | None = None,
    target: float = 0.7,
    random_state: int = 0,
    previous: npt.ArrayLike | None = None,
    small_shop: int = 200,
    bootstraps: int = 5,
    money: Callable[[float], str] = lambda v: f"{v:,.0f}",
) -> Discovery:
    """Find personas among `inputs`' customers; see the module docstring for every rule.

    `previous`: each person's group in the previous run (-1: none). Its matches and moves are reported
    (`Group.previous`, `Discovery.churn`), and its number of personas is kept when acceptable (see
    "Choosing k")."""
    if k is not None and not 1 <= k <= 50:
        raise InvalidInput("k must be between 1 and 50", field="k")
    if not 0 < target <= 1:
        raise InvalidInput("target must be in (0, 1]", field="target")
    if bootstraps < 0:
        raise InvalidInput("bootstraps must be >= 0", field="bootstraps")
    prior = _previous(previous, inputs.n)
    found = features(inputs)
    customers = np.flatnonzero(customers_of(inputs))
    if len(customers) < small_shop:
        method, clustering = "rfm", _rfm(found, customers, money)
    else:
        previous_k = None if prior is None else len(np.unique(prior[prior >= 0]))
        revenue = np.maximum(inputs.monetary[customers], 0.0)
        clustering = _kmeans(found.scaled[customers], k, target, random_state, previous_k, revenue)
        method = "kmeans"
        readable = _rows(found.readable, customers)
        rules = [
            tree_rule(readable, clustering.labels == g, random_state=random_state, money=money)
            for g in range(int(clustering.labels.max()) + 1)
        ]
        clustering = _with_rules(clustering, rules)
    stability = bootstrap_stability(
        clustering.partition, clustering.labels, clustering.refit, len(customers), bootstraps, random_state
    )
    labels = np.full(inputs.n, -1, dtype=np.int64)
    labels[customers] = clustering.labels
    groups = _groups(inputs, found, labels, clustering, stability, money)
    matches, churn = (
        match_previous(labels, prior, len(groups)) if prior is not None else ([None] * len(groups), [])
    )
    groups = [_replace_previous(group, match) for group, match in zip(groups, matches, strict=True)]
    rule_guess = rule_labels(_rows(found.readable, customers), clustering.rules)
    return Discovery(
        method=method,
        k=len(groups),
        coverage=float(np.mean(clustering.labels >= 0)) if len(customers) else 0.0,
        silhouette=clustering.silhouette,
        stability_ari=stability.ari,
        labels=labels,
        confidence=_confidence(found.scaled, labels, len(groups)),
        groups=groups,
        churn=churn,
        agreement=float(np.mean(rule_guess == clustering.labels)) if len(customers) else 1.0,
    )


def _previous(previous: npt.ArrayLike | None, n: int) -> IntArray | None:
    if previous is None:
        return None
    array = np.asarray(previous)
    if array.shape != (n,):
        raise InvalidInput(f"previous must have shape ({n},), not {array.shape}", field="previous")
    if array.size and (not np.issubdtype(array.dtype, np.integer) or array.min() < -1):
        raise InvalidInput("previous must hold group indices >= 0, or -1", field="previous")
    return array.astype(np.int64)


def _rows(readable: Readable, rows: IntArray) -> Readable:
    return Readable(readable.values[rows], readable.columns)


def _with_rules(clustering: _Clustering, rules: list[Rule]) -> _Clustering:
    return _Clustering(
        clustering.labels,
        clustering.partition,
        rules,
        clustering.silhouette,
        clustering.refit,
        clustering.names,
    )


def _replace_previous(group: Group, match: int | None) -> Group:
    return Group(**{**group.__dict__, "previous": match})


# ---- k-means ---------------------------------------------------------------------------------------------


def _personas(
    raw: IntArray, n_clusters: int, target: float, every_cluster: bool, revenue: FloatArray | None = None
) -> IntArray:
    """Raw cluster -> persona index (by size, largest first) or -1; see "Choosing k". A cluster that
    brings `RICHEST_REST` of the revenue or more is a persona too, however small."""
    sizes = np.bincount(raw, minlength=n_clusters)
    order = np.argsort(-sizes, kind="stable")
    covered = np.cumsum(sizes[order]) / max(int(sizes.sum()), 1)
    count = n_clusters if every_cluster else int(np.searchsorted(covered, target - 1e-12) + 1)
    large = int(np.count_nonzero(sizes >= LARGEST_REST * max(int(sizes.sum()), 1)))
    count = min(max(count, MIN_PERSONAS, large), int(np.count_nonzero(sizes)))
    kept = np.zeros(n_clusters, dtype=bool)
    kept[order[:count]] = True
    if revenue is not None and float(revenue.sum()) > 0:
        earned = np.bincount(raw, weights=revenue, minlength=n_clusters) / float(revenue.sum())
        kept |= (earned >= RICHEST_REST) & (sizes > 0)
    mapping = np.full(n_clusters, -1, dtype=np.int64)
    chosen = [c for c in order if kept[c]]
    mapping[chosen] = np.arange(len(chosen))
    return mapping


def _silhouette(x: FloatArray, labels: IntArray, random_state: int) -> float | None:
    if not 2 <= len(np.unique(labels)) <= len(x) - 1:
        return None
    size = min(len(x), SILHOUETTE_SAMPLE)
    return float(silhouette_score(x, labels, sample_size=size, random_state=random_state))


def _kmeans(
    x: FloatArray,
    k: int | None,
    target: float,
    random_state: int,
    previous_k: int | None,
    revenue: FloatArray | None = None,
) -> _Clustering:
    """Fit every candidate k on one sample, predict every customer, and keep the k that the rule picks."""
    rng = np.random.default_rng(random_state)
    fit_rows = np.sort(rng.choice(len(x), min(len(x), FIT_SAMPLE), replace=False))
    distinct = len(np.unique(x[fit_rows], axis=0))
    candidates = (
        [min(k, distinct)] if k is not None else [c for c in CANDIDATE_K if c < distinct] or [distinct]
    )
    seeds = [random_state] if k is not None else [random_state + s for s in range(SELECTION_SEEDS)]
    n_init = GIVEN_K_INIT if k is not None else SELECTION_INIT
    scored: list[_Candidate] = []
    for n_clusters in candidates:
        fits = [
            KMeans(n_clusters=n_clusters, n_init=n_init, random_state=seed).fit(x[fit_rows]) for seed in seeds
        ]
        model = min(fits, key=lambda fit: float(fit.inertia_))
        raw = model.predict(x).astype(np.int64)
        values = [
            _silhouette(x[fit_rows], np.asarray(fit.labels_, dtype=np.int64), seed)
            for fit, seed in zip(fits, seeds, strict=True)
        ]
        known = [value for value in values if value is not None]
        mapping = _personas(raw, n_clusters, target, every_cluster=k is not None, revenue=revenue)
        scored.append(
            _Candidate(
                personas=int((mapping >= 0).sum()),
                silhouette=float(np.median(known)) if known else -math.inf,
                coverage=float(np.mean(mapping[raw] >= 0)),
                mapping=mapping,
                raw=raw,
            )
        )
    best = _choose(scored, target, previous_k)
    n_clusters = len(best.mapping)

    def refit(rows: IntArray, seed: int) -> IntArray:
        sample = rows if len(rows) <= FIT_SAMPLE else rows[:FIT_SAMPLE]
        model = KMeans(n_clusters=n_clusters, n_init=REFIT_INIT, random_state=seed).fit(x[sample])
        return np.asarray(model.predict(x), dtype=np.int64)

    silhouette = None if best.silhouette == -math.inf else best.silhouette
    return _Clustering(best.mapping[best.raw], best.raw, [], silhouette, refit, None)


@dataclass(frozen=True)
class _Candidate:
    personas: int
    silhouette: float  # -inf when it cannot be taken
    coverage: float
    mapping: IntArray
    raw: IntArray


def _choose(scored: list[_Candidate], target: float, previous_k: int | None) -> _Candidate:
    """See "Choosing k": the acceptable ks, then the previous run's number of personas, then the fewest."""
    top = max(item.silhouette for item in scored)
    eligible = [item for item in scored if item.silhouette >= top - SILHOUETTE_SLACK]
    acceptable = [item for item in eligible if item.coverage >= target - 1e-12]
    kept = [item for item in acceptable if item.personas == previous_k]
    return min(kept or eligible, key=lambda item: (item.personas, -item.coverage, -item.silhouette))


# ---- small shops: RFM ------------------------------------------------------------------------------------


def rfm_rules(readable: Readable) -> list[Leaf]:
    """The five RFM groups' rules for these customers, in the order of `naming.RFM_NAMES`.

    R1 and R2 are the tertiles of days since last order (rounded to whole days); F is the 67th percentile
    of orders, rounded up, and at least 2. Champions: F+ orders, last order within R1 days. Loyal: F+
    orders, last order R1-R2 days ago. New: fewer than F orders, last order within R1 days. At risk: F+
    orders, none for more than R2 days. Lapsed: fewer than F orders, none for more than R2 days. Customers
    with fewer than F orders whose last order was R1-R2 days ago are everyone else.
    """
    orders, recency = readable.values[:, 0], readable.values[:, 1]
    r1, r2 = (float(round(q)) for q in np.percentile(recency, [100 / 3, 200 / 3]))
    f = max(2, math.ceil(float(np.percentile(orders, 200 / 3))))
    many, few = Condition(0, False, f - 0.5), Condition(0, True, f - 0.5)
    recent, older = Condition(1, True, r1), Condition(1, False, r1)
    middle, oldest = Condition(1, True, r2), Condition(1, False, r2)
    return [(many, recent), (many, older, middle), (few, recent), (many, oldest), (few, oldest)]


def _rfm_labels(readable: Readable, leaves: list[Leaf]) -> IntArray:
    labels = np.full(len(readable.values), -1, dtype=np.int64)
    for index, leaf in enumerate(leaves):
        labels[selects(readable.values, [leaf])] = index
    return labels


def _rfm(found: Features, customers: IntArray, money: Callable[[float], str]) -> _Clustering:
    readable = _rows(found.readable, customers)
    if len(customers) == 0:
        return _Clustering(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), [], None, _none, [])
    leaves = rfm_rules(readable)
    every = _rfm_labels(readable, leaves)
    kept = [g for g in range(len(leaves)) if (every == g).any()]
    mapping = np.full(len(leaves) + 1, -1, dtype=np.int64)  # index -1 (everyone else) stays -1
    mapping[kept] = np.arange(len(kept))
    labels = mapping[every]
    rules = [make_rule(readable, labels == i, [leaves[g]], money) for i, g in enumerate(kept)]

    def refit(rows: IntArray, _seed: int) -> IntArray:
        return _rfm_labels(readable, rfm_rules(_rows(readable, rows)))

    silhouette = _silhouette(found.scaled[customers], labels, 0)
    return _Clustering(labels, every, rules, silhouette, refit, [RFM_NAMES[g] for g in kept])


def _none(rows: IntArray, seed: int) -> IntArray:
    return np.zeros(0, dtype=np.int64)


# ---- the groups ------------------------------------------------------------------------------------------


def _rank(sorted_values: FloatArray, value: float) -> float:
    below = np.searchsorted(sorted_values, value, side="left")
    upto = np.searchsorted(sorted_values, value, side="right")
    return float((below + upto) / 2 / max(len(sorted_values), 1))


def _portraits(inputs: PersonaInputs, found: Features, labels: IntArray, k: int) -> list[Portrait]:
    customers = customers_of(inputs)
    revenue = np.maximum(inputs.monetary, 0.0)
    recency = np.minimum(inputs.recency_days, CAP_DAYS)
    basket = revenue / np.maximum(inputs.frequency, 1)
    stats = {"recency": recency, "orders": inputs.frequency, "revenue": revenue, "tenure": inputs.tenure_days}
    stats["basket"] = basket
    ordered = {key: np.sort(values[customers]) for key, values in stats.items()}
    mean_shares = found.shares[customers].mean(axis=0) if customers.any() else found.shares.sum(axis=0)
    common = Counter(str(c) for c in inputs.countries[customers]).most_common(1)
    portraits = []
    for g in range(k):
        members = labels == g
        medians = {key: float(np.median(values[members])) for key, values in stats.items()}
        ranks = {key: _rank(ordered[key], medians[key]) for key in stats}
        shares = found.shares[members].mean(axis=0)
        top = int(np.argmax(shares)) if shares.size and shares.max() > 0 else None
        rhythm = inputs.rhythm_days[members & np.isfinite(inputs.rhythm_days)]
        country, count = Counter(str(c) for c in inputs.countries[members]).most_common(1)[0]
        distinct = country and count >= 0.8 * members.sum() and (not common or country != common[0][0])
        portraits.append(
            Portrait(
                size=int(members.sum()),
                share_customers=float(members.sum() / max(int(customers.sum()), 1)),
                share_revenue=float(revenue[members].sum() / revenue.sum()) if revenue.sum() > 0 else 0.0,
                median_orders=medians["orders"],
                median_recency=medians["recency"],
                median_revenue=medians["revenue"],
                median_rhythm=float(np.median(rhythm)) if len(rhythm) else None,
                recency_rank=ranks["recency"],
                orders_rank=ranks["orders"],
                revenue_rank=ranks["revenue"],
                tenure_rank=ranks["tenure"],
                basket_rank=ranks["basket"],
                top_category=None if top is None else inputs.categories[top],
                top_share=0.0 if top is None else float(shares[top]),
                category_lift=0.0 if top is None else float(shares[top] / max(mean_shares[top], 1e-12)),
                country=country if distinct else None,
            )
        )
    return portraits


def _means(scaled: FloatArray, labels: IntArray, k: int) -> FloatArray:
    return np.array([scaled[labels == g].mean(axis=0) for g in range(k)]).reshape(k, scaled.shape[1])


def _confidence(scaled: FloatArray, labels: IntArray, k: int) -> FloatArray:
    """1 - d_own / d_second to the persona means (0 for everyone else, 1 when there is one persona)."""
    confidence = np.zeros(len(labels))
    inside = np.flatnonzero(labels >= 0)
    if k == 0 or len(inside) == 0:
        return confidence
    if k == 1:
        confidence[inside] = 1.0
        return confidence
    means = _means(scaled, labels, k)
    distances = np.sqrt(np.maximum(((scaled[inside, None, :] - means[None]) ** 2).sum(axis=2), 0.0))
    own = distances[np.arange(len(inside)), labels[inside]]
    distances[np.arange(len(inside)), labels[inside]] = np.inf
    second = distances.min(axis=1)
    confidence[inside] = np.clip(1 - own / np.maximum(second, 1e-12), 0.0, 1.0)
    return confidence


def _typical(scaled: FloatArray, labels: IntArray, g: int) -> list[int]:
    members = np.flatnonzero(labels == g)
    distances = ((scaled[members] - scaled[members].mean(axis=0)) ** 2).sum(axis=1)
    return [int(i) for i in members[np.lexsort((members, distances))][:TYPICAL]]


def _groups(
    inputs: PersonaInputs,
    found: Features,
    labels: IntArray,
    clustering: _Clustering,
    stability: Stability,
    money: Callable[[float], str],
) -> list[Group]:
    k = len(clustering.rules)
    portraits = _portraits(inputs, found, labels, k)
    names = clustering.names or unique_names(portraits)
    groups = []
    for g, portrait in enumerate(portraits):
        shares = found.shares[labels == g].mean(axis=0)
        order = [j for j in np.argsort(-shares, kind="stable")[:3] if shares[j] > 0]
        per_group = stability.groups[g] if stability.groups else None
        groups.append(
            Group(
                index=g,
                name=names[g],
                description=description(portrait, money),
                rule=clustering.rules[g].text,
                rule_agreement=clustering.rules[g].agreement,
                size=portrait.size,
                share_customers=portrait.share_customers,
                share_revenue=portrait.share_revenue,
                top_categories=[inputs.categories[j] for j in order],
                typical=_typical(found.scaled, labels, g),
                stable=per_group is None or per_group >= stability.threshold,
                stability=per_group,
                previous=None,
            )
        )
    return groups
