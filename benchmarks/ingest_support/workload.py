"""The workload: a deterministic stream of realistic Segment messages, and the rows they become."""

from __future__ import annotations

import csv
import gzip
import random
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from shared_data import ONLINE_RETAIL

RETAIL_CSV = ONLINE_RETAIL
USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
TRACK_EVENTS = (
    ("Product Viewed", 55),
    ("Product Added", 18),
    ("Cart Viewed", 8),
    ("Products Searched", 7),
    ("Checkout Started", 6),
    ("Order Completed", 6),
)
PAGES = (("Home", "/"), ("Gifts", "/c/gifts"), ("Christmas", "/c/christmas"), ("Sale", "/sale"))


@dataclass(frozen=True, slots=True)
class Product:
    sku: str
    name: str
    price: float


@dataclass(slots=True)
class Visitor:
    """One browser (an anonymousId), which may belong to a known customer and may identify later."""

    anonymous_id: str
    user_id: str | None
    person: int
    identified: bool = False


@dataclass
class Workload:
    """Pre-serialized /v1/batch bodies and, for the anchor, the `events` rows they become."""

    bodies: list[bytes]
    rows: list[list[dict[str, Any]]]


def load_catalog(n_rows: int = 20_000) -> tuple[list[Product], list[str], list[str]]:
    """Products, customer ids and invoice numbers from the first rows of the UCI Online Retail log."""
    products: dict[str, Product] = {}
    customers: dict[str, None] = {}
    invoices: dict[str, None] = {}
    with gzip.open(RETAIL_CSV, "rt", newline="") as handle:
        for index, row in enumerate(csv.DictReader(handle)):
            if index >= n_rows:
                break
            price = float(row["UnitPrice"])
            if row["Description"] and price > 0 and row["StockCode"] not in products:
                products[row["StockCode"]] = Product(row["StockCode"], row["Description"].strip(), price)
            if row["CustomerID"]:
                customers[str(int(float(row["CustomerID"])))] = None
            invoices[row["InvoiceNo"]] = None
    return list(products.values()), list(customers), list(invoices)


