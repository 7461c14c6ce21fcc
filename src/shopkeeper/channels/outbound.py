"""The worker's channels, set up from the settings: email (the moment's rendered message, over SMTP, with
its one-click unsubscribe) and webhooks (the moment as signed JSON)."""

from __future__ import annotations

from collections.abc import Callable
from email.message import Message
from typing import Any

from shopkeeper.channels.delivery import Delivery
from shopkeeper.channels.email import SmtpConfig, SmtpSender, build_email
from shopkeeper.channels.webhook import WebhookConfig, WebhookSender, new_webhook_secret
from shopkeeper.errors import InvalidInput
from shopkeeper.settings import Settings
from shopkeeper.store import Store
from shopkeeper.store.outbox import OutboxRow

WEBHOOK_SECRET = "webhook-signing"
# A person's two unsubscribe links, from their person id: (the preference centre, the one-click POST).
Links = Callable[[int], tuple[str, str]]


class EmailChannel:
    """A moment's message, built with its headers and sent over SMTP."""

    def __init__(self, config: SmtpConfig, links: Links, shop_name: str = "") -> None:
        self._config = config
        self._sender = SmtpSender(config)
        self._links = links
        self._shop_name = shop_name

    def send(self, row: OutboxRow, to: str, before_data: Callable[[], None]) -> Delivery:
        centre, one_click = self._links(row.person_id)
        try:
            message = self._message(row, to, centre, one_click)
        except ValueError as exc:  # an address that cannot be written to (not one ASCII local@domain)
            return Delivery("failed", f"cannot write to this address: {exc}"[:200])
        return self._sender.send(message, before_data=before_data)

    def _message(self, row: OutboxRow, to: str, centre: str, one_click: str) -> Message:
        return build_email(
            to=to,
            mail_from=self._config.mail_from,
            subject=row.subject or "",
            text=row.body_text or "",
            html=row.body_html,
            message_id=row.message_id or f"<outbox-{row.id}@shopkeeper>",
            unsubscribe_url=centre,
            one_click_url=one_click,
            shop_name=self._shop_name,
        )

    def close(self) -> None:
        self._sender.close()


class WebhookChannel:
    """A moment as signed JSON (Standard Webhooks); its `webhook-id` is the moment's Message-ID."""

    def __init__(self, config: WebhookConfig) -> None:
        self._sender = WebhookSender(config)

    def send(self, row: OutboxRow, payload: dict[str, Any], before_send: Callable[[], None]) -> Delivery:
        return self._sender.send(
            (row.message_id or f"outbox-{row.id}").strip("<>"), payload, before_send=before_send
        )

    def close(self) -> None:
        self._sender.close()


def webhook_secret(store: Store, settings: Settings) -> str:
    """`SHOPKEEPER_WEBHOOK_SECRET`, else the one the shop made once and keeps in its database."""
    if settings.webhook_secret:
        return settings.webhook_secret
    return store.keys.secret(WEBHOOK_SECRET, lambda: new_webhook_secret().encode()).decode()


def channels_from(
    settings: Settings, store: Store, links: Links
) -> tuple[EmailChannel | None, WebhookChannel | None]:
    """The channels this shop has set up: email when an SMTP host is set, webhooks when a URL is."""
    smtp = SmtpConfig.from_settings(settings)
    if smtp is not None and not smtp.mail_from:
        raise InvalidInput("SHOPKEEPER_MAIL_FROM is needed with SHOPKEEPER_SMTP_HOST", field="mail_from")
    email = None if smtp is None else EmailChannel(smtp, links, settings.shop_name)
    webhook = None
    if settings.webhook_url:
        webhook = WebhookChannel(
            WebhookConfig(settings.webhook_url, webhook_secret(store, settings), settings.smtp_timeout)
        )
    return email, webhook
