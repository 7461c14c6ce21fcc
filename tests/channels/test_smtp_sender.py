"""SmtpSender against a real SMTP server (aiosmtpd on 127.0.0.1) whose replies each test sets: what each
reply or fault makes of an attempt, when `before_data` runs, that one connection carries many sends, the
headers of `build_email`, and that MailFolderSink files what it receives."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from shopkeeper.channels.delivery import Delivery
from shopkeeper.channels.email import (
    TIMED_OUT,
    FreePortController,
    MailFolderSink,
    SmtpConfig,
    SmtpSender,
    build_email,
)
from shopkeeper.settings import Settings

RECIPIENT = "bob.smith@example.com"
SENDER = "shop@example.com"
SUBJECT = "Zurück auf Lager: Müsli — 🎉 just for you, Bob"
TEXT = "Hello Bob,\n\nthe muesli you wanted is back. Ünïcödé stays.\n.\nA line with a lone dot above.\n"
HTML = "<p>Hello Bob,</p><p>the muesli you wanted is back. Ünïcödé stays.</p>"
ONE_CLICK = "https://shop.example.com/p/one-click?token=abc"
UNSUBSCRIBE = "https://shop.example.com/p/preferences?token=abc"


@dataclass
class ScriptedServer:
    """An aiosmtpd handler whose replies the test sets, which records what it was told, in order."""

    rcpt_reply: str = "250 OK"
    data_reply: str = "250 OK"
    cut_at_data: bool = False  # close the connection instead of answering the message
    data_delay: float = 0.0
    events: list[str] = field(default_factory=list)
    received: list[Envelope] = field(default_factory=list)
    ehlos: int = 0  # one per connection: smtplib greets once per connection
    port: int = 0

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        self.ehlos += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        self.events.append("rcpt")
        if self.rcpt_reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        return self.rcpt_reply

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.events.append("data")
        if self.cut_at_data:
            assert server.transport is not None
            server.transport.close()
            return "250 OK"  # never heard: the connection is gone
        await asyncio.sleep(self.data_delay)
        if self.data_reply.startswith("250"):
            self.received.append(envelope)
        return self.data_reply


def _serve(handler: ScriptedServer, idle_timeout: float = 300.0) -> FreePortController:
    controller = FreePortController(
        handler, hostname="127.0.0.1", port=0, server_hostname="localhost", timeout=idle_timeout
    )
    controller.start()
    handler.port = controller.port
    return controller


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    handler = ScriptedServer()
    controller = _serve(handler)
    yield handler
    controller.stop()


def _sender(port: int, timeout: float = 5.0) -> SmtpSender:
    return SmtpSender(SmtpConfig(host="127.0.0.1", port=port, timeout=timeout, mail_from=SENDER))


@pytest.fixture
def sender(server: ScriptedServer) -> Iterator[SmtpSender]:
    with _sender(server.port) as smtp:
        yield smtp


def _message(n: int = 1, html: str | None = HTML) -> EmailMessage:
    return build_email(
        to=RECIPIENT,
        mail_from=SENDER,
        subject=SUBJECT,
        text=TEXT,
        html=html,
        message_id=f"<outbox-{n}.7f3a@shop.example.com>",
        unsubscribe_url=UNSUBSCRIBE,
        one_click_url=ONE_CLICK,
        shop_name="Müller & Söhne, Bäckerei",
    )


def _parsed(raw: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _lines(content: str) -> str:
    """A part's text with its line ends as Python writes them (the wire's are CRLF)."""
    return content.replace("\r\n", "\n")


def _free_port() -> int:
    """A port with nothing listening on it (bound, read, released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# ---- the message ---------------------------------------------------------------------------------


def test_a_message_is_delivered_once_with_every_header(server: ScriptedServer, sender: SmtpSender) -> None:
    delivery = sender.send(_message())

    assert delivery == Delivery("sent", "250 OK")
    [envelope] = server.received
    assert envelope.mail_from == SENDER
    assert envelope.rcpt_tos == [RECIPIENT]
    assert envelope.original_content is not None
    received = _parsed(envelope.original_content)
    assert received["Subject"] == SUBJECT
    assert received["To"] == RECIPIENT
    assert received["From"].addresses[0].display_name == "Müller & Söhne, Bäckerei"
    assert received["From"].addresses[0].addr_spec == SENDER
    assert received["Message-ID"] == "<outbox-1.7f3a@shop.example.com>"
    assert received["List-Unsubscribe"] == f"<{ONE_CLICK}>, <{UNSUBSCRIBE}>"
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert received["Date"].datetime.utcoffset().total_seconds() == 0
    assert "Auto-Submitted" not in received
    assert received.get_content_type() == "multipart/alternative"
    text_part, html_part = received.iter_parts()
    assert text_part.get_content_type() == "text/plain"
    assert _lines(text_part.get_content()) == TEXT
    assert html_part.get_content_type() == "text/html"
    assert _lines(html_part.get_content()).rstrip("\n") == HTML


def test_without_html_the_message_is_its_text_alone(server: ScriptedServer, sender: SmtpSender) -> None:
    assert sender.send(_message(html=None)).outcome == "sent"

    assert server.received[0].original_content is not None
    received = _parsed(server.received[0].original_content)
    assert received.get_content_type() == "text/plain"
    assert _lines(received.get_content()) == TEXT


def test_the_message_is_7bit_so_that_any_server_relays_it() -> None:
    raw = _message().as_bytes(policy=email.policy.SMTP)
    assert raw.isascii()
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))


