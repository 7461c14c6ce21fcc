"""Catalog files: CSV, JSON and JSON lines read into items, every bad line reported with its number."""

from __future__ import annotations

import csv as csv_module
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shopkeeper.catalog.files import CatalogFile, SkippedLine, catalog_format, parse_catalog, read_catalog
from shopkeeper.catalog.items import ItemIn
from shopkeeper.errors import InvalidInput


def csv(text: str) -> CatalogFile:
    return parse_catalog(text.encode("utf-8"), "csv")


def by_id(catalog: CatalogFile) -> dict[str, ItemIn]:
    return {item.item_id: item for item in catalog.items}


def lines(catalog: CatalogFile) -> dict[int, str]:
    return {s.line: s.reason for s in catalog.skipped}


# ---- CSV -----------------------------------------------------------------------------------------

SHOP_CSV = """\
item_id,title,category,price,currency,created_at,brand,variant_id,size,colour,stock,variant_price
85123A,White hanging heart T-light holder,Home > Candles,2.55,GBP,2010-12-01T08:26:00,Acme,,,,,
22423,"Regency cakestand, 3 tier",Kitchen,12.75,GBP,,,,,,,
TEE,Café T-shirt ☕,Clothes > T-shirts,20,EUR,,,TEE-S,S,grey,0,
TEE,,,,,,,TEE-M,M,grey,5,22.5
MUG,Mug,,3,GBP,,,,,blue,,
"""


def test_csv_items_variants_and_attributes() -> None:
    catalog = csv(SHOP_CSV)
    assert (catalog.format, catalog.lines_read, catalog.skipped) == ("csv", 5, [])
    items = by_id(catalog)
    assert list(items) == ["85123A", "22423", "TEE", "MUG"]
    heart = items["85123A"]
    assert (heart.title, heart.category, heart.price, heart.currency) == (
        "White hanging heart T-light holder",
        "Home > Candles",
        2.55,
        "GBP",
    )
    assert heart.attributes == {"brand": "Acme"}
    assert heart.created_at == datetime(2010, 12, 1, 8, 26, tzinfo=UTC)
    assert heart.variants == []
    assert items["22423"].title == "Regency cakestand, 3 tier"
    tee = items["TEE"]
    assert (tee.title, tee.price, tee.currency, tee.attributes) == ("Café T-shirt ☕", 20.0, "EUR", {})
    assert [(v.variant_id, v.attributes, v.price, v.stock) for v in tee.variants] == [
        ("TEE-S", {"size": "S", "colour": "grey"}, None, 0),
        ("TEE-M", {"size": "M", "colour": "grey"}, 22.5, 5),
    ]
    # Without a variant_id, a colour describes the item itself.
    assert items["MUG"].attributes == {"colour": "blue"}
    assert items["MUG"].variants == []


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_a_csv_with_another_delimiter_reads_alike(delimiter: str) -> None:
    """The one CSV reader sniffs the delimiter (a European spreadsheet's semicolons, a tab export)."""
    written = io.StringIO()
    writer = csv_module.writer(written, delimiter=delimiter, lineterminator="\n")
    writer.writerows(csv_module.reader(io.StringIO(SHOP_CSV)))
    again = csv(written.getvalue())
    assert again.items == csv(SHOP_CSV).items
    assert (again.lines_read, again.skipped) == (5, [])


def test_csv_with_only_the_required_columns_a_bom_crlf_and_blank_lines() -> None:
    data = "\ufeffITEM_ID , Title\r\n1,Lunch bag\r\n\r\n2,  Jam jar  \r\n".encode()
    catalog = parse_catalog(data, "csv")
    assert [(i.item_id, i.title, i.category, i.price) for i in catalog.items] == [
        ("1", "Lunch bag", "", None),
        ("2", "Jam jar", "", None),
    ]
    assert (catalog.lines_read, catalog.skipped) == (2, [])


def test_bad_csv_rows_are_skipped_with_their_line_numbers_and_the_rest_is_read() -> None:
    text = """\
item_id,title,price,currency,variant_id,stock
ok-1,Fine,1.5,GBP,,
neg,Negative,-1,GBP,,
abc,Not a price,abc,GBP,,
low,Lower-case currency,1,gbp,,
,No id,1,GBP,,
short,Too few cells,1
long,Too many,1,GBP,,,,
orphan,Stock without a variant,1,GBP,,4
"multi
line",Fine too,2,GBP,,
after,After the multi-line cell,-2,GBP,,
ok-2,Fine,3,GBP,v1,7
"""
    catalog = csv(text)
    assert [i.item_id for i in catalog.items] == ["ok-1", "multi\nline", "ok-2"]
    assert catalog.lines_read == 11
    found = lines(catalog)
    assert sorted(found) == [3, 4, 5, 6, 7, 8, 9, 12]
    assert found[3] == "price: must be at least 0"
    assert found[4].startswith("price: Input should be a valid number")
    assert found[5].startswith("currency: String should match pattern")
    assert found[6] == "item_id is empty"
    assert found[7] == "the row has 3 cells, the header 6"
    assert found[8] == "the row has 8 cells, the header 6"
    assert found[9].startswith("stock needs a variant_id")
    # The quoted cell spans lines 10-11, so the next row starts on line 12.
    assert found[12].startswith("price:")


