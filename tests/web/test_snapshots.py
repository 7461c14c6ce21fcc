"""The dashboard's kept figures (`web.snapshots`): computed once and kept for their age limit, shown once
more while one background thread computes them again, computed while the page waits when far too old or
asked fresh, dropped by any dashboard change (a refresh begun before the drop is not kept), and never kept
with an age limit of 0. Time is moved by hand: the test never sleeps out an age limit."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from shopkeeper.web import snapshots
from shopkeeper.web.snapshots import STALE_LIMIT, Snapshots


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    found = Clock()
    monkeypatch.setattr(snapshots.time, "monotonic", found)
    yield found


class Counter:
    """A figure that counts how often it was computed, and can be held back or made to fail."""

    def __init__(self) -> None:
        self.calls = 0
        self.gate: threading.Event | None = None
        self.fail = False

    def __call__(self) -> int:
        if self.gate is not None:
            assert self.gate.wait(10)
        if self.fail:
            raise RuntimeError("the database is away")
        self.calls += 1
        return self.calls


def _settled() -> None:
    for thread in threading.enumerate():
        if thread.name == "snapshot":
            thread.join(10)


def test_a_figure_is_kept_for_its_age_limit_and_computed_again_when_asked_fresh(clock: Clock) -> None:
    kept, figure = Snapshots(60), Counter()
    first = kept.get("k", figure)
    assert (first.value, first.kept_for, figure.calls) == (1, 60, 1)
    clock.now += 59
    assert kept.get("k", figure) is first and figure.calls == 1
    assert kept.get("other", figure).value == 2  # each key its own figure
    fresh = kept.get("k", figure, fresh=True)
    assert fresh.value == 3 and kept.get("k", figure) is fresh


def test_past_its_age_limit_the_old_figure_is_shown_once_more_while_one_thread_refreshes_it(
    clock: Clock,
) -> None:
    kept, figure = Snapshots(60), Counter()
    kept.get("k", figure)
    clock.now += 61
    figure.gate = threading.Event()
    shown = [kept.get("k", figure).value for _ in range(5)]  # five views while the refresh is held
    assert shown == [1] * 5
    assert sum(t.name == "snapshot" for t in threading.enumerate()) == 1  # one refresh, not five
    figure.gate.set()
    _settled()
    assert figure.calls == 2 and kept.get("k", figure).value == 2


def test_far_past_its_age_limit_it_is_computed_while_the_page_waits(clock: Clock) -> None:
    kept, figure = Snapshots(60), Counter()
    kept.get("k", figure)
    clock.now += 60 * STALE_LIMIT + 1
    assert kept.get("k", figure).value == 2 and figure.calls == 2


def test_a_drop_forgets_every_figure_and_a_refresh_begun_before_it_is_not_kept(clock: Clock) -> None:
    kept, figure = Snapshots(60), Counter()
    kept.get("k", figure)
    clock.now += 61
    figure.gate = threading.Event()
    assert kept.get("k", figure).value == 1  # a refresh starts, and is held
    kept.drop()  # a change through the dashboard, meanwhile
    figure.gate.set()
    _settled()
    assert figure.calls == 2  # the refresh ran, computed from before the change...
    assert kept.get("k", figure).value == 3  # ...and was not kept: the page computes it afresh


def test_a_failed_refresh_is_logged_without_detail_and_the_next_view_computes_it(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    kept, figure = Snapshots(60), Counter()
    kept.get("k", figure)
    clock.now += 61
    figure.fail = True
    assert kept.get("k", figure).value == 1
    _settled()
    assert [r.getMessage() for r in caplog.records] == [
        "a dashboard figure could not be refreshed: RuntimeError"
    ]
    figure.fail = False
    assert kept.get("k", figure).value == 2  # nothing stale is kept after a failure


def test_an_age_limit_of_0_computes_at_every_view(clock: Clock) -> None:
    kept, figure = Snapshots(0), Counter()
    values: list[Any] = [kept.get("k", figure).value for _ in range(3)]
    assert values == [1, 2, 3] and kept.get("k", figure).kept_for == 0