class EventStream:
    """A deterministic, stationary stream of realistic Segment messages with identity stitching in it.

    About one message in twenty comes from a browser never seen before; the rest come from the visitors
    browsing right now, or from one coming back. Some new browsers belong to a customer of the shop (a new
    device, or cleared cookies) and some visitors sign up; these identify at some point, linking the
    anonymous person to the customer or merging it into the one already known from another device. After
    that their messages carry both ids, and half of their orders arrive server-side with the userId only.
    """

    def __init__(
        self,
        seed: int,
        *,
        new_visitor_share: float = 0.05,
        known_share: float = 0.30,
        signup_share: float = 0.05,
        online: int = 300,
    ) -> None:
        self._rng = random.Random(seed)
        self._products, self._customers, self._invoices = load_catalog()
        self._clock = datetime(2024, 11, 29, 9, 0, tzinfo=UTC)
        self._new_visitor_share = new_visitor_share
        self._known_share = known_share
        self._signup_share = signup_share
        self._visitors: list[Visitor] = []
        self._online: deque[Visitor] = deque(maxlen=online)
        self._signups = 0
        self._events = [name for name, _ in TRACK_EVENTS]
        self._weights = [weight for _, weight in TRACK_EVENTS]

    def _visitor(self) -> Visitor:
        """Who sends the next message: a new browser, one browsing now, or one coming back."""
        rng = self._rng
        roll = rng.random()
        if roll < self._new_visitor_share or not self._visitors:
            kind = rng.random()
            person = len(self._customers) + len(self._visitors) + 1
            user: str | None = None
            if kind < self._known_share:
                index = rng.randrange(len(self._customers))
                user, person = self._customers[index], index + 1
            elif kind < self._known_share + self._signup_share:
                self._signups += 1
                user = f"new-{self._signups}"
            visitor = Visitor(self._uuid(), user, person)
            self._visitors.append(visitor)
        elif roll < 0.90:
            return rng.choice(self._online)
        else:
            visitor = rng.choice(self._visitors)
        self._online.append(visitor)
        return visitor

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def batches(self, n_batches: int, batch_size: int, key_id: int) -> Workload:
        bodies: list[bytes] = []
        rows: list[list[dict[str, Any]]] = []
        for _ in range(n_batches):
            messages = [self._message() for _ in range(batch_size)]
            sent_at = self._clock + timedelta(milliseconds=self._rng.randint(5, 500))
            body = {"batch": [m for m, _, _ in messages], "sentAt": iso(sent_at)}
            bodies.append(orjson.dumps(body))
            rows.append([self._row(m, at, person, sent_at, key_id) for m, at, person in messages])
        return Workload(bodies, rows)

    def _message(self) -> tuple[dict[str, Any], datetime, int]:
        rng = self._rng
        self._clock += timedelta(milliseconds=rng.randint(1, 40))
        visitor = self._visitor()
        roll = rng.random()
        if visitor.user_id is not None and not visitor.identified and roll < 0.15:
            visitor.identified = True
            message = self._identify(visitor)
        elif roll < 0.40:
            name, path = rng.choice(PAGES)
            message = {
                "type": "page",
                "name": name,
                "properties": {"path": path, "url": f"https://shop.example{path}", "title": name},
            }
        else:
            message = self._track(rng.choices(self._events, self._weights)[0])
        server_side = message.get("event") == "Order Completed" and visitor.identified and rng.random() < 0.5
        if server_side:
            message["userId"] = visitor.user_id
            message["context"] = {"library": {"name": "analytics-python", "version": "2.3.3"}}
        else:
            message["anonymousId"] = visitor.anonymous_id
            if visitor.identified:
                message["userId"] = visitor.user_id
            message["context"] = {
                "library": {"name": "analytics.js", "version": "next-1.72.0"},
                "userAgent": USER_AGENT,
                "locale": "en-GB",
                "ip": f"81.2.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                "page": {"path": "/", "url": "https://shop.example/", "referrer": "https://www.google.com/"},
            }
        message["messageId"] = self._uuid()
        message["timestamp"] = iso(self._clock)
        return message, self._clock, visitor.person

    def _identify(self, visitor: Visitor) -> dict[str, Any]:
        return {
            "type": "identify",
            "traits": {
                "email": f"customer{visitor.user_id}@example.com",
                "firstName": "Customer",
                "lastName": visitor.user_id,
                "country": "United Kingdom",
                "newsletter": self._rng.random() < 0.4,
            },
        }

    def _track(self, event: str) -> dict[str, Any]:
        rng = self._rng
        product = rng.choice(self._products)
        item: dict[str, Any] = {
            "product_id": product.sku,
            "sku": product.sku,
            "name": product.name,
            "price": product.price,
            "currency": "GBP",
            "url": f"https://shop.example/p/{product.sku.lower()}",
        }
        if event == "Products Searched":
            properties: dict[str, Any] = {"query": product.name.split()[-1].lower()}
        elif event in ("Checkout Started", "Order Completed"):
            lines: list[dict[str, Any]] = [
                {**item, "quantity": rng.choice((1, 2, 6, 12))},
                *(
                    {"product_id": p.sku, "name": p.name, "price": p.price, "quantity": rng.choice((1, 2, 6))}
                    for p in rng.sample(self._products, rng.randint(0, 4))
                ),
            ]
            total = round(sum(line["price"] * line["quantity"] for line in lines), 2)
            properties = {"order_id": rng.choice(self._invoices), "total": total, "revenue": total}
            properties.update({"currency": "GBP", "products": lines})
        else:
            properties = {**item, "quantity": 1 if event == "Product Viewed" else rng.choice((1, 2, 6))}
        return {"type": "track", "event": event, "properties": properties}

    def _row(
        self, message: dict[str, Any], at: datetime, person: int, sent_at: datetime, key_id: int
    ) -> dict[str, Any]:
        """The `events` row the server stores for this message (what the anchor inserts)."""
        received_at = datetime.now(UTC)
        payload = {
            **message,
            "originalTimestamp": message["timestamp"],
            "sentAt": iso(sent_at),
            "receivedAt": iso(received_at),
        }
        return {
            "message_id": message["messageId"],
            "type": message["type"],
            "event": message.get("event") or message.get("name"),
            "user_id": message.get("userId"),
            "anonymous_id": message.get("anonymousId"),
            "person_id": person,
            "timestamp": at,
            "received_at": received_at,
            "key_id": key_id,
            "payload": orjson.dumps(payload).decode(),
        }


def iso(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
