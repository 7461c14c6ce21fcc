"""`shopkeeper lift`: lift, 95% CIs and a verdict for each arm of an outside experiment's CSV export."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from shopkeeper.cli._common import JsonOption, console, print_json
from shopkeeper.errors import InvalidInput

if TYPE_CHECKING:
    from shopkeeper.experiments.analysis import Array

TRUE_WORDS = {"true": 1.0, "false": 0.0, "yes": 1.0, "no": 0.0}


def read_columns(path: Path, columns: list[str]) -> tuple[dict[str, list[str]], int]:
    """The named columns of a CSV (plain or gzip; comma, semicolon, tab or bar separated, as the order
    importers read it) as strings, and the row count."""
    from shopkeeper.events.importers.source import open_file  # noqa: PLC0415 (the one CSV reader)

    if not path.exists():
        raise InvalidInput(f"no such file: {path}", field="FILE")
    if path.is_dir():
        raise InvalidInput(f"{path} is a directory, not a CSV file", field="FILE")

    def refuse(line: int, error: str) -> None:
        raise InvalidInput(f"{path} is not valid CSV: line {line}: {error}", field="FILE")

    with open_file(path) as source:
        header = source.header()
        missing = [c for c in dict.fromkeys(columns) if c not in header]
        if missing:
            shown = ", ".join(header[:20]) + (", ..." if len(header) > 20 else "")
            raise InvalidInput(
                f"no column {missing[0]!r} in {path}; its columns are: {shown}", field=missing[0]
            )
        index = {c: header.index(c) for c in columns}
        found: dict[str, list[str]] = {c: [] for c in columns}
        rows = 0
        for line, row in source.rows(refuse):
            if all(not cell.strip() for cell in row):
                continue
            if len(row) < len(header):
                raise InvalidInput(f"line {line} of {path} has {len(row)} fields, the header {len(header)}")
            for c, i in index.items():
                found[c].append(row[i].strip())
            rows += 1
    if rows == 0:
        raise InvalidInput(f"{path} has a header but no rows", field="FILE")
    return found, rows


def parse_numbers(column: str, values: list[str]) -> Array:
    """A metric or covariate column as floats; TRUE/FALSE and yes/no count as 1/0."""
    import numpy as np  # noqa: PLC0415 (numpy and scipy load when a file is analysed, not at start)

    parsed = np.empty(len(values), dtype=np.float64)
    for i, value in enumerate(values):
        word = TRUE_WORDS.get(value.lower())
        if word is not None:
            parsed[i] = word
            continue
        if not value:
            raise InvalidInput(f"column {column!r} has an empty value on line {i + 2}", field=column)
        try:
            number = float(value)
        except ValueError:
            raise InvalidInput(
                f"column {column!r} must be numeric (or TRUE/FALSE), but line {i + 2} has {value!r}",
                field=column,
            ) from None
        if not math.isfinite(number):
            raise InvalidInput(f"column {column!r} has {value!r} on line {i + 2}", field=column)
        parsed[i] = number
    return parsed


def _weights(specs: list[str], arms: list[str]) -> list[float]:
    if not specs:
        return [1.0] * len(arms)
    given: dict[str, float] = {}
    for spec in specs:
        name, sep, share = spec.rpartition("=")
        try:
            value = float(share)
        except ValueError:
            value = -1.0
        if not sep or not math.isfinite(value) or value <= 0:
            raise InvalidInput(
                f"--weight takes ARM=SHARE with a positive share, not {spec!r}", field="--weight"
            )
        if name not in arms:
            raise InvalidInput(f"--weight names {name!r}, which is not an arm in the file", field="--weight")
        given[name] = value
    absent = [a for a in arms if a not in given]
    if absent:
        raise InvalidInput(
            f"--weight must give every arm's share; missing: {', '.join(absent)}", field="--weight"
        )
    return [given[a] for a in arms]


def analyse(
    path: Path,
    arm: str,
    control: str,
    metrics: list[str],
    pre: str | None,
    weights: list[str],
    daily_traffic: float | None = None,
) -> dict[str, Any]:
    """Read the CSV and compare every other arm with the control on every metric."""
    import numpy as np  # noqa: PLC0415 (numpy and scipy load when a file is analysed, not at start)

    from shopkeeper.experiments.analysis import compare_metric, metric_kind  # noqa: PLC0415
    from shopkeeper.experiments.stats import sample_ratio_mismatch  # noqa: PLC0415

    if not metrics:
        raise InvalidInput("give at least one --metric COLUMN", field="--metric")
    wanted = [arm, *metrics] + ([pre] if pre else [])
    columns, _ = read_columns(path, wanted)
    labels = np.array(columns[arm], dtype=object)
    arms = sorted(set(columns[arm]))
    if control not in arms:
        shown = ", ".join(repr(a) for a in arms[:10]) + (", ..." if len(arms) > 10 else "")
        raise InvalidInput(f"no row has {arm} = {control!r}; the arms are {shown}", field="--control")
    if len(arms) < 2:
        raise InvalidInput(f"every row is in the control arm {control!r}: nothing to compare", field="--arm")
    values = {m: parse_numbers(m, columns[m]) for m in dict.fromkeys(metrics)}
    covariate = parse_numbers(pre, columns[pre]) if pre else None
    kinds = {m: metric_kind(v) for m, v in values.items()}
    in_arm = {a: labels == a for a in arms}
    order = [control, *(a for a in arms if a != control)]
    counts = [int(in_arm[a].sum()) for a in order]
    too_small = [a for a, n in zip(order, counts, strict=True) if n < 2]
    if too_small:
        raise InvalidInput(
            f"arm {too_small[0]!r} has fewer than 2 rows: no interval can be computed", field="--arm"
        )
    srm = sample_ratio_mismatch(counts, _weights(weights, order))
    result_arms = []
    c = in_arm[control]
    for name in order[1:]:
        t = in_arm[name]
        metric_results = [
            compare_metric(
                m,
                v[c],
                v[t],
                kinds[m],
                None if covariate is None else covariate[c],
                None if covariate is None else covariate[t],
                treatment_name=name,
                control_name=control,
                daily_traffic=daily_traffic,
            )
            for m, v in values.items()
        ]
        result_arms.append({"arm": name, "n": int(t.sum()), "metrics": metric_results})
    return {
        "arms": result_arms,
        "control": {"arm": control, "n": counts[0]},
        "column": arm,
        "pre": pre,
        "confidence": 0.95,
        "srm": {
            "counts": dict(zip(order, counts, strict=True)),
            "expected": dict(zip(order, srm.expected, strict=True)),
            "chi2": srm.chi2,
            "p_value": srm.p_value,
            "mismatch": srm.mismatch,
        },
    }


def _fmt(value: float | None, percent: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value * 100:+.1f}%" if percent else f"{value:.4g}"


def _p(value: float) -> str:
    return "< 1e-16" if value < 1e-16 else f"= {value:.2g}"


def print_report(report: dict[str, Any]) -> None:
    """A table of every arm and metric, the one-sentence verdicts, and the sample-ratio check."""
    control = report["control"]
    table = Table("arm", "n", "metric", "control", "arm", "diff [95% CI]", "lift", "verdict")
    for arm in report["arms"]:
        for m in arm["metrics"]:
            table.add_row(
                str(arm["arm"]),
                f"{arm['n']:,}",
                m["metric"] + (" (CUPED)" if "cuped" in m else ""),
                _fmt(m["control"]),
                _fmt(m["treatment"]),
                f"{_fmt(m['diff'])} [{_fmt(m['ci_low'])}, {_fmt(m['ci_high'])}]",
                _fmt(m["rel_lift"], percent=True),
                m["verdict"],
            )
    console.print(f"Control: {report['column']} = {control['arm']} ({control['n']:,} rows)")
    console.print(table)
    for arm in report["arms"]:
        for m in arm["metrics"]:
            console.print(f"- {m['summary']}")
    srm = report["srm"]
    if srm["mismatch"]:
        console.print(
            f"Warning: sample ratio mismatch (chi-square p {_p(srm['p_value'])}): the arms' sizes are not "
            "what the intended split gives. The split or the export may be broken, or the data may not come "
            "from a randomized experiment; treat the lift with suspicion."
        )
    else:
        console.print(f"Sample ratio check passed (chi-square p {_p(srm['p_value'])}).")


def lift(
    file: Annotated[
        Path, typer.Argument(metavar="FILE.csv", help="A CSV with one row per person (plain or .gz).")
    ],
    arm: Annotated[
        str,
        typer.Option(
            "--arm", metavar="COLUMN", help="The column naming each person's arm.", show_default=False
        ),
    ],
    control: Annotated[
        str, typer.Option("--control", metavar="VALUE", help="The control arm's value in that column.")
    ],
    metric: Annotated[
        list[str],
        typer.Option(
            "--metric",
            metavar="COLUMN",
            help="An outcome column (repeatable): all 0/1 (or TRUE/FALSE) is a proportion, else a mean.",
            show_default=False,
        ),
    ],
    pre: Annotated[
        str | None,
        typer.Option(
            "--pre", metavar="COLUMN", help="A pre-period covariate: enables CUPED.", show_default=False
        ),
    ] = None,
    weight: Annotated[
        list[str] | None,
        typer.Option(
            "--weight",
            metavar="ARM=SHARE",
            help="An arm's intended traffic share, for the sample-ratio check (repeatable; default equal).",
            show_default=False,
        ),
    ] = None,
    daily_traffic: Annotated[
        float | None,
        typer.Option(
            "--daily-traffic",
            metavar="N",
            min=1,
            help="People entering the test per day (all arms), to say how many more days an open test needs.",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Analyse a randomized campaign export: lift, 95% CI and a verdict for each arm against the control."""
    report = analyse(file, arm, control, metric, pre, weight or [], daily_traffic)
    if as_json:
        print_json(report)
        return
    print_report(report)
