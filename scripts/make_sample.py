"""Cut the bundled sample from the UCI Online Retail file: every row of customers 17000 to 17999.

The rule: keep a row when its CustomerID is in [17000, 18000); drop every other row (other customers and
guest rows without a CustomerID). The header and the kept rows are copied byte for byte, in their
original order, and gzipped with a fixed mtime, so running this again gives the same file. Customer
17850, the data set's first customer, is in the range with all of its rows.

    .venv/bin/python scripts/make_sample.py [SOURCE] [--out PATH]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared" / "data" / "online-retail" / "online_retail.csv.gz"
OUT = ROOT / "src" / "shopkeeper" / "data" / "online_retail_sample.csv.gz"
FIRST_CUSTOMER, END_CUSTOMER = 17000, 18000  # [first, end)
MUST_HAVE = "17850"


def keep(customer_id: str) -> bool:
    """The rule: a CustomerID (written `17850.0`, or empty for a guest) in [17000, 18000)."""
    return bool(customer_id) and FIRST_CUSTOMER <= float(customer_id) < END_CUSTOMER


def cut(source: Path) -> tuple[bytes, int, set[str]]:
    """The sample's uncompressed bytes, its row count and its customers."""
    with gzip.open(source, "rb") as f:
        lines = f.read().decode("utf-8").splitlines(keepends=True)
    header, body = lines[0], lines[1:]
    if header.rstrip("\r\n").split(",")[6] != "CustomerID":
        raise SystemExit(f"{source}: not the Online Retail file (no CustomerID column)")
    kept: list[str] = []
    customers: set[str] = set()
    for number, line in enumerate(body, start=2):
        fields = next(csv.reader([line]))
        if len(fields) != 8:
            raise SystemExit(f"{source}:{number}: expected 8 fields, found {len(fields)}")
        if keep(fields[6]):
            kept.append(line)
            customers.add(fields[6].removesuffix(".0"))
    return (header + "".join(kept)).encode("utf-8"), len(kept), customers


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("source", nargs="?", type=Path, default=SOURCE)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    data, rows, customers = cut(args.source)
    if MUST_HAVE not in customers:
        raise SystemExit(f"customer {MUST_HAVE} is not in the sample; the rule or the source changed")
    packed = gzip.compress(data, compresslevel=9, mtime=0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(packed)
    print(
        f"wrote {args.out}: {rows:,} rows of {len(customers)} customers, {len(packed):,} bytes "
        f"(sha256 {hashlib.sha256(packed).hexdigest()}; uncompressed {hashlib.sha256(data).hexdigest()})"
    )


if __name__ == "__main__":
    main()
