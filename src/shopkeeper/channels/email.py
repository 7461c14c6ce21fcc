"""Email by SMTP: the message, built with the headers mail providers ask for; a sender that keeps one
connection and says what each attempt came to; and a local SMTP server that files what it receives.

A send is four steps, MAIL, RCPT, the caller's `before_data`, then DATA, so that the caller can record the
attempt durably at the last moment before the server may have the message: a crash after that point
leaves a record that the message may have gone, never a message that went with no record of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import email.utils
import itertools
import os
import re
import smtplib
import ssl
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import charset as charsets
from email.header import Header
from email.headerregistry import Address
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path
from types import TracebackType
from typing import Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from shopkeeper.channels.delivery import Delivery, Outcome, safe_detail
from shopkeeper.settings import Settings

# compat32 with CRLF line ends and no refolding: every header is written as `build_email` folded it. (A
# refolded List-Unsubscribe becomes RFC 2047 encoded words, which mail clients do not decode in that
# header, so its links would stop working.)
MESSAGE_POLICY = email.policy.compat32.clone(linesep="\r\n", max_line_length=None)
_UTF8_QP = charsets.Charset("utf-8")
_UTF8_QP.body_encoding = charsets.QP  # quoted-printable bodies: every server relays them, 8BITMIME or not
LONGEST_LINK = 900  # a header line holds at most 998 characters (RFC 5322)
TIMED_OUT = "timeout: SMTP server did not answer"

_MESSAGE_ID = re.compile(r"<[^<>@\s]+@[^<>@\s]+>")
ENVELOPE_ACCEPTED = range(200, 300)  # MAIL and RCPT
DATA_ACCEPTED = range(200, 400)  # the reply to the message's end


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to send email. `mail_from` is the envelope sender, where bounces go."""

    host: str
    port: int = 25
    user: str = ""
    password: str = field(default="", repr=False)
    starttls: bool = False
    timeout: float = 10.0
    mail_from: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig | None:
        """The settings' SMTP server, or None when none is set (`smtp_host` empty): then no email goes."""
        if not settings.smtp_host:
            return None
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            user=settings.smtp_user,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
            timeout=settings.smtp_timeout,
            mail_from=settings.mail_from,
        )


def build_email(
    *,
    to: str,
    mail_from: str,
    subject: str,
    text: str,
    html: str | None,
    message_id: str,
    unsubscribe_url: str,
    one_click_url: str,
    shop_name: str = "",
) -> Message:
    """One email to one person: the text part, then the HTML one (multipart/alternative), or the text
    alone when `html` is None.

    `message_id` (`<...@...>`) is the caller's, and stays the same when the message is sent again. The
    unsubscribe links go in `List-Unsubscribe`, the one-click one first, with `List-Unsubscribe-Post` so
    that mail clients may unsubscribe with one POST (RFC 8058). Both parts are quoted-printable, which
    every server relays, 8BITMIME or not.

    Raises ValueError for a line break or control character in any header value (header injection), for
    an address that is not exactly one ASCII address (non-ASCII ones need SMTPUTF8, which is not
    supported), and for a malformed Message-ID or link.
    """
    for name, value in (
        ("to", to),
        ("mail_from", mail_from),
        ("subject", subject),
        ("shop_name", shop_name),
        ("message_id", message_id),
        ("unsubscribe_url", unsubscribe_url),
        ("one_click_url", one_click_url),
    ):
        _refuse_line_breaks(name, value)
    if not _MESSAGE_ID.fullmatch(message_id) or not message_id.isascii():
        raise ValueError("message_id must read <local@domain>, in ASCII")
    links = [_checked_link("one_click_url", one_click_url), _checked_link("unsubscribe_url", unsubscribe_url)]
    sender = _addr_spec("mail_from", mail_from)
    recipient = _addr_spec("to", to)
    # compat32's classes: the same message as EmailMessage's, built three times faster (its header
    # registry parses every header it is given), which one worker sending hundreds a second notices.
    # Each header is written as the wire will carry it, so nothing is refolded.
    message: Message
    if html is None:
        message = MIMEText(text, "plain", _UTF8_QP, policy=MESSAGE_POLICY)  # type: ignore[arg-type]
    else:
        message = MIMEMultipart("alternative", policy=MESSAGE_POLICY)
        message.attach(MIMEText(text, "plain", _UTF8_QP, policy=MESSAGE_POLICY))  # type: ignore[arg-type]
        message.attach(MIMEText(html, "html", _UTF8_QP, policy=MESSAGE_POLICY))  # type: ignore[arg-type]
    message["From"] = email.utils.formataddr((shop_name, sender), charset="utf-8") if shop_name else sender
    message["To"] = recipient
    message["Subject"] = _encoded("Subject", subject)
    message["Date"] = email.utils.format_datetime(datetime.now(UTC))
    message["Message-ID"] = message_id
    message["List-Unsubscribe"] = ",\r\n ".join(f"<{link}>" for link in links)  # a link a line
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return message


