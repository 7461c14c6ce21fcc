"""The docs cover the code: every CLI command and option, HTTP route, setting, error code and package.

Each test reads the names from the code itself (the typer app, the FastAPI app, `Settings`, the sources)
and looks for them on the one docs page that is their reference. A failure says what is missing and on
which page to add it.
"""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer.main
from tests.routes import routes_of

from shopkeeper.api.app import create_app
from shopkeeper.cli.main import app as cli_app
from shopkeeper.errors import ShopkeeperError
from shopkeeper.settings import Settings

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"
SRC = ROOT / "src" / "shopkeeper"
CLI_PAGE = DOCS / "reference" / "cli.md"
HTTP_PAGE = DOCS / "reference" / "http.md"
SETTINGS_PAGE = DOCS / "operations" / "settings.md"
ERRORS_PAGE = DOCS / "reference" / "errors.md"
ARCHITECTURE_PAGE = DOCS / "architecture.md"


def _page(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _where(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _sections(markdown: str) -> dict[str, str]:
    """Each heading's text (without `#` and backticks) mapped to its section: the lines up to the next
    heading of the same or a higher level. Lines inside fenced code blocks are never headings."""
    headings: list[tuple[int, int, str]] = []  # (line index, level, text)
    lines = markdown.splitlines()
    fence: str | None = None
    for i, line in enumerate(lines):
        opening = re.match(r"\s*(`{3,}|~{3,})", line)
        if opening:
            if fence is None:
                fence = opening.group(1)
            elif opening.group(1).startswith(fence):
                fence = None
            continue
        heading = re.match(r"(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if fence is None and heading:
            headings.append((i, len(heading.group(1)), heading.group(2).replace("`", "").strip()))
    sections: dict[str, str] = {}
    for n, (start, level, text) in enumerate(headings):
        end = next((i for i, lv, _ in headings[n + 1 :] if lv <= level), len(lines))
        sections[text] = "\n".join(lines[start:end])
    return sections


def _mentions(text: str, word: str) -> bool:
    """`word` appears in `text` as a whole: `--db` is not found in `--db-url`, nor `/v1/x` in `/v1/x/y`."""
    return re.search(rf"(?<![\w/-]){re.escape(word)}(?![\w/{{}}-])", text) is not None


# --- CLI ---------------------------------------------------------------------------------------------------


def _cli_commands(command: Any, path: str) -> Iterator[tuple[str, list[list[str]]]]:
    """Every leaf command's full name, with its visible options' names (`--serve/--no-serve`: both)."""
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            if not getattr(sub, "hidden", False):
                yield from _cli_commands(sub, f"{path} {name}")
        return
    options = [
        [*param.opts, *param.secondary_opts]
        for param in command.params
        if param.param_type_name == "option" and not getattr(param, "hidden", False)
    ]
    yield path, options


def test_every_cli_command_and_option_is_in_the_cli_reference() -> None:
    commands = list(_cli_commands(typer.main.get_command(cli_app), "shopkeeper"))
    assert len(commands) >= 5, commands
    sections = _sections(_page(CLI_PAGE))
    missing: list[str] = []
    for command, options in commands:
        section = sections.get(command)
        if section is None:
            missing.append(f"`{command}`: no section (add a heading `### {command}`)")
            continue
        absent = [names[0] for names in options if not any(_mentions(section, n) for n in names)]
        if absent:
            missing.append(f"`{command}`: options {', '.join(absent)} not named in its section")
    assert not missing, f"{_where(CLI_PAGE)} does not cover the CLI:\n  " + "\n  ".join(missing)


# --- HTTP --------------------------------------------------------------------------------------------------


def test_every_http_route_is_in_the_http_reference(sqlite_url: str) -> None:
    app = create_app(Settings(database_url=sqlite_url))
    try:
        routes = sorted(set(routes_of(list(app.routes))))
    finally:
        app.state.shopkeeper.store.close()
    assert {"POST /v1/batch", "POST /v1/decide", "GET /healthz", "OPTIONS /v1/t"} <= set(routes), routes
    page = _page(HTTP_PAGE)
    missing = [route for route in routes if not _mentions(page, route)]
    assert not missing, f"{_where(HTTP_PAGE)} does not name these routes (as `METHOD /path`): " + ", ".join(
        missing
    )


# --- settings ----------------------------------------------------------------------------------------------


def test_every_setting_is_in_the_settings_page() -> None:
    prefix = str(Settings.model_config.get("env_prefix", "")).upper()
    assert prefix == "SHOPKEEPER_"
    page = _page(SETTINGS_PAGE)
    missing = [
        f"{prefix}{name.upper()}"
        for name in Settings.model_fields
        if not re.search(rf"(?<![A-Z0-9_]){prefix}{name.upper()}(?![A-Z0-9_])", page)
    ]
    assert not missing, f"{_where(SETTINGS_PAGE)} does not name these settings: " + ", ".join(missing)


# --- error codes -------------------------------------------------------------------------------------------


def _strings(node: ast.AST) -> list[str]:
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def _error_codes_in_source() -> dict[str, list[str]]:
    """Every error code written in `src/`, with where: a class's `code = "..."`, a `code="..."` argument,
    and a `{"code": ...}` body; only strings that look like codes (`invalid_json`) count."""
    found: dict[str, list[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            values: list[str] = []
            if isinstance(node, ast.keyword) and node.arg == "code":
                values = _strings(node.value)
            elif isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if isinstance(key, ast.Constant) and key.value == "code":
                        values += _strings(value)
            elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = [getattr(t, "id", None) or getattr(t, "attr", None) for t in targets]
                if "code" in names:
                    values = _strings(node.value)
            for value in values:
                if re.fullmatch(r"[a-z][a-z0-9_]*", value):
                    where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}"
                    found.setdefault(value, []).append(where)
    return found


def _subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_every_error_code_is_in_the_error_codes_page() -> None:
    codes = _error_codes_in_source()
    for cls in [ShopkeeperError, *_subclasses(ShopkeeperError)]:
        codes.setdefault(cls.code, []).append(f"{cls.__module__}.{cls.__qualname__}")
    assert {"invalid_input", "rate_limited", "internal_error", "store_unavailable"} <= set(codes), codes
    page = _page(ERRORS_PAGE)
    missing = [f"`{code}` (from {', '.join(where)})" for code, where in sorted(codes.items())]
    missing = [line for line in missing if line.split(" ")[0] not in page]
    assert not missing, f"{_where(ERRORS_PAGE)} does not name these error codes:\n  " + "\n  ".join(missing)


# --- packages ----------------------------------------------------------------------------------------------


def test_every_package_is_named_in_the_architecture_page() -> None:
    packages = sorted(p.name for p in SRC.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))
    assert "store" in packages
    page = _page(ARCHITECTURE_PAGE)
    missing = [f"{name}/" for name in packages if f"`{name}/`" not in page]
    assert not missing, f"{_where(ARCHITECTURE_PAGE)} does not name these packages: " + ", ".join(missing)


# --- and the docs name nothing that is gone ----------------------------------------------------------------

_PATH = re.compile(r"`((?:\.ci|[a-z_]+)/[\w./-]*)`")
_DOTTED = re.compile(r"`(shopkeeper(?:\.\w+)+)`")
_FILE_NAMES = {"shopkeeper.db"}  # the default database, not a module
# The packages the design names, arrived or not: a path under one of them is package-relative.
_PACKAGES = {"api", "cli", "web", "decide", "moments", "channels", "content", "personas", "profiles"}
_PACKAGES |= {"privacy", "experiments", "catalog", "events", "store", "recommend", "data"}


def _exists(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            if not hasattr(target, name):
                return False
            target = getattr(target, name)
        return True
    return False


def test_the_docs_name_only_files_and_modules_that_exist() -> None:
    """A path such as `benchmarks/decide.py`, `src/...`, `shopkeeper/data/` or a package-relative
    `store/schema.py`, and a dotted name such as `shopkeeper.profiles.traits.resolve`, must exist. (A bare
    `web/` names a package the design has placed but that has not arrived; the package test covers those.)"""
    gone: list[str] = []
    for page in [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]:
        text = _page(page)
        for path in sorted(set(_PATH.findall(text))):
            first = path.split("/")[0]
            if first in (".ci", "src", "tests", "benchmarks", "scripts", "docs"):
                where = ROOT / path
            elif first == "shopkeeper":
                where = ROOT / "src" / path
            elif first in _PACKAGES and path != f"{first}/":
                where = SRC / path
            else:
                continue
            if not where.exists():
                gone.append(f"{_where(page)}: `{path}` (looked for {_where(where)})")
        names = sorted(set(_DOTTED.findall(text)) - _FILE_NAMES)
        gone += [f"{_where(page)}: `{name}`" for name in names if not _exists(name)]
    assert not gone, "the docs name what does not exist:\n  " + "\n  ".join(gone)
