"""`shopkeeper content`: lint a file or a saved template (exit 1 on findings, line and column in the file),
load a folder, list, and preview real and hostile people, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from in_process import run_main

from shopkeeper import Shop
from shopkeeper.content import EXAMPLES


def test_lint_a_file_points_at_the_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite:///{tmp_path / 'shop.db'}"
    good = EXAMPLES / "back_in_stock.json"
    code, out, _ = run_main(capsys, "content", "lint", str(good), "--db", db)
    assert code == 0 and "no findings" in out
    bad = tmp_path / "bad.json"
    bad.write_text(
        '{"channel": "email",\n'
        ' "subject": "Hi {{ first_name }}",\n'
        ' "html": "<p>Hi {{ first_name }} {{ surname }}</p>",\n'
        ' "fields": {\n'
        '   "first_name": {"slot": "first_name", "from": "firstName"}}}\n'
    )
    code, out, _ = run_main(capsys, "content", "lint", str(bad), "--db", db)
    assert code == 1
    assert f"{bad}:5:4: no_fallback (fields)" in out
    assert f"{bad}:1:27: unknown_field (html)" in out
    code, out, _ = run_main(capsys, "content", "lint", str(bad), "--db", db, "--json")
    assert code == 1
    findings = json.loads(out)["findings"]
    assert {f["code"] for f in findings} == {"no_fallback", "unknown_field"}
    code, _, err = run_main(capsys, "content", "lint", str(tmp_path / "missing.json"), "--db", db)
    assert code == 1 and err.startswith("error: ") and "cannot be read" in err


def test_load_list_lint_by_name_and_preview(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'shop.db'}"
    code, out, _ = run_main(capsys, "content", "list", "--db", db)
    assert code == 0 and "No templates yet" in out
    code, out, _ = run_main(capsys, "content", "load", "--examples", "--db", db)
    assert code == 0 and "back_in_stock: version 1 (email)" in out
    code, out, _ = run_main(capsys, "content", "load", str(EXAMPLES), "--db", db)
    assert code == 0 and "back_in_stock: version 1 (email)" in out  # unchanged: no new version
    code, _, err = run_main(capsys, "content", "load", "--db", db)
    assert code == 2 and "--examples" in err
    code, out, _ = run_main(capsys, "content", "list", "--db", db, "--json")
    assert [t["name"] for t in json.loads(out)["templates"]] == [
        "back_in_stock",
        "picked_for_you",
        "price_drop",
    ]
    code, out, _ = run_main(capsys, "content", "lint", "back_in_stock", "--db", db)
    assert code == 0 and "no findings" in out
    with Shop.open(db) as shop:
        shop.identify(user_id="17850", traits={"firstName": "mcdonald"})
        shop.state_preferences("17850", {"size": "M"})
    item = {
        "item": {"title": "Shop tee", "price": 12.0, "currency": "GBP", "url": "https://shop.example/tee"}
    }
    with Shop.open(db) as shop:
        [message] = shop.content.preview("back_in_stock", ["17850"], context=item)
    assert message.aborted is None and message.html is not None and "Hi McDonald," in message.html
    code, out, _ = run_main(capsys, "content", "preview", "back_in_stock", "--hostile", "--db", db, "--json")
    assert code == 0
    previews = json.loads(out)["previews"]
    assert len(previews) >= 20 and all(p["person"].startswith("hostile: ") for p in previews)
    code, out, _ = run_main(capsys, "content", "preview", "back_in_stock", "--person", "17850", "--db", db)
    assert code == 0 and "17850" in out
    code, _, err = run_main(capsys, "content", "preview", "back_in_stock", "--person", "nobody", "--db", db)
    assert code == 1 and "no person" in err
    code, _, err = run_main(capsys, "content", "preview", "nope", "--hostile", "--db", db)
    assert code == 1 and "no template named 'nope'" in err
    assert orjson.loads((EXAMPLES / "back_in_stock.json").read_bytes())["channel"] == "email"
