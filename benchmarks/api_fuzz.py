"""Fuzz every route of a live server with schemathesis; print the cases per route and every failure found.

    python benchmarks/api_fuzz.py                      # 10,000 cases on a temporary SQLite database
    python benchmarks/api_fuzz.py --quick --json       # 1,000: the CI slice (tests/api/test_api_fuzz.py)
    python benchmarks/api_fuzz.py --postgres postgresql+psycopg://127.0.0.1/test

It starts `shopkeeper serve` on 127.0.0.1 over a fresh database with one admin key and one write key, reads
the server's own /openapi.json, and sends generated requests to every operation:
- positive cases (inputs the schema allows) and negative cases (inputs it refuses), per operation;
- stateful runs that follow the document's links (identify someone, then read, explain, change or erase
  them; put an item, then read it and its history; create an experiment, then report and stop it).
Each answer must pass schemathesis' checks: no 5xx, a documented status code, a documented content type
and a body (success or error) that validates against the documented schema. Tracking routes get the write
key as the Basic username; every other route the admin key as a Bearer token; one case in ten gets no
credential, or the other kind, so that the 401s and 403s are checked too.

Exit status 0 when nothing failed. No timings: this is a correctness run.
"""

from __future__ import annotations

import argparse
import base64
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import requests
import schemathesis
from goals import record
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import Flaky, Unsatisfiable
from ingest_support.server import running_server
from rich.console import Console
from rich.table import Table
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from shopkeeper.store import Store

