"""The AMQP ingress (handlers.ingest): who sent a message and may they, the same validation as
over HTTP, results through the outbox, dead-letter reasons, redelivery and replay."""
from __future__ import annotations

import json

import pytest

from services.contracts.errors import Invalid
from services.intake import handlers, ingress
from services.intake.models import Case, IngressMessage, Source
from tests.unit.intake.test_submissions import INVALID, valid


@pytest.fixture
def systems(intake):
    with intake.db.transaction() as uow:
        handlers.put_source_system(uow.session, "hotline-12345", ["hotline"], uow.now, "12345 platform")
        handlers.put_source_system(uow.session, "xinfang", ["petition", "walkin"], uow.now)
    return intake


def props(user="hotline-12345", channel="hotline", message_id="m-1", **extra) -> dict:
    base = {"user_id": user, "routing_key": f"{channel}.submitted", "exchange": "intake.ingress",
            "message_id": message_id, "content_type": "application/json", "headers": {}}
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


def ingest(intake, body, properties):
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    return intake.run(handlers.ingest, raw, properties)


def results(intake) -> list[dict]:
    return intake.published("intake.ingress.results")


def test_an_accepted_message_answers_on_the_results_exchange(systems):
    assert ingest(systems, valid("hotline"), props()) is None
    [result] = results(systems)
    assert result["routing_key"] == "hotline-12345.hotline.accepted"
    assert result["correlation_id"] == "m-1"
    body = result["body"]
    assert body["status"] == "accepted" and body["reference"] == "GD-0001" and body["error"] is None
    assert body["case_no"].startswith("371324-")
    view = systems.read(handlers.case_view, body["case_no"])
    assert view["sources"][0]["source_user"] == "hotline-12345"


def test_a_merged_message_says_so(systems):
    ingest(systems, valid("hotline", content="邻居砌院墙占了我家宅基地半米，找村里调解两次没用。"), props())
    petition = valid("petition", petitioner_name="王秀英", petitioner_phone="13800001001", id_number=None,
                     township="大仲村镇", content="后楼村邻居李某砌墙占了我家宅基地半米多，调解两次他也不拆。")
    assert ingest(systems, petition, props("xinfang", "petition", "m-2")) is None
    result = results(systems)[-1]
    assert result["routing_key"] == "xinfang.petition.merged"
    assert result["body"]["merged_into"] == result["body"]["case_no"] == results(systems)[0]["body"]["case_no"]


@pytest.mark.parametrize("channel", sorted(INVALID))
def test_http_and_amqp_reject_the_same_body_with_the_same_fields(systems, channel):
    changes, _ = INVALID[channel]
    body = valid(channel, **changes)
    with pytest.raises(Invalid) as over_http:
        systems.submit(channel, body)
    with systems.db.transaction() as uow:
        handlers.put_source_system(uow.session, "all", list(INVALID), uow.now)
    reason = ingest(systems, body, props("all", channel))
    error = results(systems)[-1]["body"]["error"]
    assert error == {"error": "invalid", "message": over_http.value.message, "fields": over_http.value.fields}
    assert reason.startswith("invalid: ") and all(field in reason for field in over_http.value.fields)
    assert systems.count(Case) == 0


@pytest.mark.parametrize("body, properties, code", [
    (b'{"order_no": "x"', props(), "invalid"),                                  # not JSON
    (b"\xff\xfe{}", props(), "invalid"),                                        # not UTF-8
    (b"[1, 2]", props(), "invalid"),                                            # not an object
    (b"{}", props(content_type="text/plain"), "unsupported_media_type"),
    (b"{}", props(content_encoding="gzip"), "unsupported_media_type"),
    (b"{" + b" " * (256 * 1024) + b"}", props(), "too_large"),
    (b"{}", props(message_id=None), "invalid"),
    (b"{}", props(channel="fax"), "not_found"),
    (b"{}", props(routing_key="hotline.created"), "not_found"),
    (b"{}", props(channel="petition"), "forbidden"),                            # not this system's channel
    (b"{}", props(user="stranger"), "unauthorized"),
    (b"{}", props(user=None), "unauthorized"),
])
def test_what_can_never_be_accepted_is_rejected_with_a_reason(systems, body, properties, code):
    reason = ingest(systems, body, properties)
    assert reason.startswith(f"{code}: ")
    [result] = results(systems)
    assert result["body"]["status"] == "rejected" and result["body"]["error"]["error"] == code
    assert result["routing_key"].endswith(".rejected")
    assert systems.count(Case) == systems.count(Source) == 0