def _encoded(name: str, value: str) -> str:
    """A header value as written on the wire: as it is when it is short ASCII, else RFC 2047 encoded
    words, folded to fit the line after the header's name."""
    if value.isascii() and len(name) + 2 + len(value) <= 78:
        return value
    return Header(value, "utf-8", header_name=name).encode(linesep="\r\n")


def _refuse_line_breaks(name: str, value: str) -> None:
    """ValueError when `value` holds a line break or another control character (a tab is fine)."""
    for char in value:
        if char != "\t" and unicodedata.category(char) in ("Cc", "Zl", "Zp"):
            raise ValueError(f"{name} must not contain a line break or control character")


def _addr_spec(name: str, value: str) -> str:
    """`value`, checked to be one plain ASCII address (`local@domain`, no display name)."""
    if not value.isascii():
        raise ValueError(f"{name} must be an ASCII address (SMTPUTF8 is not supported)")
    try:
        address = Address(addr_spec=value)
    except ValueError as error:  # the email package's header defects are ValueErrors too
        raise ValueError(f"{name} must be one address, local@domain") from error
    if not address.username or not address.domain:
        raise ValueError(f"{name} must be one address, local@domain")
    return address.addr_spec


def _checked_link(name: str, url: str) -> str:
    """`url`, checked to fit between angle brackets on a header line of its own."""
    if not url.isascii() or any(char in url for char in " <>") or len(url) > LONGEST_LINK:
        raise ValueError(
            f"{name} must be an ASCII URL of at most {LONGEST_LINK} characters, without spaces or <>"
        )
    return url


class SmtpSender:
    """Sends email through one SMTP server, over one connection kept open from one send to the next.

    What an attempt comes to:
    - the server's final reply to the message is 2xx or 3xx: `sent`;
    - a 4xx reply at any step (421 closing, 450 mailbox busy, 451): `retry`;
    - a 5xx reply at any step (550 no such mailbox, 554 refused, 535 login refused): `failed`;
    - no answer within the timeout, a refused or dropped connection, any other network error: `retry`.

    After anything but `sent` the connection is dropped, so that the next send starts on a fresh one. A
    kept connection that the server closed while it sat idle is found out at MAIL, before anything about
    the message was said, and is then replaced once, so that it costs no retry.

    Not thread-safe: give each worker thread its own sender.
    """

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._connection: smtplib.SMTP | None = None

    def send(self, message: Message, *, before_data: Callable[[], None] | None = None) -> Delivery:
        """Sends `message` to its To and Cc addresses and says what came of it.

        `before_data` runs once the server has taken the sender and every recipient, right before the
        DATA command: the caller records the attempt there. It does not run when the server refused
        them. When it raises, the SMTP transaction is reset (or the connection dropped) and the error
        propagates, and nothing was sent.
        """
        recipients = _recipients(message)
        data = message.as_bytes(policy=MESSAGE_POLICY)
        try:
            refusal = self._open_envelope(recipients)
        except OSError as error:  # smtplib's errors are OSErrors too
            return self._dropped(_error_delivery(error))
        if refusal is not None:
            return self._dropped(refusal)
        if before_data is not None:
            self._call_before_data(before_data)
        try:
            code, reply = self._live().data(data)
        except OSError as error:
            return self._dropped(_error_delivery(error))
        delivery = _reply_delivery(code, reply, accepted=DATA_ACCEPTED)
        return delivery if delivery.outcome == "sent" else self._dropped(delivery)

    def close(self) -> None:
        """Says QUIT and closes the connection, if one is open. A later send opens a new one."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        with contextlib.suppress(OSError):  # QUIT is a courtesy; the socket is closed either way
            connection.quit()
        connection.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def _open_envelope(self, recipients: list[str]) -> Delivery | None:
        """MAIL and RCPT; None when the server took the sender and every recipient, else the refusal."""
        connection, (code, reply) = self._mail_from()
        if code not in ENVELOPE_ACCEPTED:
            return _reply_delivery(code, reply, accepted=ENVELOPE_ACCEPTED)
        for recipient in recipients:
            code, reply = connection.rcpt(recipient)
            if code not in ENVELOPE_ACCEPTED:
                return _reply_delivery(code, reply, accepted=ENVELOPE_ACCEPTED)
        return None

    def _mail_from(self) -> tuple[smtplib.SMTP, tuple[int, bytes]]:
        """MAIL FROM on the kept connection, or on a new one when there is none, or when the kept one
        turns out closed (dropped, or a 421 reply). Nothing about the message was said yet, so starting
        again is safe. A kept connection that times out is not tried again: the server is slow, not gone.
        """
        if self._connection is not None:
            try:
                reply = self._connection.mail(self.config.mail_from)
            except smtplib.SMTPServerDisconnected as error:
                if _timed_out(error):
                    raise
            else:
                if reply[0] != 421:
                    return self._connection, reply
            self._drop()
        connection = self._connect()
        return connection, connection.mail(self.config.mail_from)

    def _connect(self) -> smtplib.SMTP:
        """A new connection, greeted (EHLO), upgraded (STARTTLS) and logged in as configured."""
        config = self.config
        connection = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
        try:
            connection.ehlo_or_helo_if_needed()
            if config.starttls:
                connection.starttls(context=ssl.create_default_context())
                connection.ehlo_or_helo_if_needed()  # STARTTLS forgets the first EHLO
            if config.user:
                connection.login(config.user, config.password)
        except BaseException:
            connection.close()
            raise
        self._connection = connection
        return connection

    def _call_before_data(self, before_data: Callable[[], None]) -> None:
        """Runs the caller's callback; when it raises, ends the transaction (RSET) so that the connection
        can carry the next message, or drops the connection when that fails, and lets the error go on."""
        try:
            before_data()
        except BaseException:
            try:
                code, _ = self._live().rset()
            except OSError:
                code = 0
            if code != 250:
                self._drop()
            raise

    def _live(self) -> smtplib.SMTP:
        if self._connection is None:
            raise smtplib.SMTPServerDisconnected("the connection was dropped")
        return self._connection

    def _dropped(self, delivery: Delivery) -> Delivery:
        self._drop()
        return delivery

    def _drop(self) -> None:
        """Forgets the connection, closing its socket without a word to the server."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()


