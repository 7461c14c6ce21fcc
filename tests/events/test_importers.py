"""Order import: both formats, returns, skips, bad rows with line numbers, guests, idempotency, atomicity."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select

from shopkeeper.catalog.items import ItemIn, VariantIn
from shopkeeper.errors import InvalidInput
from shopkeeper.events import append as orders_module
from shopkeeper.events.importers import (
    ColumnMapping,
    ImportReport,
    import_orders,
    load_mapping,
    mapping_from,
    open_file,
    open_sample,
    read_orders,
)
from shopkeeper.events.spec import parse_message
from shopkeeper.store import Store
from shopkeeper.store.schema import events, identities, item_history, items, people, profile_dirty

NOW = datetime(2026, 5, 3, 12, 0, tzinfo=UTC)
HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"
# Line numbers count the header as line 1.
RETAIL = [
    HEADER,
    "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom",  # 2
    "536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,17850.0,United Kingdom",  # 3
    "536365,POST,POSTAGE,1,2010-12-01 08:26:00,18.0,17850.0,United Kingdom",  # 4: not a product
    "536366,22633,HAND WARMER UNION JACK,6,2010-12-01 08:28:00,1.85,17850.0,United Kingdom",  # 5
    "536367,84879,ASSORTED COLOUR BIRD ORNAMENT,32,2010-12-01 08:34:00,1.69,13047.0,France",  # 6
    "536589,21777,,-10,2010-12-01 16:50:00,0.0,,United Kingdom",  # 7: stock adjustment
    "536590,21777,found,5,2010-12-01 16:51:00,0.0,,United Kingdom",  # 8: price 0
    # 9: a cancellation
    "C536379,85123A,WHITE HANGING HEART T-LIGHT HOLDER,-2,2010-12-01 09:41:00,2.55,17850.0,United Kingdom",
    "C536379,D,Discount,-1,2010-12-01 09:41:00,27.5,17850.0,United Kingdom",  # 10: not a product
    # 11: a guest
    "536400,85123A,WHITE HANGING HEART T-LIGHT HOLDERS,2,2010-12-02 10:00:00,2.95,,United Kingdom",
    "536400,71053,WHITE METAL LANTERN,x,2010-12-02 10:00:00,3.39,,United Kingdom",  # 12: bad quantity
    "536401,71053,WHITE METAL LANTERN,1,2010-12-02 10:00:00,abc,13047.0,France",  # 13: bad price
    "536402,71053,WHITE METAL LANTERN,1,yesterday,3.39,13047.0,France",  # 14: bad date
    "536403,,WHITE METAL LANTERN,1,2010-12-02 10:00:00,3.39,13047.0,France",  # 15: no item id
    "536404,71053,WHITE METAL LANTERN,1,2010-12-02 10:00:00",  # 16: too few columns
    "536366,71053,WHITE METAL LANTERN,2,2010-12-01 08:29:00,3.75,17850.0,United Kingdom",  # 17: 536366 again
]


def write(path: Path, lines: list[str], *, compress: bool = False) -> Path:
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def run(store: Store, path: Path, **options: Any) -> ImportReport:
    with open_file(path) as source:
        return import_orders(store, source, now=NOW, **options)


def stored_events(store: Store) -> dict[str, dict[str, Any]]:
    with store.engine.connect() as conn:
        return {
            r.message_id: {**orjson.loads(r.payload), "_person_id": r.person_id}
            for r in conn.execute(select(events.c.message_id, events.c.payload, events.c.person_id))
        }


def snapshot(store: Store) -> dict[str, Any]:
    """Everything an import may touch, to compare before and after a second import."""
    with store.engine.connect() as conn:
        return {
            name: sorted(tuple(str(v) for v in row) for row in conn.execute(select(table)))
            for name, table in (
                ("events", events),
                ("people", people),
                ("identities", identities),
                ("items", items),
                ("item_history", item_history),
                ("profile_dirty", profile_dirty),
            )
        }


def test_online_retail_invoices_become_orders_and_returns(store: Store, tmp_path: Path) -> None:
    report = run(store, write(tmp_path / "retail.csv", RETAIL))
    found = stored_events(store)
    assert sorted(found) == [
        "online-retail:536365",
        "online-retail:536366",
        "online-retail:536367",
        "online-retail:536400",
        "online-retail:C536379:refund",
    ]
    for payload in found.values():  # each a valid Segment message, as the tracking API would take it
        message = parse_message({k: v for k, v in payload.items() if k != "_person_id"})
        assert message.type == "track" and message.messageId == payload["messageId"]
    order = found["online-retail:536365"]
    assert order["type"] == "track"
    assert order["event"] == "Order Completed"
    assert order["userId"] == "17850"
    assert "anonymousId" not in order
    assert order["timestamp"] == order["originalTimestamp"] == "2010-12-01T08:26:00Z"
    assert order["receivedAt"] == "2026-05-03T12:00:00Z"
    assert order["messageId"] == "online-retail:536365"
    assert order["context"]["location"] == {"country": "United Kingdom"}
    properties = order["properties"]
    # Postage is neither a product nor revenue.
    assert properties["revenue"] == round(6 * 2.55 + 6 * 3.39, 2)
    assert properties["currency"] == "GBP"
    assert properties["order_id"] == "536365"
    assert [(p["product_id"], p["quantity"], p["price"]) for p in properties["products"]] == [
        ("85123A", 6, 2.55),
        ("71053", 6, 3.39),
    ]
    assert properties["products"][0]["name"] == "WHITE HANGING HEART T-LIGHT HOLDER"
    assert properties["products"][0]["category"] == store.catalog.get("85123A").category != ""

    # A C invoice is a return: positive quantities, the value given back as `total`, no revenue.
    refund = found["online-retail:C536379:refund"]
    assert refund["event"] == "Order Refunded"
    assert refund["properties"]["order_id"] == "C536379"
    assert refund["properties"]["total"] == 5.1
    assert "revenue" not in refund["properties"]
    assert [(p["product_id"], p["quantity"]) for p in refund["properties"]["products"]] == [("85123A", 2)]

    # Lines of one invoice that are apart in the file still make one order, timed by its first line.
    split = found["online-retail:536366"]["properties"]
    assert [p["product_id"] for p in split["products"]] == ["22633", "71053"]
    assert found["online-retail:536366"]["timestamp"] == "2010-12-01T08:28:00Z"

    # A guest order: anonymousId guest:<invoice>, its own person.
    guest = found["online-retail:536400"]
    assert guest["anonymousId"] == "guest:536400"
    assert "userId" not in guest
    assert store.person_summary("guest:536400").person_id == guest["_person_id"]

    assert report.rows_read == len(RETAIL) - 1
    assert report.orders == 4 and report.returns == 1
    assert report.rows_imported == 7
    assert report.skipped == {
        "not_a_product": 2,
        "stock_adjustment": 1,
        "zero_price": 1,
        "bad_quantity": 1,
        "bad_price": 1,
        "bad_timestamp": 1,
        "missing_item_id": 1,
        "bad_row": 1,
    }
    assert report.rows_read == report.rows_imported + report.rows_already_imported + sum(
        report.skipped.values()
    )
    assert [(b.line, b.reason) for b in report.bad_rows] == [
        (12, "bad_quantity"),
        (13, "bad_price"),
        (14, "bad_timestamp"),
        (15, "missing_item_id"),
        (16, "bad_row"),
    ]
    assert "'x'" in report.bad_rows[0].detail
    assert report.people_created == 3  # 17850, 13047 and one guest
    assert report.items_created == 4


def test_items_get_their_most_common_title_latest_price_first_sale_and_a_category(
    store: Store, tmp_path: Path
) -> None:
    run(store, write(tmp_path / "retail.csv", RETAIL))
    holder = store.catalog.get("85123A")
    # Twice "...HOLDER", once "...HOLDERS": the most common wins.
    assert holder.title == "WHITE HANGING HEART T-LIGHT HOLDER"
    assert holder.price == 2.95  # the latest line's price (a guest's, on 2010-12-02)
    assert holder.currency == "GBP"
    assert holder.created_at == datetime(2010, 12, 1, 8, 26, tzinfo=UTC)
    assert holder.attributes == {"colour": "white"}
    lantern = store.catalog.get("71053")
    assert lantern.price == 3.75
    assert store.catalog.count() == 4  # no POST, no D, no item from skipped rows only


def test_people_are_marked_for_a_profile_rebuild(store: Store, tmp_path: Path) -> None:
    run(store, write(tmp_path / "retail.csv", RETAIL))
    with store.engine.connect() as conn:
        dirty = set(conn.scalars(select(profile_dirty.c.person_id)))
    assert {store.person_summary(ref).person_id for ref in ("17850", "13047", "guest:536400")} <= dirty


def test_importing_twice_stores_nothing_and_changes_nothing(database_url: str, tmp_path: Path) -> None:
    store = Store.open(database_url)
    try:
        path = write(tmp_path / "retail.csv.gz", RETAIL, compress=True)
        first = run(store, path)
        before = snapshot(store)
        second = run(store, path)
        assert snapshot(store) == before
    finally:
        store.close()
    assert first.orders + first.returns == 5
    assert (second.orders, second.returns, second.rows_imported, second.people_created) == (0, 0, 0, 0)
    assert second.orders_already_imported == 5
    assert second.rows_already_imported == first.rows_imported
    assert (second.items_created, second.items_updated, second.items_unchanged) == (0, 0, 4)
    assert second.skipped == first.skipped


def test_gzip_and_plain_files_read_the_same(tmp_path: Path) -> None:
    with open_file(write(tmp_path / "a.csv", RETAIL)) as source:
        plain = read_orders(source)[1]
    # gzip is told by the file's first bytes, not its name.
    with open_file(write(tmp_path / "b.csv", RETAIL, compress=True)) as source:
        packed = read_orders(source)[1]
    assert plain.orders == packed.orders
    assert plain.bad_rows == packed.bad_rows


def test_an_interrupted_import_leaves_whole_orders_and_a_rerun_finishes(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "retail.csv", RETAIL)
    real = orders_module.mark_dirty
    calls = 0

    def fail_on_the_third_chunk(conn: Any, person_ids: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("the power went out")
        real(conn, person_ids)

    monkeypatch.setattr(orders_module, "mark_dirty", fail_on_the_third_chunk)
    with pytest.raises(RuntimeError):
        run(store, path, chunk_orders=2)
    stored = stored_events(store)
    # Two chunks of two orders each were committed; the third (the guest's order) left nothing behind.
    assert len(stored) == 4
    assert "online-retail:536400" not in stored
    with store.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(identities)) == 2
        assert conn.scalar(select(func.count()).select_from(people)) == 2
    monkeypatch.setattr(orders_module, "mark_dirty", real)
    report = run(store, path, chunk_orders=2)
    assert (report.orders + report.returns, report.orders_already_imported) == (1, 4)
    assert len(stored_events(store)) == 5


def test_an_item_the_shop_described_is_only_filled_in(store: Store, tmp_path: Path) -> None:
    store.catalog.upsert(
        [
            ItemIn(
                item_id="85123A",
                title="Heart tea-light holder",
                category="Home > Candles",
                attributes={"colour": "ivory"},
                variants=[VariantIn(variant_id="one", stock=3)],
            ),
            ItemIn(item_id="71053", title="Metal lantern"),
        ],
        now=NOW,
    )
    report = run(store, write(tmp_path / "retail.csv", RETAIL))
    holder = store.catalog.get("85123A")
    assert (holder.title, holder.category, holder.attributes["colour"]) == (
        "Heart tea-light holder",
        "Home > Candles",
        "ivory",
    )
    assert holder.price == 2.95 and holder.currency == "GBP"  # it had none
    assert [(v.variant_id, v.stock) for v in holder.variants] == [("one", 3)]
    assert holder.created_at == datetime(2010, 12, 1, 8, 26, tzinfo=UTC)  # sold before it was listed
    lantern = store.catalog.get("71053")
    assert lantern.title == "Metal lantern" and lantern.category != ""
    assert (report.items_created, report.items_updated) == (2, 2)
    # The order events carry the catalog's own title and category.
    products = stored_events(store)["online-retail:536365"]["properties"]["products"]
    assert (products[0]["name"], products[0]["category"]) == ("Heart tea-light holder", "Home > Candles")


GENERIC = [
    "Order,Customer,SKU,Product,Qty,Unit price,Date,Cur,Land",
    "A-1,ann@example.com,SKU-1,Grey wool scarf,2,20.00,03/05/2026 10:00,EUR,DE",  # 2
    "A-1,ann@example.com,SKU-2,Blue cotton shirt,1,35.5,03/05/2026 10:00,EUR,DE",  # 3
    "A-1,ann@example.com,SKU-1,Grey wool scarf,-1,20.00,04/05/2026 09:00,EUR,DE",  # 4: a return
    "A-2,,SKU-2,Blue cotton shirt,1,35.5,03/05/2026 11:00,,FR",  # 5: guest, default currency
    "A-3,bob,SKU-1,Grey wool scarf,1.5,20,03/05/2026 11:00,EUR,DE",  # 6: bad quantity
    "A-3,bob,SKU-1,Grey wool scarf,1,-3,03/05/2026 11:00,EUR,DE",  # 7: bad price
    "A-3,bob,SKU-1,Grey wool scarf,1,20,2026-05-03,EUR,DE",  # 8: not the date format
    "A-3,bob,SKU-1,Grey wool scarf,1,20,03/05/2026 11:00,EURO,DE",  # 9: bad currency
    ",bob,SKU-1,Grey wool scarf,1,20,03/05/2026 11:00,EUR,DE",  # 10: no order id
    "A-1,carl,SKU-1,Grey wool scarf,1,20,03/05/2026 10:00,EUR,DE",  # 11: another customer
    "A-4,bob,SKU-3,,3,0,03/05/2026 12:00,EUR,DE",  # 12: free, untitled: allowed
]
MAPPING = {
    "order_id": "Order",
    "customer_id": "Customer",
    "item_id": "SKU",
    "title": "Product",
    "quantity": "Qty",
    "price": "Unit price",
    "timestamp": "Date",
    "currency": "Cur",
    "country": "Land",
    "default_currency": "GBP",
    "timestamp_format": "%d/%m/%Y %H:%M",
    "source": "myshop",
}


def test_generic_lines_with_a_mapping(database_url: str, tmp_path: Path) -> None:
    store = Store.open(database_url)
    try:
        path = write(tmp_path / "lines.csv", GENERIC)
        report = run(store, path, mapping=mapping_from(MAPPING))
        found = stored_events(store)
        again = run(store, path, mapping=mapping_from(MAPPING))
        assert len(stored_events(store)) == len(found)
        scarf = store.catalog.get("SKU-1")
        untitled = store.catalog.get("SKU-3")
    finally:
        store.close()
    assert report.format == "generic"
    assert sorted(found) == ["myshop:A-1", "myshop:A-1:refund", "myshop:A-2", "myshop:A-4"]
    order = found["myshop:A-1"]
    assert order["userId"] == "ann@example.com"
    assert order["timestamp"] == "2026-05-03T10:00:00Z"
    assert order["properties"]["revenue"] == 75.5
    assert order["properties"]["currency"] == "EUR"
    assert order["context"]["location"] == {"country": "DE"}
    # A negative quantity is a return of that many, in its own event.
    refund = found["myshop:A-1:refund"]
    assert refund["event"] == "Order Refunded"
    assert refund["properties"]["total"] == 20.0
    assert refund["properties"]["products"][0]["quantity"] == 1
    assert refund["timestamp"] == "2026-05-04T09:00:00Z"
    assert refund["_person_id"] == order["_person_id"]
    guest = found["myshop:A-2"]
    assert guest["anonymousId"] == "guest:A-2"
    assert guest["properties"]["currency"] == "GBP"
    assert found["myshop:A-4"]["properties"]["revenue"] == 0.0
    assert [(b.line, b.reason) for b in report.bad_rows] == [
        (6, "bad_quantity"),
        (7, "bad_price"),
        (8, "bad_timestamp"),
        (9, "bad_currency"),
        (10, "missing_order_id"),
        (11, "conflicting_order"),
    ]
    assert scarf.title == "Grey wool scarf" and scarf.currency == "EUR"
    assert scarf.attributes == {"colour": "grey"}
    assert untitled.title == "SKU-3" and untitled.price == 0.0
    assert (again.orders, again.returns, again.orders_already_imported) == (0, 0, 4)


def test_generic_columns_default_to_the_field_names(store: Store, tmp_path: Path) -> None:
    path = write(
        tmp_path / "lines.csv",
        ["order_id,item_id,quantity,price,timestamp", "1,A,2,1.5,2026-05-03T10:00:00+02:00"],
    )
    report = run(store, path)  # not Online Retail's header: generic
    assert report.format == "generic"
    [event] = stored_events(store).values()
    assert event["messageId"] == "generic:1"
    assert event["anonymousId"] == "guest:1"  # no customer column: every order is a guest's
    assert event["timestamp"] == "2026-05-03T08:00:00Z"
    assert "currency" not in event["properties"]


def test_a_toml_mapping_and_flags_over_it(tmp_path: Path) -> None:
    toml = tmp_path / "orders.toml"
    toml.write_text('order_id = "Order"\nitem_id = "SKU"\ndefault_currency = "EUR"\nsource = "a"\n')
    loaded = load_mapping(toml)
    assert (loaded.order_id, loaded.item_id, loaded.default_currency, loaded.prefix) == (
        "Order",
        "SKU",
        "EUR",
        "a",
    )
    merged = loaded.overridden_by(ColumnMapping(item_id="Sku", source="b"))
    assert (merged.order_id, merged.item_id, merged.prefix) == ("Order", "Sku", "b")


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('order = "Order"\n', "unknown key 'order'"),
        ("order_id = 3\n", "order_id must be a non-empty string"),
        ('default_currency = "euro"\n', "not a 3-letter code"),
        ('source = "my shop"\n', "source 'my shop'"),
        ("order_id = \n", "not a valid TOML file"),
    ],
)
def test_a_bad_mapping_file_is_one_clear_error(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "orders.toml"
    path.write_text(toml)
    with pytest.raises(InvalidInput, match=message):
        load_mapping(path)


def test_missing_columns_are_named(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path / "lines.csv", ["order,item_id,quantity,price,timestamp", "1,A,2,1.5,2026-05-03"])
    with pytest.raises(InvalidInput, match=r"no column for order_id \(column 'order_id'; --order-id COL\)"):
        run(store, path)
    with pytest.raises(InvalidInput, match=r"customer_id \(column 'Customer'"):
        run(store, path, mapping=ColumnMapping(order_id="order", customer_id="Customer"))
    assert stored_events(store) == {}


def test_the_online_retail_format_checks_its_header(store: Store, tmp_path: Path) -> None:
    path = write(
        tmp_path / "lines.csv", ["order_id,item_id,quantity,price,timestamp", "1,A,2,1.5,2026-05-03"]
    )
    with pytest.raises(InvalidInput, match="not the Online Retail format"):
        run(store, path, format="online-retail")


def test_unreadable_files_are_one_clear_error(store: Store, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot read"):
        open_file(tmp_path / "missing.csv")
    with pytest.raises(InvalidInput, match="empty"):
        run(store, write(tmp_path / "empty.csv", []))
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes(("\n".join([HEADER, RETAIL[1].replace("WHITE", "WHÏTE")]) + "\n").encode("latin-1"))
    with pytest.raises(InvalidInput, match="not UTF-8"):
        run(store, latin1)
    assert stored_events(store) == {}


def test_a_file_with_no_orders_imports_nothing(store: Store, tmp_path: Path) -> None:
    report = run(store, write(tmp_path / "header.csv", [HEADER]))
    assert (report.rows_read, report.orders, report.items_created) == (0, 0, 0)


def test_csv_errors_are_bad_rows_and_reading_goes_on(store: Store, tmp_path: Path) -> None:
    huge = "536365,85123A," + "X" * 200_000 + ",1,2010-12-01 08:26:00,1,,UK"  # over csv's field limit
    nul = RETAIL[2].replace("71053", "7\x0053")  # a NUL in an item id
    report = run(store, write(tmp_path / "odd.csv", [HEADER, RETAIL[1], huge, nul, RETAIL[4]]))
    assert [(b.line, b.reason) for b in report.bad_rows] == [(3, "bad_row"), (4, "bad_id")]
    assert "field larger than field limit" in report.bad_rows[0].detail
    assert report.rows_imported == 2


def test_over_long_ids_are_bad_rows(store: Store, tmp_path: Path) -> None:
    long_order = "9" * 250  # fits alone, not in "online-retail:<id>:refund"
    report = run(store, write(tmp_path / "long.csv", [HEADER, RETAIL[1].replace("536365", long_order, 1)]))
    assert [(b.line, b.reason) for b in report.bad_rows] == [(2, "bad_id")]
    assert stored_events(store) == {}


def test_the_bundled_sample(store: Store) -> None:
    with open_sample() as source:
        report = import_orders(store, source, now=NOW)
    assert report.format == "online-retail"
    assert report.rows_read == 48_110
    assert report.bad_rows == []
    ann = stored_events(store)
    mine = [e for e in ann.values() if e.get("userId") == "17850"]
    completed = [e for e in mine if e["event"] == "Order Completed"]
    assert len(completed) == 34
    assert len(mine) - len(completed) == 1
    assert round(sum(e["properties"]["revenue"] for e in completed), 2) == 5391.21
    assert not any("anonymousId" in e for e in ann.values())  # the sample has no guest rows
