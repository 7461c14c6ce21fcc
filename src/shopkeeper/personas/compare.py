"""Broad vs narrow, measured: "fame" against micro-targeting.

`compare(NAME)` starts an experiment, `compare-NAME`, on one placement: the narrow audience's members get
arm `narrow`, and a random sample of everyone else, as large as the audience, gets arm `broad` (each by the
hash of their unit, so it is stable). Both arms get the same placement. The report says which reaches
more revenue *in total*: targeting only the narrow audience earns its size times its revenue per person;
speaking to the broad base earns the base's size times the sample's revenue per person. A second call
reports the running comparison.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import replace
from typing import Any

from shopkeeper.errors import Conflict, InvalidInput, NotFound
from shopkeeper.experiments.service import K_ANONYMITY, ExperimentService, new_experiment
from shopkeeper.personas.audiences import AudienceService, check_name

NARROW, BROAD = "narrow", "broad"


def experiment_name(audience: str) -> str:
    """`compare-NAME`; for a name too long for an experiment's 64 characters, its first 47 and a hash."""
    title = f"compare-{audience}"
    if len(title) <= 64:
        return title
    return f"compare-{audience[:47]}-{hashlib.sha256(audience.encode()).hexdigest()[:8]}"


def compare(
    audiences: AudienceService,
    experiments: ExperimentService,
    placements: Collection[str],
    name: str,
    *,
    placement: str = "web",
) -> dict[str, Any]:
    """Start (first call) or report (later calls) the broad-vs-narrow comparison of an audience."""
    check_name(name)
    condition = audiences.condition_of({"audience": name})
    audiences.refresh()
    narrow_size = audiences.members.count(condition)
    known = int(audiences.target_reach(None)["people"])
    broad_size = known - narrow_size
    if narrow_size < K_ANONYMITY:
        raise InvalidInput(
            f"{name} holds {narrow_size} people: fewer than {K_ANONYMITY}, so outcomes per person are not "
            "reported for it, and there is nothing to compare",
            field="name",
        )
    if broad_size < 1:
        raise InvalidInput(f"{name} holds everyone: there is no broad base to compare it with", field="name")
    title = experiment_name(name)
    started = False
    try:
        experiment = experiments.experiments.get(title)
        if (experiment.audience or {}).get("audience") != name:
            raise Conflict(
                f"the experiment {title} exists and compares something else; stop or rename it first",
                field="name",
            )
    except NotFound:
        share = min(1.0, narrow_size / broad_size)
        experiment = new_experiment(title, placement, [(NARROW, {}), (BROAD, {})], placements=placements)
        experiment = replace(experiment, audience={"audience": name, "compare": round(share, 6)})
        experiment = experiments.create(experiment)
        started = True
    report = experiments.report(title)
    return summarize(report, name, narrow_size, broad_size, started=started, status=experiment.status)


def summarize(
    report: dict[str, Any], name: str, narrow_size: int, broad_size: int, *, started: bool, status: str
) -> dict[str, Any]:
    """The comparison's figures and its verdict in words."""
    arms = {arm["arm"]: arm for arm in report["arms"]}
    narrow, broad = arms.get(NARROW, {}), arms.get(BROAD, {})
    per_narrow, per_broad = narrow.get("revenue_per_person"), broad.get("revenue_per_person")
    total_narrow = None if per_narrow is None else per_narrow * narrow_size
    total_broad = None if per_broad is None else per_broad * broad_size
    lines = [
        f"narrow ({name}): {narrow.get('people', 0):,} people shown it so far, "
        f"revenue per person {_money(per_narrow)}; the whole audience ({narrow_size:,}) would bring "
        f"{_money(total_narrow)}",
        f"broad (an equal random sample of the other {broad_size:,}): {broad.get('people', 0):,} people "
        f"shown it so far, revenue per person {_money(per_broad)}; the whole base would bring "
        f"{_money(total_broad)}",
    ]
    enough = min(narrow.get("people", 0), broad.get("people", 0)) >= K_ANONYMITY
    if not enough:
        verdict = "not proven yet"
        headline = (
            f"{'Started' if started else 'Running'}: {report['name']} shows {report['placement']} to {name} "
            f"and to an equal sample of everyone else. Not proven yet: each arm needs at least "
            f"{K_ANONYMITY} people before outcomes are reported."
        )
        lines = []
    else:
        verdict = "broad" if (total_broad or 0.0) >= (total_narrow or 0.0) else "narrow"
        winner, loser = (total_broad, total_narrow) if verdict == "broad" else (total_narrow, total_broad)
        who = "speaking to everyone" if verdict == "broad" else f"targeting only {name}"
        headline = (
            f"{verdict.capitalize()} wins so far: {who} reaches {_money(winner)} in total, against "
            f"{_money(loser)} (per person: {name} {_money(per_narrow)}, everyone else {_money(per_broad)})."
        )
    return {
        "experiment": report["name"],
        "status": status,
        "started": started,
        "placement": report["placement"],
        "audience": name,
        "narrow": {
            "size": narrow_size,
            "shown": narrow.get("people", 0),
            "revenue_per_person": per_narrow,
            "total": total_narrow,
        },
        "broad": {
            "size": broad_size,
            "shown": broad.get("people", 0),
            "revenue_per_person": per_broad,
            "total": total_broad,
        },
        "verdict": verdict,
        "headline": headline,
        "summary": lines + list(report.get("summary", [])),
    }


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"
