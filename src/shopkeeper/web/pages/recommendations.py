"""Recommendations: a person's picks with every reason, previewed (decided as `POST /v1/decide` decides,
but not logged, so the look is no exposure and counts in no experiment), their holdout and consent state;
and the newest offline evaluation of the model against its anchors, as a chart."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from shopkeeper.decide.placements import placements_from
from shopkeeper.errors import InvalidInput, NotFound
from shopkeeper.experiments import HOLDOUT, NO_CONSENT
from shopkeeper.privacy.accounts import Session
from shopkeeper.store.evaluations import Evaluation
from shopkeeper.web.core import PageRoute, actor, dashboard_of, needs, render

router = APIRouter(route_class=PageRoute)
METRICS = {
    "ndcg_at_10": "NDCG@10",
    "recall_at_20": "Recall@20",
    "hr_at_10": "HR@10",
    "coverage_at_10": "coverage@10",
}
METRIC_WORDS = {
    "ndcg_at_10": "how high the items people went on to buy sit in the model's first 10 (1 is perfect)",
    "recall_at_20": "the share of what people went on to buy that is in the model's first 20",
    "hr_at_10": "the share of people who bought at least one of the model's first 10",
    "coverage_at_10": "the share of the catalog that appears in anyone's first 10",
}
TASKS = {
    "all": "every purchase counts (buying again included)",
    "new": "only items the person had never bought",
}


@router.get("/recommendations")
def recommendations(
    request: Request,
    person: str = "",
    placement: str = "web",
    metric: str = "ndcg_at_10",
    session: Session = Depends(needs("marketer")),
) -> Response:
    board = dashboard_of(request)
    placements = sorted(placements_from(board.settings.placements_json))
    if placement not in placements:
        raise InvalidInput(
            f"unknown placement {placement!r}; known placements: {', '.join(placements)}", field="placement"
        )
    if metric not in METRICS:
        raise InvalidInput(f"metric: one of {', '.join(METRICS)}", field="metric")
    person = person.strip()[:255]
    preview, missing = None, ""
    if person:
        try:
            preview = _preview(request, session, person, placement)
        except NotFound:
            missing = (
                f"No person is known by the id {person!r}. Search by a customer id, a visitor id or an email."
            )
    latest = board.shop.store.evaluations.latest()
    return render(
        request,
        "recommendations/page.html",
        status=404 if missing else 200,
        person=person,
        placement=placement,
        placements=placements,
        preview=preview,
        missing=missing,
        evaluation=_evaluation(latest, metric) if latest is not None else None,
        metric=metric,
        metrics=METRICS,
        metric_words=METRIC_WORDS,
        cutoff=(datetime.now(UTC) - timedelta(days=30)).date().isoformat(),
    )


def _preview(request: Request, session: Session, ref: str, placement: str) -> dict[str, Any]:
    """What `decide` would show the person now, without logging it; their consent (a read of it is in
    the audit log, as through the API); and where the decision fell (holdout, experiment, no consent)."""
    shop = dashboard_of(request).shop
    person_id = shop.privacy.find(ref)
    with shop.store.engine.connect() as conn:
        ids = shop.store.identities.unit_ids(person_id, conn)
    consent = shop.privacy.consent_of(ref, actor(session))
    user_id, anonymous_id = ids.get("user_id"), ids.get("anonymous_id")
    if user_id is None and anonymous_id is None:
        return {
            "person_id": person_id,
            "decided_for": None,
            "decision": None,
            "consent": consent,
            "state": "",
        }
    decision = shop.decider.decide(
        user_id=user_id, anonymous_id=None if user_id else anonymous_id, placement=placement, log=False
    )
    return {
        "person_id": person_id,
        "decided_for": ("customer " + user_id) if user_id else ("visitor " + str(anonymous_id)),
        "decision": decision,
        "consent": consent,
        "state": _state(decision.cohort, decision.experiment, decision.arm),
    }


def _state(cohort: str | None, experiment: str | None, arm: str | None) -> str:
    """Where the decision fell, in words."""
    if cohort == HOLDOUT:
        return (
            "In the holdout: this person is one of the share picked at random to see only what is popular, "
            "everywhere, so the shop can measure what personalizing adds. Nothing about them is used."
        )
    if cohort == NO_CONSENT:
        return (
            "No consent to personalization: this person sees what is popular, and nothing about them is used "
            "to choose it. Their decisions are left out of every experiment's report."
        )
    if experiment is not None and arm is not None:
        return f"Personalized, and in the experiment {experiment}: shown its variant {arm}."
    if cohort is None:
        return "Nothing is shown here (see the reason below)."
    return "Personalized: chosen for this person from what they bought, looked at and told the shop."


def _evaluation(latest: Evaluation, metric: str) -> dict[str, Any]:
    """The newest evaluation as one bar chart per task (models best first on `metric`), and its split."""
    report = latest.report
    charts = []
    for task, words in TASKS.items():
        rows = sorted(
            (r for r in report["results"] if r["task"] == task), key=lambda r: (-float(r[metric]), r["model"])
        )
        if not rows:
            continue
        names = [f"{r['model']} (the model in use)" if r.get("default") else r["model"] for r in rows]
        short = [f"{_short(r['model'])} (in use)" if r.get("default") else _short(r["model"]) for r in rows]
        charts.append(
            {
                "task": task,
                "rows": rows,
                "spec": {
                    "title": f"{METRICS[metric]} per model, higher is better; task {task}: {words}",
                    "units": "0 to 1",
                    "x_label": "model",
                    "y_label": METRICS[metric],
                    "kind": "bars",
                    "x": names,
                    "x_text": short,
                    "x_time": False,
                    "series": [{"label": METRICS[metric], "values": [r[metric] for r in rows]}],
                },
            }
        )
    best = {}
    for chart in charts:
        default = next((r for r in chart["rows"] if r.get("default")), None)
        anchor = next((r for r in chart["rows"] if not r.get("default")), None)
        best[chart["task"]] = (default, anchor)
    return {"at": latest.created_at, "split": report["split"], "charts": charts, "best": best}


def _short(model: str) -> str:
    """A model's name short enough for an axis: without its parenthesis, at most about 16 characters."""
    name = re.sub(r"\s*\(.*?\)", "", model).strip()
    if len(name) <= 16:
        return name
    cut = name[:15].rsplit(" ", 1)[0] if " " in name[:15] else name[:15]
    return cut.rstrip(" +:") + "…"
