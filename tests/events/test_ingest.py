"""Ingestion rules that don't need HTTP: clock-skew correction, batch defaults, generated ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shopkeeper.errors import InvalidInput
from shopkeeper.events.ingest import Ingestor, _Job, correct_skew
from shopkeeper.events.spec import parse_message
from shopkeeper.privacy.consent import consent_recorder
from shopkeeper.store import Store

NOW = datetime(2026, 5, 3, 12, 0, tzinfo=UTC)


def test_skew_is_corrected_with_sent_at() -> None:
    # The device's clock runs an hour fast: it stamped the event at 12:59 and sent it at 13:00.
    device_timestamp = NOW + timedelta(minutes=59)
    device_sent_at = NOW + timedelta(hours=1)
    assert correct_skew(device_timestamp, device_sent_at, NOW) == NOW - timedelta(minutes=1)


def test_without_sent_at_the_timestamp_stands_and_without_either_we_use_receipt() -> None:
    assert correct_skew(NOW - timedelta(days=2), None, NOW) == NOW - timedelta(days=2)
    assert correct_skew(None, None, NOW) == NOW


def test_ingested_payload_keeps_original_and_corrected_times(store: Store) -> None:
    Ingestor(store, record_consent=consent_recorder()).ingest(
        [
            {
                "type": "track",
                "userId": "u",
                "event": "E",
                "messageId": "m",
                "timestamp": "2026-05-03T13:59:00Z",
            }
        ],
        sent_at=NOW + timedelta(hours=2),
        received_at=NOW,
        context={"library": {"name": "analytics-python"}, "locale": "en-GB"},
    )
    [event] = store.events.for_person(store.person_summary("u").person_id)
    assert event["originalTimestamp"] == "2026-05-03T13:59:00Z"
    assert event["timestamp"] == "2026-05-03T11:59:00Z"
    assert event["receivedAt"] == "2026-05-03T12:00:00Z"
    assert event["context"]["locale"] == "en-GB"


def test_message_context_wins_over_batch_context(store: Store) -> None:
    Ingestor(store, record_consent=consent_recorder()).ingest(
        [{"type": "page", "anonymousId": "a", "messageId": "m", "context": {"locale": "de-DE"}}],
        context={"locale": "en-GB", "ip": "192.0.2.1"},
    )
    [event] = store.events.for_person(store.person_summary("a").person_id)
    assert event["context"] == {"locale": "de-DE", "ip": "192.0.2.1"}


def test_a_message_id_is_generated_when_missing(store: Store) -> None:
    Ingestor(store, record_consent=consent_recorder()).ingest([{"type": "page", "anonymousId": "a"}])
    [event] = store.events.for_person(store.person_summary("a").person_id)
    assert len(event["messageId"]) == 36


def test_extra_fields_sent_by_sdks_are_kept(store: Store) -> None:
    Ingestor(store, record_consent=consent_recorder()).ingest(
        [{"type": "page", "anonymousId": "a", "messageId": "m", "_metadata": {"x": 1}}]
    )
    [event] = store.events.for_person(store.person_summary("a").person_id)
    assert event["_metadata"] == {"x": 1}


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"type": "track", "userId": "u"}, "event"),
        ({"type": "alias", "userId": "u"}, "previousId"),
        ({"type": "group", "userId": "u"}, "groupId"),
        ({"type": "page"}, "userId"),
        ({"type": "track", "userId": True, "event": "E"}, "userId"),
        ({"type": "nope", "userId": "u"}, "type"),
    ],
)
def test_spec_violations_name_the_field(raw: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_message(raw, where="batch[4].")
    assert caught.value.field == f"batch[4].{field}"


def test_an_endpoint_refuses_a_message_of_another_type() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_message({"type": "identify", "userId": "u"}, type_="track")
    assert caught.value.field == "type"


def _job(ingestor: Ingestor, *messages: dict[str, object]) -> _Job:
    rows = [ingestor._to_row(m, parse_message(m), None, None, None, NOW, None) for m in messages]
    return _Job(rows, NOW)


def test_one_call_failing_in_a_group_commit_fails_alone(store: Store) -> None:
    # Calls waiting on the writer go in one transaction; when it fails, each is written on its own, from
    # rows the failed attempt must not have changed (person ids, links and new people are all redone).
    ingestor = Ingestor(store, record_consent=consent_recorder())
    first = _job(ingestor, {"type": "page", "anonymousId": "a", "messageId": "m1"})
    broken = _job(ingestor, {"type": "page", "anonymousId": "b", "messageId": "m2"})
    broken.rows[0]["bound"] = broken.rows[0]["bound"][:3]  # the database refuses this row
    last = _job(
        ingestor,
        {"type": "identify", "anonymousId": "a", "userId": "u", "messageId": "m3"},
        {"type": "page", "userId": "v", "messageId": "m4"},
    )
    ingestor._write_together([first, broken, last])
    assert first.result is not None and first.result.stored == 1
    assert last.result is not None and last.result.stored == 2
    assert broken.error is not None and broken.result is None
    assert store.events.count() == 3
    person = store.person_summary("u")
    assert person.event_count == 2
    assert store.person_summary("a").person_id == person.person_id
    assert store.person_summary("v").event_count == 1
    assert not store.events.stored_message_ids(["m2"])