def test_a_redelivered_message_changes_nothing_and_is_not_answered_twice(systems):
    ingest(systems, valid("hotline"), props())
    assert ingest(systems, valid("hotline"), props()) is None
    assert len(results(systems)) == 1 and systems.count(Case) == 1
    assert systems.count(IngressMessage) == 1


def test_the_same_reference_in_a_new_message_gets_the_first_outcome(systems):
    ingest(systems, valid("hotline"), props())
    ingest(systems, valid("hotline"), props(message_id="m-2"))
    first, second = (r["body"] for r in results(systems))
    assert second == {**first, "duplicate": True}
    reason = ingest(systems, valid("hotline", content="改了内容。"), props(message_id="m-3"))
    assert reason.startswith("conflict: ")


def test_a_message_id_reused_for_another_message_is_rejected(systems):
    ingest(systems, valid("hotline"), props())
    reason = ingest(systems, valid("hotline", order_no="GD-0002"), props())
    assert reason.startswith("conflict: ") and systems.count(Case) == 1


def test_a_rejected_message_redelivered_is_dead_lettered_again_without_a_second_result(systems):
    first = ingest(systems, valid("hotline", township="不存在镇"), props())
    again = ingest(systems, valid("hotline", township="不存在镇"), props())
    assert first == again and first.startswith("invalid:")
    assert len(results(systems)) == 1


def test_a_replayed_dead_letter_is_handled_again_under_its_original_user(systems):
    body = valid("hotline", township="不存在镇")
    ingest(systems, body, props())
    replayed = props(user=None, routing_key="intake.ingress", exchange="lanling.requeue",
                     headers={"x-original-user-id": "hotline-12345", "x-original-routing-key": "hotline.submitted",
                              "x-replayed": True})
    reason = ingest(systems, body, replayed)  # still invalid: rejected again, answered again
    assert reason.startswith("invalid:") and len(results(systems)) == 2
    # after the fix (a resend with a known township and the same message id) it is accepted
    ingest(systems, dict(body, township="大仲村镇"), dict(replayed))
    assert results(systems)[-1]["body"]["status"] == "accepted"


def test_origin_headers_are_trusted_only_from_the_requeue_exchange(systems):
    forged = props(user="stranger", headers={"x-original-user-id": "hotline-12345"})
    assert ingest(systems, valid("hotline"), forged).startswith("unauthorized:")


def test_a_disabled_system_is_refused(systems):
    with systems.db.transaction() as uow:
        assert handlers.disable_source_system(uow.session, "hotline-12345", uow.now)
    assert ingest(systems, valid("hotline"), props()).startswith("unauthorized:")


def test_source_systems_need_known_channels(intake):
    with pytest.raises(Invalid) as raised, intake.db.transaction() as uow:
        handlers.put_source_system(uow.session, "x", ["fax"], uow.now)
    assert "channels" in raised.value.fields


def test_result_routing_keys_cannot_be_steered_by_what_a_sender_writes():
    assert ingress.result_routing_key("a.b#", "hot*line", "rejected") == "a_b_.hot_line.rejected"
    assert ingress.result_routing_key(None, None, "rejected") == "anonymous.unknown.rejected"


def test_message_ids_are_forgotten_after_a_month_but_the_reference_is_not(systems, clock):
    from datetime import timedelta

    ingest(systems, valid("hotline"), props())
    clock.advance(timedelta(days=31))
    assert systems.run(handlers.forget_old_ingress_messages) == 1
    ingest(systems, valid("hotline"), props())  # the same message again, long after
    assert results(systems)[-1]["body"]["duplicate"] is True and systems.count(Case) == 1