# Most generated cases carry a wrong or missing credential on purpose. With the limits on failed
# authentication left on, 127.0.0.1 would be refused with 429 after the first 30 of them, and the rest of
# the run would fuzz the limiter instead of the routes (tests/api/test_limits.py tests the limits).
NO_FAILURE_LIMITS = {"SHOPKEEPER_RATE_LIMIT_FAILED_AUTH": "0", "SHOPKEEPER_RATE_LIMIT_FAILED_LINKS": "0"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# A path id whose last segment names a sub-resource is routed to that sub-resource (`/v1/people/a/explain`
# is the explanation of `a`): such ids are outside what the path parameter can address, so not generated.
SUB_RESOURCES = {"events", "explain", "consent", "preferences", "rejections", "export", "link", "history"}
NEGATIVE_SHARE = 0.25  # of each operation's stateless cases
STATEFUL_SHARE = 0.2  # of all cases


@dataclass
class Tally:
    """What the run saw, per operation: cases by kind, status codes, and failures (deduplicated)."""

    cases: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    failures: dict[tuple[str, str, str], int] = field(default_factory=Counter)
    examples: dict[tuple[str, str, str], str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(sum(kinds.values()) for kinds in self.cases.values())

    def server_errors(self) -> int:
        return sum(n for statuses in self.statuses.values() for code, n in statuses.items() if code >= 500)

    def record(self, label: str, kind: str, case: Any, response: Any) -> None:
        self.cases[label][kind] += 1
        self.statuses[label][response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except (AssertionError, BaseExceptionGroup) as exc:  # a Failure, or several in a FailureGroup
            for failure in getattr(exc, "exceptions", None) or [exc]:
                title = getattr(failure, "title", type(failure).__name__)
                key = (label, title, str(response.status_code))
                self.failures[key] += 1
                self.examples.setdefault(key, _example(case, response, failure))


def _example(case: Any, response: Any, failure: Any) -> str:
    body = case.body if case.body is not None and not isinstance(case.body, bytes) else None
    message = str(getattr(failure, "message", failure)).strip().splitlines()
    return (
        f"{case.method} {case.formatted_path} query={case.query} body={str(body)[:200]!r} -> "
        f"{response.status_code} {response.text[:200]!r}: {' '.join(message)[:300]}"
    )


class Credentials:
    """The Authorization header of each case: the right key, or (one case in ten) none or the wrong one.
    Which key is right comes from the operation's `security` in the document."""

    def __init__(self, document: dict[str, Any], admin_key: str, write_key: str) -> None:
        basic = base64.b64encode(f"{write_key}:".encode()).decode()
        self.write = {"Authorization": f"Basic {basic}"}
        self.admin = {"Authorization": f"Bearer {admin_key}"}
        self.security = {
            _label(method, path): [name for need in operation.get("security", []) for name in need]
            for path, operations in document["paths"].items()
            for method, operation in operations.items()
        }
        self.count = 0

    def for_case(self, case: Any) -> dict[str, str]:
        schemes = self.security[_label(case.operation.method, case.operation.path)]
        if not schemes:
            return {}
        self.count += 1
        right, wrong = (self.write, self.admin) if "writeKey" in schemes else (self.admin, self.write)
        turn = self.count % 20
        return {"Authorization": ""} if turn == 0 else wrong if turn == 1 else right


def _label(method: str, path: str) -> str:
    return f"{method.upper()} {path}"


def _routable(_context: Any, path_parameters: dict[str, Any] | None) -> bool:
    for value in (path_parameters or {}).values():
        if isinstance(value, str) and "/" in value and value.rsplit("/", 1)[-1] in SUB_RESOURCES:
            return False
    return True


def load_schema(url: str) -> Any:
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    schema.hook("filter_path_parameters")(_routable)
    return schema


@dataclass
class Target:
    """The server under test, how to call it, and where the answers are counted."""

    url: str
    session: requests.Session
    keys: Credentials
    tally: Tally
    known: dict[str, list[str]]  # path parameter -> ids that exist (people, items), seeded first


def seed_store(target: Target, n: int = 30) -> None:
    """People with traits and events, and items with stock: so that half of the cases on a person or an
    item address one that exists (the rest use generated ids, mostly unknown: 404s)."""
    people, items = [f"fuzz-person-{i}" for i in range(n)], [f"fuzz-item-{i}" for i in range(n)]
    write, admin = target.keys.write, target.keys.admin
    for i, person in enumerate(people):
        traits = {"email": f"{person}@example.com", "size": "M", "favourite_categories": ["Mugs"]}
        batch = [
            {"type": "identify", "userId": person, "traits": traits},
            {
                "type": "track",
                "userId": person,
                "event": "Product Viewed",
                "properties": {"item_id": items[i]},
            },
            {"type": "track", "userId": person, "event": "Order Completed", "properties": {"revenue": 9.5}},
        ]
        target.session.post(f"{target.url}/v1/batch", json={"batch": batch}, headers=write, timeout=30)
    for item in items:
        body = {"title": f"Mug {item}", "category": "Mugs", "price": 4.5, "variants": [{"variant_id": "m"}]}
        target.session.put(f"{target.url}/v1/items/{item}", json=body, headers=admin, timeout=30)
    target.known.update(person_ref=people, item_id=items)


def _strategy(operation: Any, mode: Any, known: dict[str, list[str]], use_known: bool) -> Any:
    names = [p.name for p in operation.path_parameters] if use_known else []
    fixed = [name for name in names if known.get(name)]
    if not fixed:
        return operation.as_strategy(generation_mode=mode)
    return st.tuples(*(st.sampled_from(known[name]) for name in fixed)).flatmap(
        lambda values: operation.as_strategy(
            generation_mode=mode, path_parameters=dict(zip(fixed, values, strict=True))
        )
    )


def fuzz_operation(target: Target, operation: Any, mode: Any, n: int, seed_value: int) -> None:
    """`n` cases of one operation; with known ids for its path parameters on every other seed."""
    label = _label(operation.method, operation.path)
    kind = "positive" if mode == GenerationMode.POSITIVE else "negative"
    strategy = _strategy(operation, mode, target.known, use_known=seed_value % 2 == 0)

    @seed(seed_value)
    @settings(
        max_examples=n,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        headers = target.keys.for_case(case)
        response = case.call(base_url=target.url, session=target.session, headers=headers, timeout=30)
        target.tally.record(label, kind, case, response)

    with suppress(Unsatisfiable):  # nothing to make negative (an operation without inputs)
        run()


def fuzz_stateful(schema: Any, n: int, seed_value: int, url: str, keys: Credentials, tally: Tally) -> None:
    """Scenarios along the document's links, until about `n` calls were made."""
    base = schema.as_state_machine()

    class Scenario(base):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": url, "headers": keys.for_case(case), "timeout": 30}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            label = _label(case.operation.method, case.operation.path)
            tally.record(label, "stateful", case, response)

    start = tally.total
    for round_ in range(50):
        if tally.total - start >= n:
            break
        options = settings(
            max_examples=max(10, (n - (tally.total - start)) // 8),
            stateful_step_count=10,
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        # The server's state changes between scenarios, so which links can be followed does too: when
        # Hypothesis notices (Flaky), start a new run, as schemathesis' own runner does.
        with suppress(Flaky):
            seed(seed_value + round_)(Scenario).run(settings=options)


def fuzz(url: str, admin_key: str, write_key: str, cases: int, seed_value: int) -> Tally:
    """Run about `cases` cases against the server at `url`; the tally of what it answered."""
    schema = load_schema(url)
    # erasing last in each round, so that the people seeded for the round serve every other route first
    operations = sorted(
        (result.ok() for result in schema.get_all_operations()), key=lambda op: op.method == "delete"
    )
    keys = Credentials(requests.get(f"{url}/openapi.json", timeout=30).json(), admin_key, write_key)
    stateless = cases - int(cases * STATEFUL_SHARE)
    with requests.Session() as session:
        target = Target(url, session, keys, Tally(), {})
        for round_ in range(20):
            if target.tally.total >= stateless:
                break
            seed_store(target)  # again each round: erasures and fuzzed changes wear the people down
            per_operation = max(2, (stateless - target.tally.total) // len(operations))
            for index, operation in enumerate(operations):
                positive = max(1, round(per_operation * (1 - NEGATIVE_SHARE)))
                base_seed = seed_value + 1000 * round_ + 10 * index
                for half in (0, 1):  # known ids, then generated ones (the seed's parity says which)
                    fuzz_operation(
                        target,
                        operation,
                        GenerationMode.POSITIVE,
                        max(1, (positive + half) // 2),
                        base_seed + half,
                    )
                fuzz_operation(
                    target,
                    operation,
                    GenerationMode.NEGATIVE,
                    max(1, per_operation - positive),
                    base_seed + 3,
                )
    fuzz_stateful(schema, cases - target.tally.total, seed_value, url, keys, target.tally)
    return target.tally


def print_report(tally: Tally, console: Console, seconds: float) -> None:
    table = Table(title=f"schemathesis: {tally.total:,} cases in {seconds:.0f} s")
    for column in ("operation", "positive", "negative", "stateful", "status codes seen", "failures"):
        table.add_column(column, justify="left" if column in ("operation", "status codes seen") else "right")
    failed_by_label = Counter[str]()
    for (label, _title, _status), n in tally.failures.items():
        failed_by_label[label] += n
    for label in sorted(tally.cases, key=lambda text: (text.split(" ", 1)[1], text)):
        kinds = tally.cases[label]
        statuses = ", ".join(f"{code}: {n}" for code, n in sorted(tally.statuses[label].items()))
        table.add_row(
            label,
            f"{kinds['positive']:,}",
            f"{kinds['negative']:,}",
            f"{kinds['stateful']:,}",
            statuses,
            str(failed_by_label[label]),
        )
    console.print(table)
    violations = sum(n for (_, title, _), n in tally.failures.items() if "schema" in title.lower())
    undocumented = sum(n for (_, title, _), n in tally.failures.items() if "status code" in title.lower())
    console.print(
        f"cases {tally.total:,}; server errors {tally.server_errors()}; response-schema violations "
        f"{violations}; undocumented status codes {undocumented}; "
        f"failures in all {sum(tally.failures.values())}"
    )
    for key, n in sorted(tally.failures.items()):
        console.print(f"[red]{key[0]}: {key[1]} ({key[2]}), {n} times[/red]\n  {tally.examples[key]}")


def summary(tally: Tally) -> dict[str, Any]:
    return {
        "cases": tally.total,
        "server_errors": tally.server_errors(),
        "failures": [
            {"operation": k[0], "check": k[1], "status": k[2], "count": n, "example": tally.examples[k]}
            for k, n in sorted(tally.failures.items())
        ],
        "per_operation": {label: dict(kinds) for label, kinds in sorted(tally.cases.items())},
    }


@contextmanager
def fresh_postgres_schema(server_url: str) -> Iterator[str]:
    """A new, empty schema on this PostgreSQL server (dropped afterwards): the URL that uses it."""
    name = f"api_fuzz_{uuid.uuid4().hex[:12]}"
    engine = create_engine(server_url)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    try:
        url = make_url(server_url).update_query_dict({"options": f"-csearch_path={name}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cases", type=int, default=10_000, help="about this many cases in all")
    parser.add_argument(
        "--quick", action="store_true", help="1,000 cases (the CI slice: tests/api/test_api_fuzz.py)"
    )
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100_000)
    parser.add_argument("--postgres", metavar="URL", help="use a fresh schema on this PostgreSQL server")
    parser.add_argument("--json", action="store_true", help="print a JSON summary instead of the table")
    args = parser.parse_args(argv)
    if args.quick:
        args.cases = 1_000
    console = Console(stderr=args.json, width=160)
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="api-fuzz-")))
        if args.postgres:
            url = stack.enter_context(fresh_postgres_schema(args.postgres))
        else:
            url = f"sqlite:///{workdir / 'shop.db'}"
        store = Store.open(url)
        admin_key, _ = store.keys.create("admin", name="api fuzz")
        write_key, _ = store.keys.create("write", name="api fuzz")
        store.close()
        server = stack.enter_context(running_server(url, workdir, settings=NO_FAILURE_LIMITS))
        console.print(f"fuzzing {server.url} ({url.split(':', 1)[0]}), seed {args.seed}")
        began = time.monotonic()
        tally = fuzz(server.url, admin_key, write_key, args.cases, args.seed)
        seconds = time.monotonic() - began
        problems = server.problems()
    failures = sum(tally.failures.values())
    record(
        "api_fuzz",
        f"schemathesis cases over every route ({url.split(':', 1)[0]})",
        f"{failures} failures, {tally.server_errors()} 5xx in {tally.total:,} cases"
        + ("; the server logged errors" if problems else ""),
        goal="0 failures",
        met=not failures and not tally.server_errors() and not problems,
    )
    if args.json:
        sys.stdout.write(orjson.dumps(summary(tally)).decode() + "\n")
    else:
        print_report(tally, console, seconds)
    if problems:
        console.print("[red]the server logged errors:[/red]\n" + problems)
    return 0 if not tally.failures and not tally.server_errors() and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