def test_long_unsubscribe_links_are_written_as_they_are() -> None:
    """Regression: policy.SMTP refolded a long List-Unsubscribe into RFC 2047 encoded words
    (`=?utf-8?q?=3Chttps...`), which mail clients do not decode there, so the links would not work."""
    long_link = "https://shop.example.com/p/one-click?token=" + "A" * 400
    message = build_email(
        to=RECIPIENT,
        mail_from=SENDER,
        subject="Back in stock",
        text="hi",
        html=None,
        message_id="<1@shop.example.com>",
        unsubscribe_url=UNSUBSCRIBE,
        one_click_url=long_link,
    )
    raw = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
    header = raw.split(b"\r\n\r\n")[0]
    assert f"List-Unsubscribe: <{long_link}>,\r\n <{UNSUBSCRIBE}>".encode() in header
    assert _parsed(raw)["List-Unsubscribe"] == f"<{long_link}>, <{UNSUBSCRIBE}>"


@pytest.mark.parametrize(
    ("field_name", "value"),
    [
        ("subject", "Hello\r\nBcc: eve@example.com"),
        ("subject", "Hello\nBcc: eve@example.com"),
        ("subject", "Hello\rBcc: eve@example.com"),
        ("subject", "Hello\u2028Bcc: eve@example.com"),
        ("to", "bob@example.com\r\nBcc: eve@example.com"),
        ("to", "bob@example.com\nBcc: eve@example.com"),
        ("to", "bob@example.com, eve@example.com"),
        ("to", "Bob <bob@example.com>"),
        ("to", "bob"),
        ("to", "jörg@example.com"),
        ("shop_name", "Shop\r\nBcc: eve@example.com"),
        ("message_id", "no-angle-brackets@shop.example.com"),
        ("message_id", "<no-domain>"),
        ("one_click_url", "https://shop.example.com/a b"),
        ("one_click_url", "https://shop.example.com/>, <https://evil.example.com/"),
    ],
)
def test_build_email_refuses_header_injection_and_malformed_values(field_name: str, value: str) -> None:
    values = {
        "to": RECIPIENT,
        "mail_from": SENDER,
        "subject": "Hello",
        "text": "hi",
        "html": None,
        "message_id": "<1@shop.example.com>",
        "unsubscribe_url": UNSUBSCRIBE,
        "one_click_url": ONE_CLICK,
        "shop_name": "Shop",
    }
    values[field_name] = value
    with pytest.raises(ValueError, match=field_name):
        build_email(**values)  # type: ignore[arg-type]


# ---- before_data ---------------------------------------------------------------------------------


