"""Persona discovery against planted answers: groups it must find, rules it must state, runs it must match."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from shopkeeper.errors import InvalidInput
from shopkeeper.personas.clustering import Discovery, PersonaInputs, discover, feature_matrix
from shopkeeper.personas.naming import RFM_NAMES

CATEGORIES = ("Party", "Garden", "Kitchen", "Toys")


def people(
    recency: np.ndarray, frequency: np.ndarray, monetary: np.ndarray, tenure: np.ndarray, weights: np.ndarray
) -> PersonaInputs:
    n = len(frequency)
    gaps = np.where(frequency >= 2, tenure / np.maximum(frequency - 1, 1), np.nan)
    countries = np.where(np.arange(n) % 10 == 0, "France", "United Kingdom")
    return PersonaInputs(
        recency, frequency, monetary, tenure, gaps, CATEGORIES, weights, countries, np.full(n, "web")
    )


def planted(n: int = 2000, seed: int = 0) -> tuple[PersonaInputs, np.ndarray]:
    """Three groups, 50/30/20%: loyal party buyers, lapsed one-time garden buyers, new kitchen buyers."""
    rng = np.random.default_rng(seed)
    sizes = [n // 2, n * 3 // 10, n - n // 2 - n * 3 // 10]
    truth = np.repeat([0, 1, 2], sizes)
    frequency = np.concatenate(
        [rng.integers(10, 20, sizes[0]), np.ones(sizes[1]), rng.integers(2, 4, sizes[2])]
    )
    recency = np.concatenate(
        [rng.uniform(1, 20, sizes[0]), rng.uniform(400, 600, sizes[1]), rng.uniform(1, 15, sizes[2])]
    )
    monetary = np.concatenate(
        [rng.uniform(800, 1500, sizes[0]), rng.uniform(10, 40, sizes[1]), rng.uniform(80, 200, sizes[2])]
    )
    tenure = np.concatenate(
        [
            rng.uniform(700, 900, sizes[0]),
            recency[sizes[0] : sizes[0] + sizes[1]] + 5,
            rng.uniform(15, 30, sizes[2]),
        ]
    )
    weights = rng.uniform(0, 0.1, (n, len(CATEGORIES)))
    for group in range(3):
        weights[truth == group, group] += 1.0
    order = rng.permutation(n)
    inputs = people(
        recency[order], frequency[order].astype(float), monetary[order], tenure[order], weights[order]
    )
    return inputs, truth[order]


def noise(n: int = 1500, seed: int = 1) -> PersonaInputs:
    """No groups at all: independent, unimodal figures."""
    rng = np.random.default_rng(seed)
    frequency = np.maximum(np.round(rng.normal(6, 1.5, n)), 2)
    recency = rng.normal(100, 20, n)
    tenure = recency + rng.normal(400, 50, n)
    return people(recency, frequency, rng.normal(500, 80, n), tenure, np.ones((n, len(CATEGORIES))))


@pytest.fixture(scope="module")
def found() -> tuple[Discovery, np.ndarray, PersonaInputs]:
    inputs, truth = planted()
    return discover(inputs), truth, inputs


def group_of(found: Discovery, truth: np.ndarray, planted_group: int) -> int:
    return int(np.bincount(found.labels[truth == planted_group] + 1).argmax()) - 1


def test_the_planted_groups_are_found(found: tuple[Discovery, np.ndarray, PersonaInputs]) -> None:
    discovery, truth, _inputs = found
    assert discovery.method == "kmeans"
    assert discovery.k == 3
    assert adjusted_rand_score(truth, discovery.labels) > 0.9
    assert [g.size for g in discovery.groups] == sorted((g.size for g in discovery.groups), reverse=True)
    assert discovery.silhouette is not None and discovery.silhouette > 0.5
    assert len({g.name for g in discovery.groups}) == 3


def test_rules_name_what_sets_each_group_apart(found: tuple[Discovery, np.ndarray, PersonaInputs]) -> None:
    discovery, truth, _inputs = found
    lapsed = discovery.groups[group_of(discovery, truth, 1)]
    new = discovery.groups[group_of(discovery, truth, 2)]
    loyal = discovery.groups[group_of(discovery, truth, 0)]
    assert any(words in lapsed.rule for words in ("Garden", "no order for", "ordered once", "spent at most"))
    assert any(words in new.rule for words in ("Kitchen", "first seen within"))
    assert any(words in loyal.rule for words in ("Party", "ordered 1", "customer for", "spent"))
    assert all(g.rule_agreement > 0.9 for g in discovery.groups)
    assert discovery.agreement > 0.9
    assert lapsed.name.startswith("Lapsed") and new.name.startswith("New")
    assert lapsed.top_categories[0] == "Garden" and "30% of customers" in lapsed.description


def test_groups_report_their_share_and_typical_members(
    found: tuple[Discovery, np.ndarray, PersonaInputs],
) -> None:
    discovery, _truth, _inputs = found
    assert sum(g.share_customers for g in discovery.groups) == pytest.approx(discovery.coverage)
    assert sum(g.share_revenue for g in discovery.groups) == pytest.approx(1.0)
    for group in discovery.groups:
        assert len(group.typical) == 5
        assert all(discovery.labels[i] == group.index for i in group.typical)
    assert ((discovery.confidence >= 0) & (discovery.confidence <= 1)).all()
    assert np.median(discovery.confidence) > 0.5


def test_stability_is_high_on_planted_groups_and_lower_on_noise(
    found: tuple[Discovery, np.ndarray, PersonaInputs],
) -> None:
    discovery, _truth, _inputs = found
    assert discovery.stability_ari is not None and discovery.stability_ari > 0.9
    assert all(g.stable and g.stability is not None and g.stability > 0.9 for g in discovery.groups)
    shapeless = discover(noise(), k=6)
    assert shapeless.stability_ari is not None and shapeless.stability_ari < discovery.stability_ari - 0.2
    assert any(not g.stable for g in shapeless.groups)


def test_the_same_random_state_gives_the_same_personas() -> None:
    inputs, _truth = planted(n=1200, seed=3)
    one, two = discover(inputs, random_state=7), discover(inputs, random_state=7)
    assert np.array_equal(one.labels, two.labels)
    assert np.array_equal(one.confidence, two.confidence)
    assert one.groups == two.groups


def test_a_small_shop_gets_rfm_groups_whose_rules_are_their_definitions() -> None:
    inputs, _truth = planted(n=150, seed=4)
    small = discover(inputs)
    assert small.method == "rfm"
    assert {g.name for g in small.groups} <= set(RFM_NAMES) and small.k >= 3
    assert all(g.rule_agreement == 1.0 for g in small.groups) and small.agreement == 1.0
    champions = next(g for g in small.groups if g.name == "Champions")
    assert "ordered" in champions.rule and "last order within" in champions.rule
    assert small.stability_ari is not None and small.silhouette is not None


def test_people_without_orders_are_never_in_a_persona() -> None:
    inputs, _truth = planted(n=1000, seed=5)
    frequency = inputs.frequency.copy()
    frequency[:100] = 0
    recency = inputs.recency_days.copy()
    recency[:100] = np.inf
    browsing = people(recency, frequency, inputs.monetary, inputs.tenure_days, inputs.category_weights)
    found = discover(browsing, small_shop=100)
    assert (found.labels[:100] == -1).all() and (found.confidence[:100] == 0).all()
    assert sum(g.size for g in found.groups) == pytest.approx(found.coverage * 900)


def test_the_fewest_groups_that_cover_the_target() -> None:
    rng = np.random.default_rng(6)
    sizes = [400, 300, 250, 200, 150, 100]  # six planted groups, by frequency x recency
    frequency = np.concatenate([np.full(s, f) for s, f in zip(sizes, [1, 3, 8, 1, 3, 8], strict=True)])
    recency = np.concatenate(
        [rng.uniform(a, a + 20, s) for s, a in zip(sizes, [5, 5, 5, 500, 500, 500], strict=True)]
    )
    n = len(frequency)
    found = discover(
        people(recency, frequency.astype(float), rng.uniform(90, 110, n), recency + 300, np.ones((n, 4)))
    )
    assert found.coverage >= 0.7
    assert 3 <= found.k <= 7
    assert (found.labels >= 0).mean() == pytest.approx(found.coverage)


def test_a_given_k_is_kept() -> None:
    inputs, _truth = planted(n=1000, seed=7)
    found = discover(inputs, k=5)
    assert found.k == 5 and found.coverage == 1.0
    assert sorted(set(found.labels.tolist())) == [0, 1, 2, 3, 4]


def test_a_previous_run_is_matched_and_moves_are_counted(
    found: tuple[Discovery, np.ndarray, PersonaInputs],
) -> None:
    discovery, _truth, inputs = found
    renamed = np.array([7, 3, 5, -1])  # previous index of current 0, 1, 2; -1 stays -1
    previous = renamed[discovery.labels]
    movers = np.flatnonzero(discovery.labels == 0)[:40]
    previous[movers] = 3  # 40 people of today's group 0 were in the group that is now group 1
    newcomers = np.flatnonzero(discovery.labels == 2)[:10]
    previous[newcomers] = -1
    again = discover(inputs, previous=previous)
    assert [g.previous for g in again.groups] == [7, 3, 5]
    assert again.churn == [(3, 0, 40)]
    assert again.churn[0].people == 40


def test_an_unrelated_previous_run_matches_nothing(
    found: tuple[Discovery, np.ndarray, PersonaInputs],
) -> None:
    _discovery, _truth, inputs = found
    previous = np.random.default_rng(8).integers(0, 10, inputs.n)
    again = discover(inputs, previous=previous)
    assert all(g.previous is None for g in again.groups)
    assert sum(move.people for move in again.churn) == inputs.n


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"frequency": np.ones(5)}, "recency_days"),
        ({"frequency": -np.ones(10)}, "frequency"),
        ({"category_weights": np.ones((10, 3))}, "category_weights"),
        ({"category_weights": -np.ones((10, 4))}, "category_weights"),
        ({"rhythm_days": np.full(10, -1.0)}, "rhythm_days"),
        ({"countries": np.full((10, 2), "x")}, "countries"),
        ({"categories": ("a", "a", "b", "c")}, "categories"),
    ],
)
def test_inputs_that_do_not_fit_are_refused(change: dict[str, object], field: str) -> None:
    good = {
        "recency_days": np.ones(10),
        "frequency": np.ones(10),
        "monetary": np.ones(10),
        "tenure_days": np.ones(10),
        "rhythm_days": np.full(10, np.nan),
        "categories": CATEGORIES,
        "category_weights": np.ones((10, 4)),
        "countries": np.full(10, ""),
        "channels": np.full(10, ""),
    }
    with pytest.raises(InvalidInput) as raised:
        PersonaInputs(**{**good, **change})  # type: ignore[arg-type]
    assert raised.value.field == field


def test_discover_refuses_bad_settings(found: tuple[Discovery, np.ndarray, PersonaInputs]) -> None:
    _discovery, _truth, inputs = found
    for settings, field in [
        ({"k": 0}, "k"),
        ({"target": 1.5}, "target"),
        ({"previous": np.zeros(3, int)}, "previous"),
    ]:
        with pytest.raises(InvalidInput) as raised:
            discover(inputs, **settings)  # type: ignore[arg-type]
        assert raised.value.field == field


def test_the_feature_matrix_is_scaled_and_named() -> None:
    inputs, _truth = planted(n=500, seed=9)
    x, names = feature_matrix(inputs)
    assert x.shape == (500, len(names)) and np.isfinite(x).all()
    assert (
        names[:2] == ["orders (log)", "revenue (log)"]
        and "share: Party" in names
        and "country: France" in names
    )
    assert np.median(x[:, 0]) == pytest.approx(0.0)


def four_groups(gap: float, n: int = 400, seed: int = 3) -> tuple[PersonaInputs, np.ndarray]:
    """Four groups: loyal, lapsed one-time, and two of 3-order customers whose last order was 40 days
    ago and 40 + `gap` days ago; the last two merge at k = 3."""
    rng = np.random.default_rng(seed)
    truth = np.repeat([0, 1, 2, 3], n)
    frequency = np.array([12, 1, 3, 3])[truth].astype(float)
    recency = np.array([5, 400, 40, 40 + gap])[truth] * np.exp(rng.normal(0, 0.1, 4 * n))
    monetary = frequency * 60 * np.exp(rng.normal(0, 0.1, 4 * n))
    return people(recency, frequency, monetary, recency + 300, np.ones((4 * n, 4))), truth


def test_the_previous_number_of_personas_is_kept_when_acceptable() -> None:
    # gap 160: silhouette 0.83 at k = 3 and 0.81 at k = 4 (within 0.05), so alone the fewest (3) win, and
    # a previous run of 4 personas keeps 4: the planted groups exactly.
    inputs, truth = four_groups(160)
    assert discover(inputs, bootstraps=0).k == 3
    kept = discover(inputs, bootstraps=0, previous=truth)
    assert kept.k == 4
    assert adjusted_rand_score(truth, kept.labels) == pytest.approx(1.0)
    assert sorted(g.previous for g in kept.groups if g.previous is not None) == [0, 1, 2, 3]


def test_the_previous_number_of_personas_is_dropped_when_not_acceptable() -> None:
    # gap 40: silhouette 0.88 at k = 3 and 0.78 at k = 4, so 4 personas are not acceptable
    inputs, truth = four_groups(40)
    assert discover(inputs, bootstraps=0, previous=truth).k == 3