def test_one_bad_variant_row_skips_the_whole_item() -> None:
    text = """\
item_id,title,price,variant_id,size,stock
TEE,T-shirt,20,TEE-S,S,3
TEE,T-shirt,20,TEE-M,M,-1
TEE,T-shirt,20,TEE-L,L,2
MUG,Mug,3,MUG-1,,1
"""
    catalog = csv(text)
    # Storing TEE without M would delete M's stock: the item is skipped whole.
    assert [i.item_id for i in catalog.items] == ["MUG"]
    assert catalog.skipped == [
        SkippedLine(2, "item 'TEE' is skipped because line 3 is bad"),
        SkippedLine(3, "stock: must be at least 0"),
        SkippedLine(4, "item 'TEE' is skipped because line 3 is bad"),
    ]


def test_rows_of_one_item_must_agree() -> None:
    text = """\
item_id,title,price,brand,variant_id,variant_price
TEE,T-shirt,20,Acme,TEE-S,
TEE,T-shirt,21,,TEE-M,
HAT,Hat,5,Acme,HAT-1,
HAT,,,Other,HAT-2,
SOCK,Sock,2,,S-1,1
SOCK,Sock,2,,S-1,2
BAG,Bag,,,BAG-1,-4
"""
    found = lines(csv(text))
    assert found[3] == "price is '21' here but '20' on line 2"
    assert found[5] == "attribute brand is 'Other' here but 'Acme' on line 4"
    assert found[7] == "variant_id 'S-1' appears again (first on line 6)"
    # A variant's own price is the variant_price column.
    assert found[8] == "variant_price: must be at least 0"
    assert found[2] == "item 'TEE' is skipped because line 3 is bad"
    assert found[6] == "item 'SOCK' is skipped because line 7 is bad"
    assert found[4] == "item 'HAT' is skipped because line 5 is bad"
    assert sorted(found) == list(range(2, 9))


def test_an_item_level_error_is_blamed_on_the_row_that_set_the_field() -> None:
    text = "item_id,title,currency,variant_id\nTEE,T-shirt,,S\nTEE,,gbp,M\nMUG,Mug,GBP,\n"
    catalog = csv(text)
    assert [i.item_id for i in catalog.items] == ["MUG"]
    assert catalog.skipped[0] == SkippedLine(2, "item 'TEE' is skipped because line 3 is bad")
    assert catalog.skipped[1].line == 3
    assert catalog.skipped[1].reason.startswith("currency: String should match pattern")
    untitled = csv("item_id,title,variant_id\nTEE,,S\n")
    assert untitled.skipped == [SkippedLine(2, "title: Field required")]


def test_rows_a_database_could_not_store_are_skipped() -> None:
    text = (
        "item_id,title,category,variant_id,stock\n"
        "A,Nul,Bags\x00,,\n"
        "B,Huge,,B-1,2147483648\n"
        "C,Fine,,C-1,2147483647\n"
    )
    catalog = csv(text)
    assert [i.item_id for i in catalog.items] == ["C"]
    assert lines(catalog) == {
        2: "the row contains a NUL character",
        3: "stock: must be at most 2147483647",
    }