def test_before_data_runs_once_after_rcpt_and_before_the_server_has_the_message(
    server: ScriptedServer, sender: SmtpSender
) -> None:
    delivery = sender.send(_message(), before_data=lambda: server.events.append("before_data"))

    assert delivery.outcome == "sent"
    assert server.events == ["rcpt", "before_data", "data"]


def test_before_data_does_not_run_when_the_recipient_is_refused(
    server: ScriptedServer, sender: SmtpSender
) -> None:
    server.rcpt_reply = "450 4.2.1 mailbox busy"
    calls: list[str] = []

    assert sender.send(_message(), before_data=lambda: calls.append("called")).outcome == "retry"
    assert calls == []


def test_when_before_data_raises_nothing_is_sent_and_the_connection_carries_on(
    server: ScriptedServer, sender: SmtpSender
) -> None:
    def refuse() -> None:
        raise RuntimeError("the database is locked")

    with pytest.raises(RuntimeError, match="locked"):
        sender.send(_message(1), before_data=refuse)
    assert server.received == []

    assert sender.send(_message(2)).outcome == "sent"
    assert len(server.received) == 1
    assert server.ehlos == 1  # the transaction was reset (RSET), not the connection


# ---- what replies and faults make of an attempt --------------------------------------------------


@pytest.mark.parametrize(
    ("step", "reply", "outcome"),
    [
        ("rcpt", "450 4.2.1 mailbox busy, try later", "retry"),
        ("rcpt", "421 4.3.2 service shutting down", "retry"),
        ("rcpt", "550 5.1.1 mailbox unavailable", "failed"),
        ("data", "451 4.3.0 local error in processing", "retry"),
        ("data", "554 5.7.1 message refused as spam", "failed"),
    ],
)
def test_a_reply_decides_the_outcome(
    server: ScriptedServer, sender: SmtpSender, step: str, reply: str, outcome: str
) -> None:
    setattr(server, f"{step}_reply", reply)

    assert sender.send(_message()) == Delivery(outcome, reply)  # type: ignore[arg-type]
    assert server.received == []


def test_the_detail_leaves_out_the_address_and_is_short(server: ScriptedServer, sender: SmtpSender) -> None:
    server.rcpt_reply = f"550 5.1.1 <{RECIPIENT}>: Recipient address rejected: {RECIPIENT} " + "x" * 600

    delivery = sender.send(_message())

    assert delivery.outcome == "failed"
    assert delivery.detail.startswith("550 5.1.1 <address>: Recipient address rejected: <address> xxx")
    assert "bob" not in delivery.detail
    assert len(delivery.detail) == 200


def test_a_connection_cut_during_data_is_a_retry(server: ScriptedServer, sender: SmtpSender) -> None:
    server.cut_at_data = True

    delivery = sender.send(_message())

    assert delivery.outcome == "retry"
    assert delivery.detail.startswith("SMTPServerDisconnected")
    assert server.received == []


def test_a_port_with_nothing_listening_is_a_retry() -> None:
    with _sender(_free_port()) as sender:
        delivery = sender.send(_message())

    assert delivery.outcome == "retry"
    assert delivery.detail.startswith("ConnectionRefusedError")


def test_a_server_that_never_answers_is_a_retry_after_the_timeout() -> None:
    silent = socket.create_server(("127.0.0.1", 0))  # the system accepts; nobody ever speaks
    with silent, _sender(silent.getsockname()[1], timeout=0.5) as sender:
        started = time.monotonic()
        delivery = sender.send(_message())
        took = time.monotonic() - started

    assert delivery == Delivery("retry", TIMED_OUT)
    assert took < 5


def test_a_server_that_stops_answering_after_the_message_is_a_retry(server: ScriptedServer) -> None:
    server.data_delay = 2.0
    with _sender(server.port, timeout=0.5) as sender:
        assert sender.send(_message()) == Delivery("retry", TIMED_OUT)


# ---- the connection ------------------------------------------------------------------------------


def test_one_connection_carries_many_sends(server: ScriptedServer, sender: SmtpSender) -> None:
    calls: list[int] = []
    deliveries = [sender.send(_message(n), before_data=lambda n=n: calls.append(n)) for n in range(3)]

    assert [delivery.outcome for delivery in deliveries] == ["sent"] * 3
    assert calls == [0, 1, 2]  # once a send
    assert len(server.received) == 3
    assert server.ehlos == 1


