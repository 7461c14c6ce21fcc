"""Settings, read once at the edge: env `SHOPKEEPER_*`, then `.env`, then these defaults."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///shopkeeper.db"


class Settings(BaseSettings):
    """Everything configurable. Pass it down; never read the environment anywhere else."""

    model_config = SettingsConfigDict(env_prefix="SHOPKEEPER_", env_file=".env", extra="ignore")

    database_url: str = Field(DEFAULT_DATABASE_URL, description="SQLAlchemy URL of the store.")
    sqlite_synchronous: Literal["FULL", "NORMAL"] = Field(
        "FULL",
        description="FULL: an acknowledged event survives power loss. NORMAL: it survives a crash of the "
        "process (kill -9) but the last transactions may be lost on power loss.",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    max_message_bytes: int = Field(32 * 1024, description="Largest single message (Segment: 32 KB).")
    max_batch_bytes: int = Field(500 * 1024, description="Largest /v1/batch body (Segment: 500 KB).")
    key_cache_seconds: float = Field(5.0, description="How long a revoked key may still be accepted.")
    log_level: str = "info"
    # Kept as text: decide reads it (`shopkeeper.decide.placements.placements_from`), since the settings
    # sit below every layer and import none of them.
    placements_json: str = Field(
        "",
        description='Extra or changed placements, as JSON: {"sidebar": {"n": 4, "max_per_category": 2, '
        '"repeats": false}}; `"audience": NAME` personalizes a placement for a saved audience only. Built '
        "in: web, email, staff, new_for_you.",
    )

    secret_key: str = Field(
        "",
        description="Signs preference-centre links. Empty: the shop generates one and keeps it in its "
        "database. Changing it invalidates every link already sent.",
    )
    consent_default: Literal["opt_out", "opt_in"] = Field(
        "opt_out",
        description="A person with no recorded choice for a purpose: opt_out counts as granted until they "
        "withdraw; opt_in (strict) counts as not granted until they agree. `necessary` is always granted.",
    )
    consent_purposes: str = Field(
        "",
        description="Extra consent purposes, comma-separated (e.g. `sms_marketing,partners`). Built in: "
        "necessary, analytics, personalization, email_marketing, staff_outreach.",
    )
    shop_name: str = Field(
        "",
        max_length=100,
        description="The shop's name, for templates that read `shop_name` (empty: their fallback).",
    )
    sensitive_categories: str = Field(
        "",
        description="Sensitive categories, comma-separated words, matched as whole words on trait keys and "
        "item categories: copy never mentions a guess in one, and lint refuses a field that reads one. "
        "Empty: the built-in list (health, pregnancy, children, religion, debt, ... see docs/content.md).",
    )
    retention_days: int = Field(
        1095, ge=1, description="`maintenance purge` deletes events and decisions older than this."
    )
    inferred_retention_days: int = Field(
        365, ge=1, description="`maintenance purge` deletes guesses whose evidence is older than this."
    )
    link_days: int = Field(30, ge=1, le=365, description="How long a preference-centre link stays valid.")
    public_url: str = Field(
        "", description="The shop's public base URL for links (default: http://HOST:PORT)."
    )
    holdout_share: float = Field(
        0.05,
        ge=0.0,
        le=1.0,
        description="The share of people in the universal holdout, who get the popularity baseline "
        "everywhere: the control of the headline personalization lift. 0 turns it off.",
    )
    warm_people: int = Field(
        10_000,
        ge=0,
        le=1_000_000,
        description="How many people (the most recently active first) each serving process prepares "
        "decisions for, in the background, when a model version is published, so that their first "
        "decision is as fast as later ones. It is also how many people a process keeps. 0 turns the "
        "preparing off.",
    )
    holdout_salt: str = Field(
        "shopkeeper-holdout",
        min_length=1,
        description="Salts the holdout's hash. Changing it draws a new holdout (and starts its report "
        "afresh).",
    )
    database_connect_timeout: float = Field(
        5.0, gt=0, description="PostgreSQL: seconds a server waits to connect before answering 503."
    )
    database_statement_timeout: float = Field(
        10.0,
        gt=0,
        description="PostgreSQL: seconds one statement of a request may take (`statement_timeout`); a "
        "database or network that stops answering is given up 2 s later. The request then gets a 503.",
    )
    database_pool_timeout: float = Field(
        10.0, gt=0, description="Seconds a request waits for a pooled database connection before a 503."
    )
    header_timeout: float = Field(
        10.0, ge=0, description="Seconds a connection has to send a request's headers; then 408 and closed."
    )
    body_timeout: float = Field(
        30.0, ge=0, description="Seconds a request has to send its whole body; then 408 and closed."
    )

    rate_limit_tracking: float = Field(
        1000.0,
        ge=0,
        description="Tracking calls (/v1/batch, /v1/track, ...) a second, per write key and per client "
        "address, in each worker (bursts of twice that pass). 0 turns the limit off.",
    )
    rate_limit_admin: float = Field(
        1000.0,
        ge=0,
        description="Calls to the admin routes (decide, people, items, experiments) a second, per key and "
        "per client address, in each worker. 0 turns the limit off.",
    )
    rate_limit_link: float = Field(
        10.0,
        ge=0,
        description="Calls with a person's link a second, per link and per client address, in each worker. "
        "0 turns the limit off.",
    )
    rate_limit_failed_auth: float = Field(
        30.0,
        ge=0,
        description="Failed authentications (401) a minute per client address, in each worker; past them "
        "the address gets 429 on every limited route until the minute refills. 0 turns the limit off.",
    )
    rate_limit_failed_links: float = Field(
        10.0,
        ge=0,
        description="Invalid or expired link tokens a minute per client address, in each worker; past them "
        "the address's link calls get 429. 0 turns the limit off.",
    )

    # ---- moments and outreach (docs/moments.md) ---------------------------------------------------
    smtp_host: str = Field(
        "", description="The SMTP server that email moments go through. Empty: no email is ever sent."
    )
    smtp_port: int = Field(25, ge=1, le=65535, description="The SMTP server's port.")
    smtp_user: str = Field("", description="SMTP login user (empty: no login).")
    smtp_password: str = Field("", description="SMTP login password.")
    smtp_starttls: bool = Field(False, description="Upgrade the SMTP connection with STARTTLS.")
    smtp_timeout: float = Field(10.0, gt=0, description="Seconds to wait on the SMTP server per step.")
    mail_from: str = Field("", description="The From address of email moments (e.g. shop@example.com).")
    webhook_url: str = Field("", description="Where webhook moments are POSTed (empty: no webhook channel).")
    webhook_secret: str = Field(
        "",
        description="The Standard Webhooks signing secret (`whsec_...`, base64). Empty: the shop makes one "
        "and keeps it in its database; `shopkeeper outbox webhook-secret` prints it.",
    )
    outbox_lease_seconds: float = Field(
        60.0,
        gt=0,
        description="How long a worker holds a message it is sending; a worker killed mid-send leaves it "
        "to be taken again after this.",
    )
    outbox_retry_seconds: float = Field(
        30.0, gt=0, description="The first retry's delay after a temporary failure; each next one doubles."
    )
    outbox_max_attempts: int = Field(
        8, ge=1, le=100, description="Attempts before a message that keeps failing temporarily is failed."
    )
    contact_budget: str = Field(
        '{"day": 1, "week": 2}',
        description='The contact budget per person across every channel, as JSON: {"day": 1, "week": 2, '
        '"channels": {"email": {"week": 1}}}. Transactional rules are exempt.',
    )
    quiet_hours: str = Field(
        "21:00-08:00",
        description="Hours in the person's time zone when no moment goes out (HH:MM-HH:MM; empty: none). "
        "A moment due then is held until they end.",
    )
    shop_timezone: str = Field(
        "UTC", description="The shop's IANA time zone, for people whose own zone is not known."
    )
    default_rules: bool = Field(
        True, description="The built-in moment rules (back in stock, price drop, milestone) are on."
    )
    serve_worker: bool = Field(
        True,
        description="`shopkeeper serve` runs the moment engine and the outbox worker in the background. "
        "Turn it off when `shopkeeper worker` processes do it (PostgreSQL).",
    )
    audience_warn_share: float = Field(
        0.10,
        ge=0.0,
        le=1.0,
        description="The reach guard warns when an audience holds less than this share of the active "
        "customers (an event in the last 90 days).",
    )
    personas_small_shop: int = Field(
        1000,
        ge=0,
        description="With fewer customers than this, personas are RFM groups (champions, loyal, new, at "
        "risk, lapsed) rather than clusters.",
    )

    dashboard_secure_cookie: bool = Field(
        True,
        description="The dashboard's session cookie is Secure (sent over HTTPS, and over plain HTTP only to "
        "localhost). Turn it off only to serve the dashboard over plain HTTP on the shop's own network.",
    )
    dashboard_session_hours: float = Field(
        12.0, gt=0, le=24 * 30, description="How long a dashboard login lasts."
    )
    dashboard_min_lift: float = Field(
        0.10,
        gt=0,
        le=10,
        description="The smallest relative lift in conversion the overview's headline is sized to detect "
        "(80% power, 5% two-sided): its pre-registered sample size. Until the holdout and the personalized "
        "arm reach it, the headline shows only the always-valid interval and how many more people it needs.",
    )

    dashboard_snapshot_seconds: float = Field(
        60.0,
        ge=0,
        le=24 * 3600,
        description="How long the dashboard keeps its slow shop-wide figures (the holdout report, audience "
        "sizes and reach) before it computes them again in the background; each page says when its figures "
        "were computed and can refresh them. 0 computes them at every view.",
    )

    def with_database(self, url: str | None) -> Settings:
        """A copy with the database URL replaced, when `url` is given (the CLI's `--db`)."""
        return self if url is None else self.model_copy(update={"database_url": url})
