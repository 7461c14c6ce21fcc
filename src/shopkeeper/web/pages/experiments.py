"""Experiments: the list (the universal holdout first) with a form to start one, each report with its
verdict in words, sample ratio check, power and lift over time (a bandit's traffic shares too), and a
stop behind a confirmation. The form takes what `POST /v1/experiments` takes, checked by the same
`new_experiment`, so the page and the API agree on every rule and message."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from shopkeeper.decide.placements import placements_from
from shopkeeper.errors import InvalidInput, NotFound, ShopkeeperError
from shopkeeper.experiments import DEFAULT_FLOOR, DEFAULT_WINDOW_DAYS, HOLDOUT
from shopkeeper.experiments.service import BANDITS, new_experiment
from shopkeeper.privacy.accounts import Session
from shopkeeper.store.experiments import Experiment
from shopkeeper.web import figures
from shopkeeper.web.core import Form, PageRoute, audit, dashboard_of, needs, posted, redirect, render
from shopkeeper.web.experiment_report import (
    audience_words,
    lift_chart,
    power,
    target_of,
    traffic_chart,
)
from shopkeeper.web.headline import headline

router = APIRouter(route_class=PageRoute)
MARKETER = Depends(needs("marketer"))
VARIANT_ROWS = 4
# The form's names for the fields `new_experiment` names in its errors.
FIELD_LABELS = {
    "name": "Experiment name",
    "placement": "Placement",
    "kind": "Kind",
    "variants": "Variants",
    "weights": "Traffic shares",
    "audience": "Audience",
    "reward": "Reward",
    "window_days": "Attribution window",
    "floor": "Exploration floor",
    "outcome_events": "Outcome events",
}


def _blank_form() -> dict[str, Any]:
    return {
        "name": "",
        "placement": "web",
        "kind": "ab",
        "reward": "conversion",
        "audience": "",
        "condition": "",
        "outcome_events": "",
        "window_days": str(DEFAULT_WINDOW_DAYS),
        "floor": str(DEFAULT_FLOOR),
        "variants": [
            {"name": name, "model": model, "n": "", "max": "", "repeats": "", "weight": ""}
            for name, model in [("personalized", "personalized"), ("popular", "popularity")]
            + [("", "")] * (VARIANT_ROWS - 2)
        ],
    }


def _list_page(
    request: Request,
    *,
    status: int = 200,
    form: dict[str, Any] | None = None,
    error: tuple[str, str] | None = None,
) -> Response:
    shop = dashboard_of(request).shop
    placements = placements_from(dashboard_of(request).settings.placements_json)
    rows = []
    for experiment in reversed(shop.store.experiments.list()):
        reach = None
        if experiment.status == "running" and experiment.audience is not None:
            reach = shop.audiences.target_reach(target_of(experiment))
        rows.append({"experiment": experiment, "audience": audience_words(experiment), "reach": reach})
    return render(
        request,
        "experiments/list.html",
        status=status,
        rows=rows,
        holdout_share=shop.experiments.holdout.share,
        people=shop.audiences.target_reach(None)["people"],
        placements=sorted(placements),
        audiences=[a.name for a in shop.audiences.saved.list()],  # names only: no counting
        form=form or _blank_form(),
        error=error,
        labels=FIELD_LABELS,
    )


@router.get("/experiments")
def experiments(request: Request, session: Session = MARKETER) -> Response:
    return _list_page(request)


@router.post("/experiments")
def create_experiment(
    request: Request, form: Form = Depends(posted), session: Session = MARKETER
) -> Response:
    board = dashboard_of(request)
    entered = _entered(form)
    try:
        experiment = _experiment_from(entered, board.settings.placements_json, board.shop.audiences)
        created = board.shop.experiments.create(experiment)
    except ShopkeeperError as exc:
        if exc.status >= 500:
            raise
        field = exc.field if exc.field in FIELD_LABELS else ""
        return _list_page(request, status=exc.status, form=entered, error=(field, exc.message))
    audit(
        request,
        session,
        "create_experiment",
        experiment=created.name,
        placement=created.placement,
        kind=created.kind,
        arms=created.arms,
    )
    return redirect(f"/dashboard/experiments/{created.name}")


def _entered(form: Form) -> dict[str, Any]:
    """The form as entered, to parse, and to show again with an error."""
    columns = {key: form.all(f"variant_{key}") for key in ("name", "model", "n", "max", "repeats", "weight")}
    rows = max((len(v) for v in columns.values()), default=0)
    if rows > 20:
        raise InvalidInput("at most 20 variants", field="variants")
    variants = [
        {key: (values[i].strip() if i < len(values) else "") for key, values in columns.items()}
        for i in range(rows)
    ]
    return {
        "name": form.get("name").strip(),
        "placement": form.get("placement"),
        "kind": form.get("kind", "ab"),
        "reward": form.get("reward", "conversion"),
        "audience": form.get("audience"),
        "condition": form.get("condition").strip(),
        "outcome_events": form.get("outcome_events"),
        "window_days": form.get("window_days").strip(),
        "floor": form.get("floor").strip(),
        "variants": variants,
    }


def _number(text: str, what: str, field: str, *, whole: bool) -> float | int:
    try:
        value = int(text) if whole else float(text)
    except ValueError:
        kind = "a whole number" if whole else "a number"
        raise InvalidInput(f"{what} must be {kind}, not {text[:40]!r}", field=field) from None
    return value


def _experiment_from(entered: dict[str, Any], placements_json: str, targeting: Any) -> Experiment:
    """The entered form as `new_experiment`'s arguments, as `POST /v1/experiments` passes its body."""
    if entered["kind"] not in ("ab", "bandit"):
        raise InvalidInput("choose an A/B test (ab) or a bandit", field="kind")
    variants: list[tuple[str, Any]] = []
    weights: list[float] = []
    for i, row in enumerate(entered["variants"], start=1):
        if not row["name"]:
            if row["n"] or row["max"] or row["weight"]:
                raise InvalidInput(f"variant {i} has settings but no name", field="variants")
            continue
        options: dict[str, Any] = {}
        if row["model"]:
            options["model"] = row["model"]
        if row["n"]:
            options["n"] = _number(row["n"], f"variant {row['name']}: n", "variants", whole=True)
        if row["max"]:
            options["max_per_category"] = _number(
                row["max"], f"variant {row['name']}: max per category", "variants", whole=True
            )
        if row["repeats"]:
            options["repeats"] = row["repeats"] == "yes"
        variants.append((row["name"], options))
        if row["weight"]:
            weights.append(
                _number(row["weight"], f"variant {row['name']}: traffic share", "weights", whole=False)
            )
    if weights and len(weights) != len(variants):
        raise InvalidInput(
            "give a traffic share for every variant, or none for equal shares", field="weights"
        )
    audience: Any = entered["audience"] or None
    if entered["condition"]:
        if audience is not None:
            raise InvalidInput("choose a saved audience or write a condition, not both", field="audience")
        try:
            audience = orjson.loads(entered["condition"])
        except orjson.JSONDecodeError:
            raise InvalidInput("the condition is not valid JSON", field="audience") from None
    elif audience is not None:
        try:
            targeting.target(audience)
        except NotFound as exc:  # deleted since the page was drawn
            raise NotFound(exc.message, field="audience") from None
    events = [e.strip() for e in entered["outcome_events"].replace("\n", ",").split(",") if e.strip()]
    return new_experiment(
        entered["name"],
        entered["placement"],
        variants,
        placements=placements_from(placements_json),
        weights=weights or None,
        audience=audience,
        bandit=entered["kind"] == "bandit",
        reward=entered["reward"] if entered["kind"] == "bandit" else "conversion",
        window_days=int(
            _number(
                entered["window_days"] or str(DEFAULT_WINDOW_DAYS),
                "the attribution window",
                "window_days",
                whole=True,
            )
        ),
        floor=float(
            _number(entered["floor"] or str(DEFAULT_FLOOR), "the exploration floor", "floor", whole=False)
        ),
        outcome_events=events,
        targeting=targeting,
    )


