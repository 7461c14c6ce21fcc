"""`shopkeeper experiments`: create, list, stop and report experiments, and the holdout's report."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from shopkeeper.cli._common import DbOption, JsonOption, console, open_shop, print_json, settings_for
from shopkeeper.cli.personas import print_reach
from shopkeeper.decide.placements import placements_from
from shopkeeper.errors import InvalidInput
from shopkeeper.experiments import DEFAULT_FLOOR, DEFAULT_WINDOW_DAYS
from shopkeeper.wording import counted

app = typer.Typer(
    help="A/B/n tests and bandits on decide placements, and the holdout's report "
    "(`shopkeeper experiments report holdout`).",
    no_args_is_help=True,
)


def _variant(spec: str) -> tuple[str, Any]:
    name, _, options = spec.partition("=")
    if not options.strip():
        return name.strip(), {}
    try:
        return name.strip(), orjson.loads(options)
    except orjson.JSONDecodeError:
        raise InvalidInput(
            f"--variant {spec!r}: the options after '=' must be JSON, e.g. "
            'small={"n": 4} or baseline={"model": "popularity"}',
            field="variants",
        ) from None


def _weights(spec: str | None) -> list[float] | None:
    if spec is None:
        return None
    try:
        return [float(part) for part in spec.split(",")]
    except ValueError:
        raise InvalidInput(
            f"--weights {spec!r}: give numbers separated by commas, e.g. 50,50", field="weights"
        ) from None


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="A name for the experiment (letters, digits, _ . -).")],
    placement: Annotated[str, typer.Option("--placement", help="The decide placement it runs on.")],
    variant: Annotated[
        list[str],
        typer.Option(
            "--variant",
            help='NAME=JSON options, e.g. personalized= baseline={"model": "popularity"} '
            'small={"n": 4, "max_per_category": 1} (options: model, n, max_per_category, repeats). '
            "Repeat for each arm; the first is the control.",
        ),
    ],
    weights: Annotated[
        str | None, typer.Option("--weights", help="Traffic weights, one per variant: 50,25,25.")
    ] = None,
    audience: Annotated[
        str | None,
        typer.Option(
            "--audience",
            help="Only an audience: a saved audience's name (`shopkeeper audiences create`), or a "
            'condition in the audience language, e.g. {"trait": "order_count", "gte": 2}.',
        ),
    ] = None,
    bandit: Annotated[
        bool, typer.Option("--bandit", help="Thompson sampling instead of fixed weights.")
    ] = False,
    reward: Annotated[
        str, typer.Option("--reward", help="Bandits: learn from `conversion` (Beta-Bernoulli) or `revenue`.")
    ] = "conversion",
    floor: Annotated[
        float, typer.Option("--floor", help="Bandits: the least chance every arm keeps.")
    ] = DEFAULT_FLOOR,
    window_days: Annotated[
        int, typer.Option("--window-days", help="Days after first exposure that outcomes count.")
    ] = DEFAULT_WINDOW_DAYS,
    event: Annotated[
        list[str] | None, typer.Option("--event", help="A named event to measure too (repeatable).")
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an experiment; it starts at once."""
    rule = None
    if audience is not None:
        try:
            rule = orjson.loads(audience)
        except orjson.JSONDecodeError:
            if audience.lstrip().startswith(("{", "[")):
                raise InvalidInput("--audience is not valid JSON", field="audience") from None
            rule = audience  # a saved audience's name
    from shopkeeper.experiments.service import new_experiment  # noqa: PLC0415 (numpy, scipy: only here)
    from shopkeeper.shop import Shop  # noqa: PLC0415 (the services: on first use)

    settings = settings_for(db)
    with Shop.from_settings(settings) as shop:
        experiment = new_experiment(
            name,
            placement,
            [_variant(v) for v in variant],
            placements=placements_from(settings.placements_json),
            weights=_weights(weights),
            audience=rule,
            bandit=bandit,
            reward=reward,
            window_days=window_days,
            floor=floor,
            outcome_events=event or [],
            targeting=shop.audiences,
        )
        created = shop.experiments.create(experiment)
        reach = shop.audiences.target_reach(created.audience) if created.audience else None
    if as_json:
        print_json(created.to_json())
        return
    arms = ", ".join(f"{v.name} ({s:.0%})" for v, s in zip(created.variants, created.shares, strict=True))
    how = "a bandit over" if created.kind.startswith("bandit") else "arms"
    console.print(f"Started {created.name} on {created.placement}: {how} {arms}.")
    if reach is not None:
        print_reach(reach)  # whom it reaches, and the guard's word when that is too few


