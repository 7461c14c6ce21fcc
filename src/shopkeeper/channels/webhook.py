"""Webhooks: a JSON POST signed the Standard Webhooks way (standardwebhooks.com), and what came of it.

The receiver checks `webhook-signature`, an HMAC-SHA256 of `webhook-id.webhook-timestamp.body` under
the shared secret. The `webhook-id` is the message's own and the same on every retry, so that a receiver
can drop one it has already seen: a retry after a lost reply is then not acted on twice.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import httpx
import orjson
import standardwebhooks
from standardwebhooks.webhooks import EmptyWebhookSecretError

from shopkeeper.channels.delivery import Delivery, Outcome, safe_detail

SECRET_PREFIX = "whsec_"
REPLY_EXCERPT_BYTES = 1024  # read at most this much of a reply: its detail keeps 200 characters


@dataclass(frozen=True)
class WebhookConfig:
    """Where webhooks go and the secret they are signed with (`whsec_` and base64, see
    `new_webhook_secret`). ValueError for a URL that is not http(s) or a secret that is not base64."""

    url: str
    secret: str
    timeout: float = 10.0

    def __post_init__(self) -> None:
        try:
            url = httpx.URL(self.url)
        except httpx.InvalidURL as error:
            raise ValueError("the webhook URL is not a URL") from error
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("the webhook URL must be an http:// or https:// URL")
        _signer(self.secret)


def new_webhook_secret() -> str:
    """A fresh signing secret in the Standard Webhooks format: `whsec_` and 24 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


class WebhookSender:
    """POSTs signed JSON to one URL and says what came of it.

    What an attempt comes to: a 2xx reply, `sent`; 408, 429 or 5xx, `retry`; any other reply (another
    4xx, or a redirect, which is never followed), `failed`; no reply in time or a network error, `retry`.
    Only the first kilobyte of a reply is read.
    """

    def __init__(self, config: WebhookConfig, *, client: httpx.Client | None = None) -> None:
        self.config = config
        self._signer = _signer(config.secret)
        self._owns_client = client is None
        self._client = client if client is not None else httpx.Client(follow_redirects=False)

    def send(
        self, message_id: str, payload: dict[str, Any], *, before_send: Callable[[], None] | None = None
    ) -> Delivery:
        """POSTs `payload` as JSON, signed, with `message_id` as its `webhook-id`.

        `before_send` runs right before the request goes, once the body is made: the caller records the
        attempt there. When it raises, nothing is sent and the error propagates. ValueError for a
        `message_id` that cannot be a header; orjson's TypeError for a payload that is not JSON.
        """
        if not message_id or not message_id.isascii() or not message_id.isprintable():
            raise ValueError("message_id must be printable ASCII")
        body = orjson.dumps(payload)
        at = datetime.fromtimestamp(int(time.time()), UTC)  # whole seconds, as the header says
        headers = {
            "content-type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": self._signer.sign(message_id, at, body),
        }
        if before_send is not None:
            before_send()
        try:
            with self._client.stream(
                "POST",
                self.config.url,
                content=body,
                headers=headers,
                timeout=self.config.timeout,
                follow_redirects=False,
            ) as response:
                excerpt = _excerpt(response, deadline=time.monotonic() + self.config.timeout)
        except httpx.TimeoutException as error:
            return Delivery("retry", f"{type(error).__name__}: the webhook endpoint did not answer in time")
        except httpx.RequestError as error:
            return Delivery("retry", type(error).__name__)
        status = response.status_code
        return Delivery(_outcome(status), safe_detail(f"HTTP {status} {excerpt}"))

    def close(self) -> None:
        """Closes the HTTP client, when the sender made it."""
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


def _signer(secret: str) -> standardwebhooks.Webhook:
    """The library's signer for `secret`; ValueError when it is empty or not base64."""
    try:
        return standardwebhooks.Webhook(secret)
    except (EmptyWebhookSecretError, binascii.Error) as error:
        raise ValueError(
            "the webhook secret must be whsec_ followed by base64 (new_webhook_secret)"
        ) from error


def _outcome(status: int) -> Outcome:
    """2xx sent; 408 (timeout), 429 (too many requests) and 5xx retry; anything else failed."""
    if 200 <= status <= 299:
        return "sent"
    if status in (408, 429) or status >= 500:
        return "retry"
    return "failed"


def _excerpt(response: httpx.Response, *, deadline: float) -> str:
    """The start of the reply's body as text: at most REPLY_EXCERPT_BYTES, and no more once `deadline`
    (a monotonic time) has passed, so that an endpoint that drips its reply cannot hold the sender.
    A body that cannot be read (cut off, badly compressed) reads as empty: the status says enough."""
    received = bytearray()
    try:
        for chunk in response.iter_bytes():
            received += chunk
            if len(received) >= REPLY_EXCERPT_BYTES or time.monotonic() > deadline:
                break
    except httpx.HTTPError:
        return ""
    return received[:REPLY_EXCERPT_BYTES].decode("utf-8", "replace")
