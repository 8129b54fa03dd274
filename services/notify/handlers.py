"""Notify's use cases: plan deliveries for an event, then send them at least once.

Planning happens in the event's transaction (one Delivery row per key, the inbox row too);
sending happens after the commit, outside any transaction, by whoever claims the row
first (the handler right away, or the timer for held and retried deliveries).
"""
from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import or_, select, update

from services.common import privacy
from services.notify import policy, rules, templates
from services.notify.channels import OutgoingMessage, Outcome, next_attempt_at
from services.notify.models import CasePeople, Delivery, InboxMessage, OptOut

log = logging.getLogger(__name__)
CLAIM_FOR = timedelta(minutes=2)


class StoredDirectory(rules.StaticDirectory):
    """notify's Directory protocol over its own tables (duty rosters come with a later change)."""

    @classmethod
    def for_case(cls, session, case_no: str | None) -> "StoredDirectory":
        people = session.get(CasePeople, case_no) if case_no else None
        return cls(
            complainants_by_case={case_no: people.complainants} if people else {},
            assignees_by_case={case_no: people.assignees} if people else {},
        )


def remember(session, case_no: str, *, complainant=None, assignees=None, township=None) -> None:
    people = session.get(CasePeople, case_no)
    if people is None:
        people = CasePeople(case_no=case_no, complainants=[], assignees=[])
        session.add(people)
    if complainant:
        people.complainants = [*people.complainants, complainant]
    if assignees is not None:
        people.assignees = assignees
    if township:
        people.township = township


def event_input(event) -> dict:
    """The planner's input for a contract event (see rules.py for the shapes)."""
    data = dict(event.data)
    data.update(event_id=event.event_id, occurred_at=event.occurred_at, case_no=event.correlation_id or data.get("case_no"))
    if event.type == "case_received":
        data["complainant"] = data["source"].get("complainant")
    elif event.type == "case_assigned":
        data["deadline"] = data.get("sign_off_deadline")
    data.setdefault("summary", None)
    data.setdefault("dispute_type", None)
    data.setdefault("township", None)
    return data


def plan_deliveries(uow, event) -> list[int]:
    """Record one delivery per planned message; returns the ids due now."""
    session, now = uow.session, uow.now
    data = event_input(event)
    planned = rules.plan(event.type, data, StoredDirectory.for_case(session, data["case_no"]), now=now)
    opt_outs = {(o.recipient_id, o.channel) for o in session.scalars(
        select(OptOut).where(OptOut.recipient_id.in_([p.recipient.id for p in planned])))} if planned else set()
    due = []
    for message in planned:
        if session.scalar(select(Delivery.id).where(Delivery.key == message.delivery_key)) is not None:
            continue
        rendered = templates.render(message.template, message.context)
        decision = policy.decide(recipient_id=message.recipient.id, channel=message.channel, urgent=message.urgent,
                                 legally_required=message.legally_required, now=now, opt_outs=opt_outs)
        delivery = Delivery(
            key=message.delivery_key, event_id=message.event_id, event_type=message.event_type,
            case_no=message.case_no, audience=message.audience, recipient_id=message.recipient.id,
            recipient_display=message.recipient.display, channel=message.channel, contact=message.recipient.contact,
            subject=rendered.subject, body=rendered.body, urgent=message.urgent,
            legally_required=message.legally_required, status="pending" if decision.send else "skipped",
            reason=decision.reason, attempts=0, due_at=decision.release_at or now, created_at=now,
        )
        session.add(delivery)
        session.flush()
        if delivery.status == "pending" and message.channel == "inbox":
            deliver_to_inbox(uow, delivery)
        elif delivery.status == "pending" and delivery.due_at <= now:
            due.append(delivery.id)
    return due


def deliver_to_inbox(uow, delivery: Delivery) -> None:
    """The inbox lives in notify's database: written exactly once, in the planning transaction."""
    uow.session.add(InboxMessage(key=delivery.key, owner_id=delivery.contact, case_no=delivery.case_no,
                                 subject=delivery.subject, body=delivery.body, created_at=uow.now))
    delivery.status, delivery.attempts, delivery.sent_at = "sent", 1, uow.now
    emit_outcome(uow, delivery, "notification_sent", "inbox")


def emit_outcome(uow, delivery: Delivery, event_type: str, detail: str) -> None:
    uow.emit(event_type, {
        "case_no": delivery.case_no, "delivery_id": delivery.key, "event_type": delivery.event_type,
        "audience": delivery.audience, "recipient": delivery.recipient_display, "channel": delivery.channel,
        "attempts": delivery.attempts, "detail": privacy.mask_text(detail)[:300],
    }, correlation_id=delivery.case_no)


def due_deliveries(session, now, limit: int = 100) -> list[int]:
    return list(session.scalars(
        select(Delivery.id).where(Delivery.status.in_(("pending", "sending")), Delivery.due_at <= now,
                                  or_(Delivery.claimed_until.is_(None), Delivery.claimed_until < now))
        .order_by(Delivery.due_at).limit(limit)))


def claim(db, delivery_id: int) -> Delivery | None:
    """Take a delivery for sending; None if someone else has it or it is done."""
    with db.transaction() as uow:
        now = uow.now
        taken = uow.session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id, Delivery.status.in_(("pending", "sending")), Delivery.due_at <= now,
                   or_(Delivery.claimed_until.is_(None), Delivery.claimed_until < now))
            .values(status="sending", claimed_until=now + CLAIM_FOR, attempts=Delivery.attempts + 1)
        ).rowcount
        return uow.session.get(Delivery, delivery_id) if taken else None


def send(db, channels: dict, delivery_id: int) -> None:
    """Send one delivery (at least once: the key lets the receiver drop a repeat) and record the outcome."""
    delivery = claim(db, delivery_id)
    if delivery is None:
        return
    channel = channels[delivery.channel]
    result = channel.send(OutgoingMessage(delivery.key, delivery.contact, delivery.subject, delivery.body,
                                          delivery.case_no))
    with db.transaction() as uow:
        row = uow.session.get(Delivery, delivery_id)
        row.claimed_until = None
        if result.outcome is Outcome.SENT:
            row.status, row.sent_at = "sent", uow.now
            emit_outcome(uow, row, "notification_sent", result.detail)
            return
        retry_at = None if result.outcome is Outcome.PERMANENT_FAILURE else next_attempt_at(row.attempts, uow.now)
        row.last_error = result.detail[:300]
        if retry_at is None:
            row.status = "failed"
            emit_outcome(uow, row, "notification_failed", result.detail)
        else:
            row.status, row.due_at = "pending", retry_at