@app.command("list")
def list_experiments(db: DbOption = None, as_json: JsonOption = False) -> None:
    """List experiments, running and stopped."""
    with open_shop(db) as shop:
        found = shop.experiments.experiments.list()
        share = shop.experiments.holdout.share
    if as_json:
        print_json({"experiments": [e.to_json() for e in found], "holdout": {"share": share}})
        return
    table = Table(title=f"Experiments (holdout: {share:.1%} of people)")
    for column in ("name", "placement", "kind", "status", "variants", "window", "created"):
        table.add_column(column)
    for e in found:
        table.add_row(
            e.name,
            e.placement,
            e.kind,
            e.status,
            ", ".join(e.arms),
            f"{e.window_days} d",
            f"{e.created_at:%Y-%m-%d %H:%M}",
        )
    console.print(table)


@app.command("stop")
def stop(
    name: Annotated[str, typer.Argument(help="The experiment to stop.")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Stop an experiment: everyone gets the placement's default again. Its report stays."""
    with open_shop(db) as shop:
        stopped = shop.experiments.stop(name)
    if as_json:
        print_json(stopped.to_json())
        return
    console.print(f"Stopped {stopped.name}.")


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def _lift(metric: dict[str, Any] | None) -> str:
    if metric is None:
        return "-"
    if metric.get("rel_lift") is not None and metric.get("rel_ci_low") is not None:
        return f"{metric['rel_lift']:+.1%} ({metric['rel_ci_low']:+.1%} to {metric['rel_ci_high']:+.1%})"
    if metric.get("kind") == "proportion":  # no relative lift when the control is 0: points
        low, high = metric["ci_low"] * 100, metric["ci_high"] * 100
        return f"{metric['diff'] * 100:+.1f} pts ({low:+.1f} to {high:+.1f})"
    return f"{metric['diff']:+.4g} ({metric['ci_low']:+.4g} to {metric['ci_high']:+.4g})"


def print_report(report: dict[str, Any]) -> None:
    title = f"{report['name']} ({report['kind']}, {report['placement']}, {report['status']})"
    table = Table(title=title)
    for column in (
        "arm",
        "people",
        "conversions",
        "rate",
        "revenue/person",
        "conversion lift (95% CI)",
        "P(best)",
    ):
        table.add_column(column, justify="left" if column == "arm" else "right", no_wrap=column == "arm")
    for arm in report["arms"]:
        by_metric = {m["metric"]: m for m in arm["metrics"]}
        table.add_row(
            arm["arm"] + (" (control)" if arm["arm"] == report["control"] else ""),
            f"{arm['people']:,}",
            f"{arm['conversions']:,}",
            _rate(arm["conversion_rate"]),
            _money(arm["revenue_per_person"]),
            _lift(by_metric.get("conversion")),
            f"{arm['probability_best']:.0%}" if arm["probability_best"] is not None else "-",
        )
    console.print(table)
    srm = report["srm"]
    srm_text = (
        f"p = {srm['p_value']:.3g}{' MISMATCH' if srm['mismatch'] else ', fine'}"
        if srm["checked"]
        else f"not checked ({srm['reason']})"
    )
    reach = report["reach"]
    share = "-" if reach["share"] is None else f"{reach['share']:.1%}"
    console.print(
        f"Window {counted(report['window_days'], 'day')} "
        f"({counted(report['window_open'], 'person', 'people')} still inside it); sample ratio {srm_text}; "
        f"audience reach {share} of {counted(reach['people'], 'known person', 'known people')}; "
        f"left out without consent: {report['excluded_no_consent']:,}."
    )
    for sentence in report["summary"]:
        console.print(sentence)
    for value in report.get("off_policy", []):  # bandits: each arm's value had everyone got it
        shown = _money if value["reward"] == "revenue" else _rate
        console.print(
            f"Off-policy: serving {value['arm']} to everyone would give about {shown(value['dr'])} "
            f"{value['reward']} per person (doubly robust; 95% CI {shown(value['ci_low'])} to "
            f"{shown(value['ci_high'])}; IPW {shown(value['ipw'])}, self-normalized {shown(value['snipw'])})."
        )


@app.command("report")
def report(
    name: Annotated[str, typer.Argument(help="The experiment, or `holdout` for the headline report.")],
    window_days: Annotated[
        int | None, typer.Option("--window-days", help="Override the attribution window (days).")
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Per arm: people, conversions, revenue, lift with 95% CIs, SRM, reach and the verdict."""
    with open_shop(db) as shop:
        found = shop.experiments.report(name, window_days=window_days)
    if as_json:
        print_json(found)
        return
    print_report(found)
