"""WebhookSender against a real HTTP server on 127.0.0.1 that checks every signature with the
`standardwebhooks` library, as a receiver would, and answers what each test sets."""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest
import standardwebhooks

from shopkeeper.channels.delivery import Delivery
from shopkeeper.channels.webhook import WebhookConfig, WebhookSender, new_webhook_secret

SECRET = new_webhook_secret()
PAYLOAD: dict[str, Any] = {
    "type": "moment.back_in_stock",
    "person": {"id": "p-42", "name": "Zoë"},
    "items": [{"id": "sku-1", "price": 12.5}],
}


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool  # the signature checked out under the receiver's secret


@dataclass
class Script:
    """What the receiver answers, in order (200 once the list runs out), and what it saw."""

    statuses: list[int] = field(default_factory=list)
    reply: bytes = b"ok"
    delay: float = 0.0
    secret: str = SECRET
    url: str = ""  # where the receiver listens, once it does
    received: list[Received] = field(default_factory=list)
    events: list[str] = field(default_factory=list)


class _Receiver(BaseHTTPRequestHandler):
    server: _ScriptedServer

    def do_POST(self) -> None:
        script = self.server.script
        body = self.rfile.read(int(self.headers["content-length"]))
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            standardwebhooks.Webhook(script.secret).verify(body, headers)
            verified = True
        except standardwebhooks.WebhookVerificationError:
            verified = False
        script.events.append("request")
        script.received.append(Received(self.path, headers, body, verified))
        status = script.statuses.pop(0) if script.statuses else 200
        time.sleep(script.delay)
        try:
            self.send_response(status)
            if 300 <= status <= 399:
                self.send_header("location", "/moved")
            self.send_header("content-length", str(len(script.reply)))
            self.end_headers()
            self.wfile.write(script.reply)
        except (BrokenPipeError, ConnectionResetError):  # the sender gave up waiting
            pass

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ScriptedServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, script: Script) -> None:
        super().__init__(("127.0.0.1", 0), _Receiver)
        self.script = script


@pytest.fixture
def script() -> Iterator[Script]:
    script = Script()
    server = _ScriptedServer(script)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    script.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/shop"
    yield script
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _sender(url: str, timeout: float = 5.0, secret: str = SECRET) -> WebhookSender:
    return WebhookSender(WebhookConfig(url=url, secret=secret, timeout=timeout))


def test_a_signed_post_is_sent(script: Script) -> None:
    with _sender(script.url) as sender:
        delivery = sender.send("outbox-17", PAYLOAD)

    assert delivery == Delivery("sent", "HTTP 200 ok")
    [request] = script.received
    assert request.verified
    assert request.path == "/hooks/shop"
    assert request.headers["webhook-id"] == "outbox-17"
    assert request.headers["content-type"] == "application/json"
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
    assert orjson.loads(request.body) == PAYLOAD


def test_the_receivers_check_can_fail(script: Script) -> None:
    """The receiver's verification is real: a post signed with another secret does not pass it."""
    with _sender(script.url, secret=new_webhook_secret()) as sender:
        assert sender.send("outbox-17", PAYLOAD).outcome == "sent"

    assert not script.received[0].verified


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (503, "retry"),
        (500, "retry"),
        (429, "retry"),
        (408, "retry"),
        (400, "failed"),
        (404, "failed"),
        (410, "failed"),
        (302, "failed"),
    ],
)
def test_the_status_decides_the_outcome(script: Script, status: int, outcome: str) -> None:
    script.statuses = [status]
    with _sender(script.url) as sender:
        delivery = sender.send("outbox-17", PAYLOAD)

    assert delivery == Delivery(outcome, f"HTTP {status} ok")  # type: ignore[arg-type]
    assert [request.path for request in script.received] == ["/hooks/shop"]  # no redirect followed


def test_a_retry_carries_the_same_webhook_id(script: Script) -> None:
    script.statuses = [503, 429, 200]
    with _sender(script.url) as sender:
        outcomes = [sender.send("outbox-17", PAYLOAD).outcome for _ in range(3)]

    assert outcomes == ["retry", "retry", "sent"]
    assert [request.headers["webhook-id"] for request in script.received] == ["outbox-17"] * 3
    assert all(request.verified for request in script.received)


def test_an_endpoint_that_does_not_answer_in_time_is_a_retry(script: Script) -> None:
    script.delay = 1.5
    with _sender(script.url, timeout=0.3) as sender:
        started = time.monotonic()
        delivery = sender.send("outbox-17", PAYLOAD)
        took = time.monotonic() - started

    assert delivery.outcome == "retry"
    assert delivery.detail.startswith("ReadTimeout")
    assert took < 1.5


def test_a_port_with_nothing_listening_is_a_retry() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with _sender(f"http://127.0.0.1:{port}/hooks") as sender:
        assert sender.send("outbox-17", PAYLOAD) == Delivery("retry", "ConnectError")


def test_the_detail_is_one_short_line_of_the_reply(script: Script) -> None:
    script.statuses = [503]
    script.reply = b"busy\r\nInjected: yes\r\nwrite to ops@example.com " + b"x" * 1_000_000
    with _sender(script.url) as sender:
        delivery = sender.send("outbox-17", PAYLOAD)

    assert delivery.outcome == "retry"
    assert delivery.detail.startswith("HTTP 503 busy Injected: yes write to <address> xxx")
    assert "\r" not in delivery.detail and "\n" not in delivery.detail
    assert len(delivery.detail) == 200


def test_before_send_runs_once_right_before_the_request(script: Script) -> None:
    with _sender(script.url) as sender:
        sender.send("outbox-17", PAYLOAD, before_send=lambda: script.events.append("before_send"))

    assert script.events == ["before_send", "request"]


def test_when_before_send_raises_nothing_is_sent(script: Script) -> None:
    def refuse() -> None:
        raise RuntimeError("the database is locked")

    with _sender(script.url) as sender, pytest.raises(RuntimeError, match="locked"):
        sender.send("outbox-17", PAYLOAD, before_send=refuse)
    assert script.received == []


def test_a_new_secret_is_the_standard_format() -> None:
    secret = new_webhook_secret()

    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 24
    assert new_webhook_secret() != secret


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("ftp://example.com/hooks", SECRET),
        ("/hooks", SECRET),
        ("https://example.com/hooks", ""),
        ("https://example.com/hooks", "whsec_"),
    ],
)
def test_the_config_refuses_a_bad_url_or_secret(url: str, secret: str) -> None:
    with pytest.raises(ValueError):
        WebhookConfig(url=url, secret=secret)


@pytest.mark.parametrize("message_id", ["", "outbox-17\r\nx-injected: yes", "outbox-ü"])
def test_a_message_id_that_cannot_be_a_header_is_refused(message_id: str) -> None:
    with _sender("http://127.0.0.1:9/hooks") as sender, pytest.raises(ValueError, match="message_id"):
        sender.send(message_id, PAYLOAD)