def _recipients(message: Message) -> list[str]:
    """The addresses of `message`'s To and Cc headers. ValueError when there are none."""
    headers = [str(value) for name in ("To", "Cc") for value in message.get_all(name, [])]
    recipients = [address for _, address in email.utils.getaddresses(headers) if address]
    if not recipients:
        raise ValueError("the message has no recipient (To or Cc)")
    return recipients


def _reply_delivery(code: int, reply: bytes | str, *, accepted: range) -> Delivery:
    """What an SMTP reply makes of an attempt: `accepted` codes sent, 5xx failed, and 4xx, or a reply
    smtplib could not read (code -1), retry. The detail is the code and the text, without addresses."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    outcome: Outcome = "sent" if code in accepted else "failed" if 500 <= code <= 599 else "retry"
    return Delivery(outcome, safe_detail(f"{code} {text}"))


def _error_delivery(error: OSError) -> Delivery:
    """What an error makes of an attempt: an SMTP error reply about the message counts as its code does;
    a refusal of the connection itself (greeting, HELO, login: the shop's SMTP set-up, not this message)
    and a timeout or any other network error are worth a retry, so that a wrong password fixed within
    the retries loses no message."""
    if isinstance(error, smtplib.SMTPConnectError | smtplib.SMTPHeloError | smtplib.SMTPAuthenticationError):
        return Delivery("retry", safe_detail(f"the SMTP server refused the connection: {error.smtp_code}"))
    if isinstance(error, smtplib.SMTPResponseException):
        return _reply_delivery(error.smtp_code, error.smtp_error, accepted=range(0))
    if _timed_out(error):
        return Delivery("retry", TIMED_OUT)
    return Delivery("retry", safe_detail(f"{type(error).__name__}: {error}"))


def _timed_out(error: BaseException) -> bool:
    """Whether `error` is a timeout, or smtplib's "Connection unexpectedly closed" raised for one."""
    return isinstance(error, TimeoutError) or isinstance(error.__context__, TimeoutError)


class FreePortController(Controller):
    """aiosmtpd's threaded Controller, which may be given port 0: it reads the port that the system
    picked before it first connects to its own server (the base class would connect to port 0)."""

    def _trigger_server(self) -> None:
        if self.port == 0 and isinstance(self.server, asyncio.Server):
            self.port = int(self.server.sockets[0].getsockname()[1])
        super()._trigger_server()  # type: ignore[no-untyped-call]


class MailFolderHandler:
    """An aiosmtpd handler that files each message it receives in `folder`, as it was received, one
    `.eml` file a message, named `<UTC time>-<counter>.eml` so that the names sort in arrival order.

    Each file is written under a hidden temporary name and then renamed, so that a reader never sees
    half a message. Nothing else is kept.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._counter = itertools.count(1)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        name = f"{stamp}-{next(self._counter):06d}.eml"
        temporary = self.folder / f".{name}.tmp"
        temporary.write_bytes(envelope.original_content or b"")
        os.replace(temporary, self.folder / name)
        return "250 OK"


class MailFolderSink:
    """A local SMTP server, for the demo and the tests, that files every message in `folder` (see
    MailFolderHandler). Port 0 binds a free port; `port` then says which, once started."""

    def __init__(self, folder: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.folder = folder
        self.host = host
        self.port = port
        self._controller: FreePortController | None = None

    def start(self) -> None:
        """Binds the port and serves, on a thread of its own, until `stop()`."""
        if self._controller is not None:
            raise RuntimeError("the mail folder sink is already running")
        self.folder.mkdir(parents=True, exist_ok=True)
        controller = FreePortController(
            MailFolderHandler(self.folder), hostname=self.host, port=self.port, server_hostname="localhost"
        )
        controller.start()
        self._controller = controller
        self.port = controller.port

    def stop(self) -> None:
        """Stops serving and frees the port. Nothing happens when the sink is not running."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