def test_after_a_failure_the_next_send_starts_a_new_connection(
    server: ScriptedServer, sender: SmtpSender
) -> None:
    server.rcpt_reply = "550 5.1.1 mailbox unavailable"
    assert sender.send(_message(1)).outcome == "failed"

    server.rcpt_reply = "250 OK"
    assert sender.send(_message(2)).outcome == "sent"
    assert server.ehlos == 2
    assert len(server.received) == 1


def test_a_connection_the_server_closed_while_idle_is_replaced_without_a_retry() -> None:
    handler = ScriptedServer()
    controller = _serve(handler, idle_timeout=0.3)  # the server hangs up on a client idle this long
    try:
        with _sender(handler.port) as sender:
            assert sender.send(_message(1)).outcome == "sent"
            time.sleep(0.8)
            assert sender.send(_message(2)).outcome == "sent"
    finally:
        controller.stop()
    assert handler.ehlos == 2
    assert len(handler.received) == 2


# ---- config and the mail folder ------------------------------------------------------------------


def test_the_config_comes_from_the_settings_and_hides_the_password() -> None:
    assert SmtpConfig.from_settings(Settings(_env_file=None, smtp_host="")) is None

    config = SmtpConfig.from_settings(
        Settings(
            _env_file=None,
            smtp_host="mail.example.com",
            smtp_port=587,
            smtp_user="shop",
            smtp_password="hunter2-secret",
            smtp_starttls=True,
            smtp_timeout=3.0,
            mail_from=SENDER,
        )
    )
    assert config == SmtpConfig("mail.example.com", 587, "shop", "hunter2-secret", True, 3.0, SENDER)
    assert "hunter2" not in repr(config)


def test_the_mail_folder_sink_files_each_message_once(tmp_path: Path) -> None:
    folder = tmp_path / "outbox-mail"
    with MailFolderSink(folder) as sink, _sender(sink.port) as sender:
        assert sink.port != 0
        deliveries = [sender.send(_message(n)) for n in (1, 2, 3)]

    assert [delivery.outcome for delivery in deliveries] == ["sent"] * 3
    files = sorted(folder.iterdir())
    assert [path.suffix for path in files] == [".eml"] * 3  # and no temporary file left behind
    message_ids = [_parsed(path.read_bytes())["Message-ID"] for path in files]
    assert message_ids == [f"<outbox-{n}.7f3a@shop.example.com>" for n in (1, 2, 3)]
    assert _parsed(files[0].read_bytes())["Subject"] == SUBJECT


def test_a_stopped_sink_frees_its_port(tmp_path: Path) -> None:
    sink = MailFolderSink(tmp_path)
    sink.start()
    port = sink.port
    sink.stop()
    sink.stop()  # twice is fine

    with _sender(port) as sender:
        assert sender.send(_message()).outcome == "retry"


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # a test server on 127.0.0.1
def test_a_refused_login_is_retried_not_failed_and_the_right_password_then_sends() -> None:
    """The shop's SMTP set-up (a wrong password) is not the message's fault: a 535 retries, so that a
    password fixed within the retries loses no message."""
    from aiosmtpd.smtp import AuthResult, LoginPassword  # noqa: PLC0415

    def authenticator(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: object
    ) -> AuthResult:
        good = isinstance(data, LoginPassword) and data.password == b"right"
        return AuthResult(success=good, handled=False)

    handler = ScriptedServer()
    controller = FreePortController(
        handler,
        hostname="127.0.0.1",
        port=0,
        server_hostname="localhost",
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    try:

        def login(password: str) -> SmtpSender:
            return SmtpSender(
                SmtpConfig(
                    host="127.0.0.1", port=controller.port, user="shop", password=password, mail_from=SENDER
                )
            )

        with login("wrong") as smtp:
            refused = smtp.send(_message())
        assert refused.outcome == "retry" and "535" in refused.detail
        assert handler.received == []
        with login("right") as smtp:
            assert smtp.send(_message()).outcome == "sent"
        assert len(handler.received) == 1
    finally:
        controller.stop()
