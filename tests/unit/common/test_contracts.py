"""The event envelope, sealed personal data, and the topology derived from the catalogue."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from services.common import topology
from services.contracts.catalogue import CATALOGUE, EVENTS
from services.contracts.envelope import InvalidEvent, load_event, new_event

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=timezone.utc)


def received(**changes):
    return {
        "case_no": "371324-20261129-000001", "accepted_at": NOW, "content": "邻居占地",
        "source": {"channel": "hotline", "reference": "A1", "received_at": NOW,
                   "complainant": {"name": "王秀英", "phone": "13812345678"}},
        **changes,
    }


def test_an_event_round_trips_and_personal_data_is_sealed_on_the_wire():
    event, body = new_event("case_received", received(), correlation_id="371324-20261129-000001", occurred_at=NOW)
    wire = json.loads(body)
    assert wire["type"] == "case_received" and wire["producer"] == "intake" and wire["version"] == 1
    assert "13812345678" not in body.decode() and "王秀英" not in body.decode()
    loaded = load_event(body)
    assert loaded.event_id == event.event_id
    assert loaded.data["source"]["complainant"]["phone"] == "13812345678"
    assert loaded.data["accepted_at"] == NOW


def test_a_producer_cannot_emit_data_that_breaks_the_contract():
    with pytest.raises(ValueError, match="case_received"):
        new_event("case_received", received(source={"channel": "fax"}), correlation_id=None, occurred_at=NOW)


@pytest.mark.parametrize("body, reason", [
    (b"{not json", "undecodable"),
    (b'{"event_id": "1", "type": "no_such_event", "version": 1, "occurred_at": "2026-11-29T08:00:00+00:00",'
     b' "correlation_id": null, "producer": "x", "data": {}}', "unknown event type"),
    (b'{"event_id": "1", "type": "case_routed", "version": 1, "occurred_at": "2026-11-29T08:00:00+00:00",'
     b' "correlation_id": null, "producer": "routing", "data": {"case_no": "x"}}', "data invalid"),
    (b'{"event_id": "1", "type": "case_routed", "version": 9, "occurred_at": "2026-11-29T08:00:00+00:00",'
     b' "correlation_id": null, "producer": "routing", "data": {}}', "newer"),
])
def test_a_message_that_can_never_be_handled_is_rejected_with_a_reason(body, reason):
    with pytest.raises(InvalidEvent, match=reason):
        load_event(body)


def test_consumers_ignore_fields_they_do_not_know():
    _, body = new_event("case_received", received(), correlation_id=None, occurred_at=NOW)
    wire = json.loads(body)
    wire["data"]["added_in_a_later_version"] = 1
    assert "added_in_a_later_version" not in load_event(json.dumps(wire)).data


def test_every_consumer_of_every_event_has_a_declared_queue_bound_to_the_producer():
    queues = {q.name: q for q in topology.all_queues([1000])}
    for spec in CATALOGUE:
        for consumer in spec.consumers:
            queue = queues[f"{consumer}.{spec.name}"]
            keys = {(b.exchange.name, b.routing_key) for b in queue.bindings}
            assert (f"{spec.producer}.events", spec.name) in keys
            assert ("lanling.requeue", queue.name) in keys
    assert len(EVENTS) == len(CATALOGUE)
