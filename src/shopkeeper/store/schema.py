"""Every table, in one place. Migrations in `migrations/versions` must match this module."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import DateTime, TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only gives a rowid alias to INTEGER PRIMARY KEY, so big keys are INTEGER there.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every backend (SQLite stores it naive, PostgreSQL as timestamptz)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("UtcDateTime needs an aware datetime")
        utc: datetime = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        stored: datetime = value
        return stored.replace(tzinfo=UTC) if stored.tzinfo is None else stored.astimezone(UTC)


people = Table(
    "people",
    metadata,
    Column("person_id", BigId, primary_key=True, autoincrement=True),
    Column("created_at", UtcDateTime, nullable=False),
    # Set when this person was merged into another; lookups follow it.
    Column("merged_into", BigId, ForeignKey("people.person_id"), nullable=True),
    Index(None, "merged_into"),
)
# A random number drawn when the person is made and drawn again when they are merged: a person link
# names the person id and this generation (see privacy/tokens.py), so a link dies with a merge, an
# erasure, or a person id that SQLite gives again to someone new.
people.append_column(Column("generation", BigInteger, nullable=False, server_default="0"))

identities = Table(
    "identities",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # user_id | anonymous_id | email
    Column("value", String(255), nullable=False),
    Column("person_id", BigId, ForeignKey("people.person_id"), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("message_id", String(255), nullable=True),  # the message that first linked it
    UniqueConstraint("kind", "value"),
    Index(None, "person_id"),
)

merges = Table(
    "merges",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("from_person_id", BigId, nullable=False),
    Column("into_person_id", BigId, nullable=False),
    Column("outcome", String(16), nullable=False),  # merged | refused
    Column("reason", String(255), nullable=False),
    Column("message_id", String(255), nullable=True),
    Column("at", UtcDateTime, nullable=False),
    Index(None, "from_person_id"),
    Index(None, "into_person_id"),
)

events = Table(
    "events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("message_id", String(255), nullable=False),
    Column("type", String(16), nullable=False),
    Column("event", String(255), nullable=True),  # track: the event; page/screen: the name
    Column("user_id", String(255), nullable=True),
    Column("anonymous_id", String(255), nullable=True),
    Column("person_id", BigId, nullable=False),
    Column("timestamp", UtcDateTime, nullable=False),  # corrected for clock skew
    Column("received_at", UtcDateTime, nullable=False),
    Column("key_id", Integer, nullable=True),  # the write key that sent it
    Column("payload", Text, nullable=False),  # the whole message as JSON, as received plus our fields
    UniqueConstraint("message_id"),
    Index(None, "person_id", "timestamp"),
    Index(None, "person_id", "id"),  # a person's newest event in one probe (decide's stamp)
    Index(None, "timestamp"),
)
# An order's revenue (`store.event_log.order_revenue`), kept at append so that reports read no payload;
# None for every other event, and for rows written before it was kept (readers parse those).
events.append_column(Column("revenue", Float, nullable=True))

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # write | admin
    Column("key_hash", String(64), nullable=False),  # sha256 hex of the key
    Column("prefix", String(24), nullable=False),  # shown in listings to tell keys apart
    Column("name", String(255), nullable=False),
    Column("allowed_origins", Text, nullable=False),  # JSON list of browser origins; ["*"] for any
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime, nullable=True),
    UniqueConstraint("key_hash"),
)

# ---- catalog and stock -------------------------------------------------------------------------

items = Table(
    "items",
    metadata,
    Column("item_id", String(255), primary_key=True),
    Column("title", Text, nullable=False),
    Column("category", Text, nullable=False),  # a path, "Bags > Lunch bags"; "" when unknown
    Column("price", Float, nullable=True),
    Column("currency", String(3), nullable=True),
    Column("attributes", Text, nullable=False),  # JSON object: colour, size, brand, material, ...
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    # decide's catalog cache asks for the newest change on every call: an index makes that one lookup.
    Index(None, "updated_at"),
)

item_variants = Table(
    "item_variants",
    metadata,
    Column("item_id", String(255), ForeignKey("items.item_id", ondelete="CASCADE"), primary_key=True),
    Column("variant_id", String(255), primary_key=True),
    Column("attributes", Text, nullable=False),  # JSON object: {"size": "M", "colour": "grey"}
    Column("price", Float, nullable=True),  # None: the item's price
    Column("stock", Integer, nullable=True),  # None: not tracked
)

# Every change of price or stock, so that moments can trigger on "back in stock" and "price dropped".
item_history = Table(
    "item_history",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("item_id", String(255), nullable=False),
    Column("variant_id", String(255), nullable=False),  # "" for the item itself
    Column("field", String(16), nullable=False),  # price | stock
    Column("old_value", Float, nullable=True),
    Column("new_value", Float, nullable=True),
    Column("at", UtcDateTime, nullable=False),
    Index(None, "item_id", "at"),
    Index(None, "field", "at"),
)

# ---- profiles ----------------------------------------------------------------------------------

# One row per person, trait and source. Resolution (stated > observed > inferred, with decay) happens
# on read, in shopkeeper.profiles.traits.resolve, so the rows keep every source's view.
traits = Table(
    "traits",
    metadata,
    Column("person_id", BigId, primary_key=True),
    Column("key", String(64), primary_key=True),
    Column("source", String(16), primary_key=True),  # stated | observed | inferred
    Column("value", Text, nullable=False),  # JSON
    Column("updated_at", UtcDateTime, nullable=False),  # when the evidence happened
    Column("confirmed_at", UtcDateTime, nullable=True),  # stated: when the person last said so
    Column("confidence", Float, nullable=True),  # inferred: the model's confidence
    Column(
        "evidence", Text, nullable=False
    ),  # JSON: {"events": [...message ids], "count": n} or {"model": ..}
    Index(None, "key", "person_id"),  # one trait of everyone: an audience's trait leaf, reach's revenue
)

# People whose event-derived traits are out of date; ingestion adds, the profile builder removes.
profile_dirty = Table(
    "profile_dirty",
    metadata,
    Column("person_id", BigId, primary_key=True),
)

# ---- what people did to items, and what they were shown ----------------------------------------

# Derived from ecommerce events at append time (purchases, carts, views, returns), so that training and
# decide read compact rows instead of parsing payloads. Rebuildable from the event log.
interactions = Table(
    "interactions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("person_id", BigId, nullable=False),
    Column("item_id", String(255), nullable=False),
    Column("kind", Integer, nullable=False),  # 0 purchase, 1 cart, 2 view, 3 return
    Column("at", UtcDateTime, nullable=False),
    Column("quantity", Float, nullable=False),
    Column("message_id", String(255), nullable=False),  # the event: a reason's provenance
    Index(None, "person_id", "at"),
    Index(None, "person_id", "id"),  # a person's newest interaction in one probe (decide's stamp)
    Index(None, "at"),
)

# Every decision is an exposure: what was shown to whom, where, and why.
decisions = Table(
    "decisions",
    metadata,
    Column("decision_id", String(36), primary_key=True),
    Column("person_id", BigId, nullable=True),  # None: an unknown visitor
    Column("external_id", String(255), nullable=True),
    Column("placement", String(64), nullable=False),
    Column("model_version", Integer, nullable=True),
    Column("personalized", Integer, nullable=False),  # 1, or 0 for the non-personal baseline
    Column("items", Text, nullable=False),  # JSON: [{"item_id", "score", "reasons"}]
    Column("reasons", Text, nullable=False),  # JSON
    Column("at", UtcDateTime, nullable=False),
    Index(None, "person_id", "at"),
    Index(None, "at"),
)

# Trained models, published whole in one insert: serving never sees half of one.
model_versions = Table(
    "model_versions",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("summary", Text, nullable=False),  # JSON: counts, timings, parameters
    Column("artifact", LargeBinary, nullable=False),  # a zip of .npz and .json files; never a pickle
)

# ---- privacy and trust ---------------------------------------------------------------------------

# Consent per purpose, append-only: the newest row per (person, purpose) is the person's choice now.
consents = Table(
    "consents",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("person_id", BigId, nullable=False),
    Column("purpose", String(64), nullable=False),
    Column("granted", Integer, nullable=False),  # 1 granted, 0 withdrawn
    Column("at", UtcDateTime, nullable=False),
    Column("channel", String(32), nullable=False),  # api | preference_centre | event | cli
    Column("actor", String(64), nullable=False),  # which key, or "person" for their own link
    Column("message_id", String(255), nullable=True),  # the event that carried it, if one did
    Index(None, "person_id", "purpose", "id"),
)

# "That's not me": a guess the person rejected, never to be guessed again from the same evidence.
trait_rejections = Table(
    "trait_rejections",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("person_id", BigId, nullable=False),
    Column("key", String(64), nullable=False),
    Column("value", Text, nullable=True),  # JSON: the rejected value or list element; NULL: any value
    Column("evidence", Text, nullable=False),  # JSON: the message ids the rejected guess rested on
    Column("at", UtcDateTime, nullable=False),
    Index(None, "person_id"),
)

# Every access to a profile through the admin API, and every change a person makes through their link.
# It names people by internal id only, so that erasing a person leaves no external id or email here.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("action", String(32), nullable=False),
    Column("person_id", BigId, nullable=True),
    Column("detail", Text, nullable=False),  # JSON
    Index(None, "person_id", "at"),
    Index(None, "at"),
)

# Secrets the shop generates for itself (the key that signs preference-centre links), shared by workers.
shop_secrets = Table(
    "shop_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", LargeBinary, nullable=False),
)

# ---- experiments (migration 0005) --------------------------------------------------------------------
# Every decision records who it was for (`unit`, the person's stable id: see experiments.service), the
# universal cohort (holdout | personalized | no_consent), and, when one applies, the experiment, the arm
# and the probability with which that arm was chosen (its propensity).
decisions.append_column(Column("unit", String(255), nullable=True))
decisions.append_column(Column("cohort", String(16), nullable=True))
decisions.append_column(Column("experiment", String(64), nullable=True))
decisions.append_column(Column("arm", String(64), nullable=True))
decisions.append_column(Column("propensity", Float, nullable=True))
# The call's context (migration 0009): what the caller said of the moment (page, item viewed, ...), as
# JSON, or NULL when it said nothing.
decisions.append_column(Column("context", Text, nullable=True))
# Covering indexes for reports: each unit's first exposure per arm is read in index order.
Index(
    "ix_decisions_experiment_unit",
    decisions.c.experiment,
    decisions.c.unit,
    decisions.c.arm,
    decisions.c.at,
    decisions.c.person_id,
    decisions.c.propensity,
)
Index(
    "ix_decisions_cohort_unit",
    decisions.c.cohort,
    decisions.c.unit,
    decisions.c.at,
    decisions.c.person_id,
    decisions.c.propensity,
)

experiments = Table(
    "experiments",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("placement", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # ab | bandit | bandit_revenue
    Column("status", String(16), nullable=False),  # running | stopped
    Column("variants", Text, nullable=False),  # JSON: [{"name", "options"}], the first is the control
    Column("weights", Text, nullable=False),  # JSON: one traffic weight per variant
    Column("audience", Text, nullable=True),  # JSON rule on a resolved trait; NULL: everyone
    Column("outcome_events", Text, nullable=False),  # JSON: named events measured besides purchases
    Column("window_days", Integer, nullable=False),  # the attribution window after first exposure
    Column("floor", Float, nullable=False),  # bandits: the least chance each arm keeps
    Column("salt", String(128), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("stopped_at", UtcDateTime, nullable=True),
    Index(None, "placement", "status"),
)

# ---- content -----------------------------------------------------------------------------------

# Every save of a template is a new version; a message records the version it used.
templates = Table(
    "templates",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("channel", String(16), nullable=False),  # email | web | staff
    Column("body", Text, nullable=False),  # the template as JSON, as it was saved
    Column("saved_at", UtcDateTime, nullable=False),
    Column("saved_by", String(64), nullable=False),  # "admin key sk_a_xxxx", "cli", "files"
)

# Messages not produced: counted per template version and reason (a reason names a field and a rule,
# never a person or a value).
template_aborts = Table(
    "template_aborts",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("reason", String(255), primary_key=True),
    Column("count", Integer, nullable=False),
    Column("last_at", UtcDateTime, nullable=False),
)

# ---- moments and outreach (migration 0011) -------------------------------------------------------

# The promise ledger: a person's wish for an item, a variant of it or some of its attributes (size,
# colour). One row per person and wanted thing (`wanted`: the variant id, or the wanted attributes as
# sorted JSON); every source that asked for it is in `evidence`, and the strongest one is `source`.
wishes = Table(
    "wishes",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("person_id", BigId, nullable=False),
    Column("item_id", String(255), nullable=False),
    Column("variant_id", String(255), nullable=False),  # "" when the wish names attributes only
    Column("attributes", Text, nullable=False),  # JSON object: {"size": "34", "colour": "grey"}
    Column("wanted", String(255), nullable=False),
    Column("source", String(16), nullable=False),  # stated | staff | observed
    Column("evidence", Text, nullable=False),  # JSON list: [{"source", "at", "message_id"?, "note"?}]
    Column("note", Text, nullable=True),
    Column("status", String(16), nullable=False),  # open | notified | dropped | expired | fulfilled
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("notified_at", UtcDateTime, nullable=True),  # the last back-in-stock moment made for it
    UniqueConstraint("person_id", "item_id", "wanted"),
    Index(None, "item_id", "status"),
)

# Moment rules set over HTTP or from TOML files; the documented defaults apply unless a row overrides them.
moment_rules = Table(
    "moment_rules",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("body", Text, nullable=False),  # JSON, as validated
    Column("origin", String(16), nullable=False),  # http | file | cli
    Column("updated_at", UtcDateTime, nullable=False),
)

# Where the moment engine has read up to: the event log's and the catalog history's last id, and the
# day of each periodic scan.
moment_cursors = Table(
    "moment_cursors",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# The durable outbox: every moment, with its channel and what became of it. A suppressed moment is a row
# too, with its reason (the suppression ledger). `dedupe` makes a moment once, whatever crashes.
outbox = Table(
    "outbox",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("person_id", BigId, nullable=False),
    Column("rule", String(64), nullable=False),
    Column("trigger", String(32), nullable=False),
    Column("channel", String(16), nullable=False),  # email | webhook | staff | "" (none was allowed)
    Column(
        "status", String(16), nullable=False
    ),  # pending | held | sending | sent | failed | suppressed | cancelled
    Column("reason", Text, nullable=True),  # why it was suppressed, held or failed
    Column("dedupe", String(255), nullable=False),
    Column("item_id", String(255), nullable=True),
    Column("variant_id", String(255), nullable=True),
    Column("wish_id", BigInteger, nullable=True),
    Column("priority", Integer, nullable=False),
    Column("transactional", Integer, nullable=False),  # 1: exempt from the contact budget
    Column("context", Text, nullable=False),  # JSON: the moment (what happened, for a re-check)
    Column("template", String(64), nullable=True),
    Column("template_version", Integer, nullable=True),
    Column("subject", Text, nullable=True),
    Column("body_text", Text, nullable=True),
    Column("body_html", Text, nullable=True),
    Column("message_id", String(255), nullable=True),  # the RFC 5322 Message-ID, stable across retries
    Column("attempts", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("due_at", UtcDateTime, nullable=False),  # when it may go (a delay, quiet hours, a retry)
    Column("sent_at", UtcDateTime, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("dedupe"),
    Index(None, "status", "due_at"),
    Index(None, "person_id", "created_at"),
)

# Every delivery attempt, recorded before the message leaves (an SMTP DATA, a webhook POST).
outbox_attempts = Table(
    "outbox_attempts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("outbox_id", BigInteger, nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("outcome", String(16), nullable=False),  # started | sent | retry | failed
    Column("detail", Text, nullable=True),  # the server's reply, never the message
    Index(None, "outbox_id"),
)

# The staff inbox: a task per staff moment, with what the staff member needs to make the contact personal.
tasks = Table(
    "tasks",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("outbox_id", BigInteger, nullable=False),
    Column("person_id", BigId, nullable=False),
    Column("rule", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # open | claimed | snoozed | done | cancelled
    Column("assignee", String(255), nullable=True),
    Column("store", String(255), nullable=True),
    Column("due_at", UtcDateTime, nullable=False),
    Column("snoozed_until", UtcDateTime, nullable=True),
    Column("outcome", String(16), nullable=True),  # contacted | purchased | declined | unreachable
    Column("note", Text, nullable=True),
    Column("context", Text, nullable=False),  # JSON: who, why now, what to say, with provenance
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("outbox_id"),
    Index(None, "status", "due_at"),
    Index(None, "person_id"),
)

# Persona discovery: each run's figures, the personas (ids kept across runs, names a marketer may fix), and
# each person's persona now (also an inferred `persona` trait, which the person may reject).
persona_runs = Table(
    "persona_runs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False),
    Column("method", String(16), nullable=False),  # rfm | kmeans
    Column("seed", Integer, nullable=False),
    Column("summary", Text, nullable=False),  # JSON: k, coverage, silhouette, stability, churn, seconds
)

personas = Table(
    "personas",
    metadata,
    Column("persona_id", String(16), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("renamed", Integer, nullable=False),  # 1: a marketer named it, and the name stays across runs
    Column("run_id", BigInteger, nullable=False),  # the newest run that found it
    Column("active", Integer, nullable=False),  # 0: the newest run did not find it
    Column("body", Text, nullable=False),  # JSON: rule, agreement, description, size, shares, tops, members
    Column("updated_at", UtcDateTime, nullable=False),
)

persona_members = Table(
    "persona_members",
    metadata,
    Column("person_id", BigId, primary_key=True),
    Column("persona_id", String(16), nullable=False),
    Column("confidence", Float, nullable=False),
    Column("run_id", BigInteger, nullable=False),
    Index(None, "persona_id"),
)

# Saved audiences: a name and a condition in the audience language (docs/audiences.md).
audiences = Table(
    "audiences",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("condition", Text, nullable=False),  # JSON
    Column("description", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# The dashboard's users (the shop's own people: owner, marketers, staff), their sessions, and failed logins.
# Only an Argon2id hash of a password and a sha256 of a session token are stored.
dashboard_users = Table(
    "dashboard_users",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("email", String(254), nullable=False),  # lower-cased
    Column("role", String(16), nullable=False),  # owner | marketer | staff
    Column("password_hash", String(255), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("disabled_at", UtcDateTime, nullable=True),
    UniqueConstraint("email"),
)

dashboard_sessions = Table(
    "dashboard_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", BigInteger, nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Index(None, "user_id"),
)

login_failures = Table(
    "login_failures",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("subject", String(80), nullable=False),  # "email:<sha256>" or "client:<sha256>": no address kept
    Column("at", UtcDateTime, nullable=False),
    Index(None, "subject", "at"),
)

# Offline evaluations of the recommender on the shop's own purchases (`shopkeeper evaluate`, migration
# 0014): the split's counts and every model's metrics, as the command's JSON. The dashboard charts the
# newest one; nothing in it names a person.
evaluations = Table(
    "evaluations",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("report", Text, nullable=False),  # JSON: {"split": {...}, "results": [...]}
)