@router.get("/experiments/{name}")
def report(request: Request, name: str, session: Session = MARKETER) -> Response:
    shop = dashboard_of(request).shop
    settings = dashboard_of(request).settings
    experiment = None if name == HOLDOUT else shop.store.experiments.get(name)
    shop.close_decisions()  # this process's decisions still waiting in its log are counted, as the API does
    reported = figures.report(request, name)
    found, path = reported.value
    traffic = None
    if experiment is not None and experiment.kind in BANDITS:
        traffic = traffic_chart(
            shop.store.experiments.decisions_per_day(name, experiment.arms), experiment.arms
        )
    withheld = any("note" in arm and arm["note"].startswith("withheld") for arm in found["arms"])
    return render(
        request,
        "experiments/report.html",
        name=name,
        experiment=experiment,
        audience=audience_words(experiment) if experiment is not None else "everyone",
        report=found,
        withheld=withheld,
        conversion=_verdicts(found),
        power=[] if withheld else power(found),
        lift=lift_chart(path) if path and path["arms"] else None,
        traffic=traffic,
        headline=headline(found, share=settings.holdout_share, min_lift=settings.dashboard_min_lift)
        if name == HOLDOUT
        else None,
        as_of=reported,
    )


def _verdicts(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Each treatment arm's conversion verdict (win, loss, inconclusive), for the words' colour."""
    found = []
    for arm in report["arms"][1:]:
        metric = next((m for m in arm["metrics"] if m["metric"] == "conversion"), None)
        found.append({"arm": arm["arm"], "verdict": metric["verdict"] if metric else None})
    return found


@router.get("/experiments/{name}/stop")
def confirm_stop(request: Request, name: str, session: Session = MARKETER) -> Response:
    return _stop_page(request, name)


def _stop_page(request: Request, name: str, *, status: int = 200, error: str = "") -> Response:
    if name == HOLDOUT:
        raise InvalidInput(
            "the holdout is not an experiment to stop; set SHOPKEEPER_HOLDOUT_SHARE=0 to end it", field="name"
        )
    experiment = dashboard_of(request).shop.store.experiments.get(name)
    return render(request, "experiments/stop.html", status=status, experiment=experiment, error=error)


@router.post("/experiments/{name}/stop")
def stop(request: Request, name: str, form: Form = Depends(posted), session: Session = MARKETER) -> Response:
    if form.get("confirm").strip() != name:
        return _stop_page(
            request, name, status=400, error=f"Confirm: type the experiment's name, {name}, to stop it."
        )
    shop = dashboard_of(request).shop
    if name != HOLDOUT and shop.store.experiments.get(name).status != "running":
        return redirect(f"/dashboard/experiments/{name}")  # stopped already: nothing changes
    stopped = shop.experiments.stop(name)
    audit(request, session, "stop_experiment", experiment=stopped.name, placement=stopped.placement)
    return redirect(f"/dashboard/experiments/{stopped.name}")