def test_a_row_with_bytes_that_are_not_utf8_is_skipped() -> None:
    data = b"item_id,title\n1,Caf\xe9 latin-1\n2,Caf\xc3\xa9 utf-8\n"
    catalog = parse_catalog(data, "csv")
    assert [(i.item_id, i.title) for i in catalog.items] == [("2", "Café utf-8")]
    assert catalog.skipped == [SkippedLine(2, "not valid UTF-8")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the CSV file is empty; it needs a header row"),
        ("item_id,price\n1,2\n", "missing: title"),
        ("item_id,title,Title\n", "the column 'title' appears twice in the header"),
        ("item_id,title,\n", "column 3 of the header has no name"),
    ],
)
def test_a_csv_without_the_needed_header_is_refused_whole(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        csv(text)


# ---- JSON and JSON lines -------------------------------------------------------------------------

JSON_ARRAY = """[
  {"item_id": "a", "title": "Lunch bag", "price": 1.65, "currency": "GBP",
   "category": ["Bags", "Lunch bags"]},
  {"item_id": "b", "title": "Bad", "price": -1},
  {"item_id": "c", "title": "Not a number", "price": NaN},
  {"item_id": "a", "title": "Again"},
  "a string",
  {"item_id": "d", "title": "Mug 陶器", "variants": [
     {"variant_id": "d-1", "stock": 4, "attributes": {"colour": "blue"}}]},
  {"item_id": "e", "title": "Dup variants", "variants": [{"variant_id": "x"}, {"variant_id": "x"}]}
]
"""


def test_json_array_with_line_numbers_for_bad_entries() -> None:
    catalog = parse_catalog(JSON_ARRAY.encode(), "json")
    assert catalog.lines_read == 7
    assert [(i.item_id, i.title) for i in catalog.items] == [("a", "Lunch bag"), ("d", "Mug 陶器")]
    assert by_id(catalog)["a"].category == "Bags > Lunch bags"
    assert by_id(catalog)["d"].variants[0].stock == 4
    assert catalog.skipped == [
        SkippedLine(4, "price: must be at least 0"),
        SkippedLine(5, "price: NaN is not a number JSON allows"),
        SkippedLine(6, "item_id 'a' appears again (first on line 2)"),
        SkippedLine(7, "an item must be a JSON object"),
        SkippedLine(10, "variants: variant_id 'x' appears twice"),
    ]


def test_json_object_with_items() -> None:
    data = b'{"items": [{"item_id": "a", "title": "A"}, {"item_id": "b", "title": "B", "stock": 1}]}'
    catalog = parse_catalog(data, "json")
    assert [i.item_id for i in catalog.items] == ["a"]
    assert catalog.skipped == [SkippedLine(1, "stock: Extra inputs are not permitted")]
    assert parse_catalog(b"[]", "json").items == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the file is empty"),
        (b'[\n  {"item_id": "a",\n   "title": }\n]', "line 3 column 13: not valid JSON"),
        (b'[{"item_id": "a", "title": "A"}\n {"item_id": "b"}]', "line 2: expected ',' or ']'"),
        (b'[{"item_id": "a", "title": "A"}] trailing', "unexpected text after the JSON"),
        (b'{"products": []}', "unexpected key 'products'"),
        (b'{"items": [], "next": 2}', 'may hold only "items"'),
        (b'"items"', "a list of items"),
        (b'[{"item_id": "a", "title": "caf\xe9"}]', "line 1 is not valid UTF-8"),
    ],
)
def test_json_that_cannot_be_read_is_refused_whole(data: bytes, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_catalog(data, "json")


def test_jsonl_skips_bad_lines_and_reads_the_rest() -> None:
    data = b"\n".join(
        [
            '\ufeff{"item_id": "a", "title": "Ünïcödé"}'.encode(),
            b'{"item_id": "b", "title": ',
            b"",
            b'{"item_id": "c", "title": "caf\xe9"}',
            b'{"item_id": "d", "title": "D", "currency": "gbp"}',
            b"[1, 2]",
            b'{"item_id": "e", "title": "E", "price": Infinity}',
            b'{"item_id": "f", "title": "F", "price": "12.5"}',
            b"",
        ]
    )
    catalog = parse_catalog(data, "jsonl")
    assert [(i.item_id, i.title, i.price) for i in catalog.items] == [
        ("a", "Ünïcödé", None),
        ("f", "F", 12.5),
    ]
    assert catalog.lines_read == 7
    found = lines(catalog)
    assert sorted(found) == [2, 4, 5, 6, 7]
    assert found[2].startswith("not valid JSON: Expecting value")
    assert found[4] == "not valid UTF-8"
    assert found[5].startswith("currency: String should match pattern")
    assert found[6] == "an item must be a JSON object"
    assert found[7] == "price: Infinity is not a number JSON allows"


# ---- files ---------------------------------------------------------------------------------------


def test_the_format_comes_from_the_extension(tmp_path: Path) -> None:
    assert catalog_format(Path("x.CSV")) == "csv"
    assert catalog_format(Path("x.ndjson")) == "jsonl"
    for name, content in (
        ("c.csv", "item_id,title\n1,One\n"),
        ("c.json", '[{"item_id": "1", "title": "One"}]'),
    ):
        path = tmp_path / name
        path.write_text(content, encoding="utf-8")
        assert [i.title for i in read_catalog(path).items] == ["One"]
    with pytest.raises(InvalidInput, match=r"unknown catalog format '\.xlsx'"):
        read_catalog(tmp_path / "catalog.xlsx")
    with pytest.raises(InvalidInput, match="cannot read"):
        read_catalog(tmp_path / "missing.csv")
