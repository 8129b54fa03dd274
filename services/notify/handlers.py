"""Notify's use cases for events: remember the case's people, plan deliveries, send them.

Planning happens in the event's transaction (one Delivery row per key, the inbox row too,
so the inbox alone is exactly-once); sending happens after the commit, outside any
transaction, by whoever claims the row first (the handler right away, or the timer for
held, retried and crash-interrupted deliveries). Every try carries the delivery's key.

    claim (UPDATE … WHERE status pending|expired claim; attempts+1; an attempt row)
      -> channel.send(key, …)                       outside any transaction
      -> record the outcome (sent wins; a failure counts only for the current claim)
         + notification_sent / notification_failed through the outbox, once per delivery
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update

from services.common import config, privacy
from services.notify import inputs, policy, roster, rules, templates
from services.notify.channels import OutgoingMessage, Outcome, RetryPolicy, SendResult
from services.notify.models import (CasePeople, Delivery, DeliveryAttempt, DirectoryVersion, DutyAssignment,
                                    InboxMessage, OptOut, Place)

log = logging.getLogger(__name__)

DETAIL_CHARS = 300


def claim_seconds() -> float:
    """How long a claimed delivery is someone's. Longer than any channel's timeout: after it,
    the timer takes the delivery back (its sender crashed) and sends it again with the same key."""
    return config.get_float("NOTIFY_CLAIM_SECONDS", 120.0)


def rating_url_template() -> str:
    return config.get("NOTIFY_RATING_URL") or "http://127.0.0.1:8000/r/{token}"


# -- what notify knows ---------------------------------------------------------------------

def place_names(session):
    cache: dict[str, str | None] = {}

    def name(code: str | None) -> str | None:
        if not code:
            return None
        if code not in cache:
            place = session.get(Place, code)
            cache[code] = place.name if place else code   # unknown yet: the code rather than nothing
        return cache[code]

    return name


def roster_entries(session, role: str, township: str | None) -> list[roster.Entry]:
    where = DutyAssignment.township.is_(None) if township is None else DutyAssignment.township == township
    rows = session.scalars(select(DutyAssignment).where(DutyAssignment.role == role, where)
                           .order_by(DutyAssignment.id))
    return [roster.Entry(role=r.role, township=r.township, staff_id=r.staff_id, name=r.name, phone=r.phone,
                         email=r.email, app_user_id=r.app_user_id, starts_at=r.starts_at, ends_at=r.ends_at)
            for r in rows]


class StoredDirectory:
    """rules.Directory over notify's own tables, for one event."""

    def __init__(self, session, known: inputs.Known, now: datetime):
        self.session = session
        self.known = known
        self.now = now

    def _on(self, role, township, at):
        return [e.person() for e in roster.on_duty_at(roster_entries(self.session, role, township), at)]

    def complainants(self, case_no):
        return [p for p in (inputs.citizen(c) for c in self.known.complainants) if p]

    def assignees(self, case_no):
        return [p for p in (inputs.staff(a) for a in self.known.assignees) if p]

    def supervisors(self, township):
        """The township's supervisors, else the county's."""
        return (self._on("supervisor", township, self.now) if township else []) or self._on("supervisor", None, self.now)

    def on_duty(self, township, at):
        return self._on("on_duty", township, at)

    def psych_coordinators(self):
        return self._on("psych_coordinator", None, self.now) or self._on("supervisor", None, self.now)


def known_of(people: CasePeople | None) -> inputs.Known:
    if people is None:
        return inputs.Known()
    return inputs.Known(complainants=list(people.complainants or []), assignees=list(people.assignees or []),
                        township=people.township, village=people.village, dispute_type=people.dispute_type,
                        urgent=bool(people.urgent))


def remember(session, event_type: str, case_no: str | None, data: dict) -> CasePeople | None:
    """Keep what later events of the case will not carry: complainants, assignees, place, urgency."""
    if not case_no:
        return None
    people = session.get(CasePeople, case_no)
    if people is None:
        people = CasePeople(case_no=case_no, complainants=[], assignees=[], urgent=False)
        session.add(people)
    if event_type in ("case_received", "case_merged"):
        source = data.get("source") or {}
        complainant = inputs.citizen(source.get("complainant"))
        if complainant and inputs.citizen_id(complainant) not in {inputs.citizen_id(c) for c in people.complainants}:
            people.complainants = [*people.complainants, complainant]
    if event_type in ("case_received", "case_urgent", "case_assigned"):
        people.township = data.get("township") or people.township
    if event_type == "case_received":
        people.village = data.get("village") or people.village
    if event_type in ("case_received", "case_urgent") and (data.get("urgent") or event_type == "case_urgent"):
        people.urgent = True
    if event_type == "case_assigned":
        people.assignees = inputs.staff_list(data.get("assignees"), data.get("unit")) or people.assignees
        people.dispute_type = data.get("dispute_type") or people.dispute_type
    if event_type == "counsellor_assigned" and data.get("mediators"):
        people.assignees = inputs.staff_list(data.get("mediators")) or people.assignees
    return people


def apply_directory(session, data: dict, now: datetime) -> bool:
    """routing's places snapshot: township and village names; its staff, if it lists them,
    become the default duty roster. An older snapshot than the one applied is ignored."""
    state = session.get(DirectoryVersion, 1)
    if state is not None and state.version >= data["version"]:
        return False
    if state is None:
        state = DirectoryVersion(id=1, version=data["version"], applied_at=now)
        session.add(state)
    state.version, state.applied_at = data["version"], now
    places = data.get("places") or {}
    rows = [("township", p) for p in places.get("townships") or []] + [("village", p) for p in places.get("villages") or []]
    if rows:
        session.execute(delete(Place))
        session.add_all(Place(code=p["code"], kind=kind, name=p["name"]) for kind, p in rows if p.get("code"))
    staff = places.get("staff") or data.get("staff")
    if staff:
        seed_default_roster(session, staff, now)
    return True


def seed_default_roster(session, staff, now: datetime, *, only_if_empty: bool = False) -> int:
    """Replace the default entries with those for these staff records; manual entries stay.
    `only_if_empty`: leave defaults that exist (the directory's, which carry contacts)."""
    if only_if_empty and session.scalar(select(DutyAssignment.id).where(DutyAssignment.source == "default").limit(1)):
        return 0
    entries = roster.default_entries(staff)
    session.execute(delete(DutyAssignment).where(DutyAssignment.source == "default"))
    session.add_all(DutyAssignment(role=e.role, township=e.township, staff_id=e.staff_id, name=e.name, phone=e.phone,
                                   email=e.email, app_user_id=e.app_user_id, source="default", created_at=now,
                                   created_by="directory") for e in entries)
    return len(entries)


# -- planning --------------------------------------------------------------------------------

def plan_deliveries(uow, event) -> list[int]:
    """Remember what the event tells about the case, then record one delivery per planned
    message (the inbox ones delivered at once); returns the ids to send now."""
    session, now = uow.session, uow.now
    case_no = event.correlation_id or event.data.get("case_no")
    people = remember(session, event.type, case_no, event.data)
    data = inputs.event_input(event.type, event.data, event_id=event.event_id, occurred_at=event.occurred_at,
                              case_no=case_no, known=known_of(people), place_name=place_names(session),
                              rating_url_template=rating_url_template())
    planned = rules.plan(event.type, data, StoredDirectory(session, known_of(people), now), now=now)
    if not planned:
        return []
    existing = set(session.scalars(select(Delivery.key).where(Delivery.key.in_([m.delivery_key for m in planned]))))
    opt_outs = {(o.recipient_id, o.channel) for o in session.scalars(
        select(OptOut).where(OptOut.recipient_id.in_({m.recipient.id for m in planned})))}
    quiet = policy.QuietHours.from_env()
    due = []
    for message in planned:
        if message.delivery_key in existing:
            continue
        rendered = templates.render(message.template, message.context)
        decision = policy.decide(recipient_id=message.recipient.id, channel=message.channel, urgent=message.urgent,
                                 legally_required=message.legally_required, now=now, opt_outs=opt_outs,
                                 quiet_hours=quiet)
        delivery = Delivery(
            key=message.delivery_key, event_id=message.event_id, event_type=message.event_type,
            case_no=message.case_no, audience=message.audience, recipient_id=message.recipient.id,
            recipient_display=message.recipient.display[:100], channel=message.channel,
            contact=message.recipient.contact, subject=rendered.subject, body=rendered.body, urgent=message.urgent,
            legally_required=message.legally_required, status="pending" if decision.send else "skipped",
            reason=decision.reason, attempts=0, due_at=decision.release_at or now, created_at=now,
        )
        session.add(delivery)
        session.flush()
        if delivery.status == "pending" and delivery.due_at <= now:
            if message.channel == "inbox":
                deliver_to_inbox(uow, delivery)
            else:
                due.append(delivery.id)
    log.info("%s %s: %d deliveries planned, %d to send now", event.type, case_no, len(planned), len(due))
    return due


def deliver_to_inbox(uow, delivery: Delivery) -> None:
    """The inbox lives in notify's database: written exactly once, in the delivery's transaction."""
    now = uow.now
    uow.session.add(InboxMessage(key=delivery.key, owner_id=delivery.contact, case_no=delivery.case_no,
                                 event_type=delivery.event_type, urgent=delivery.urgent, subject=delivery.subject,
                                 body=delivery.body, created_at=now))
    delivery.attempts += 1
    uow.session.add(DeliveryAttempt(delivery_id=delivery.id, number=delivery.attempts, started_at=now,
                                    finished_at=now, outcome=Outcome.SENT.value, detail="in the inbox"))
    delivery.status, delivery.sent_at, delivery.claimed_until = "sent", now, None
    emit_outcome(uow, delivery, "notification_sent", "in the inbox")


def emit_outcome(uow, delivery: Delivery, event_type: str, detail: str) -> None:
    uow.emit(event_type, {
        "case_no": delivery.case_no, "delivery_id": delivery.key, "event_type": delivery.event_type,
        "audience": delivery.audience, "recipient": delivery.recipient_display, "channel": delivery.channel,
        "attempts": delivery.attempts, "detail": (privacy.mask_text(detail) or "")[:DETAIL_CHARS],
    }, correlation_id=delivery.case_no)


# -- sending ---------------------------------------------------------------------------------

def _claimable(now):
    return (Delivery.status.in_(("pending", "sending")), Delivery.due_at <= now,
            or_(Delivery.claimed_until.is_(None), Delivery.claimed_until < now))


def due_deliveries(session, now, limit: int = 100) -> list[int]:
    return list(session.scalars(select(Delivery.id).where(*_claimable(now)).order_by(Delivery.due_at, Delivery.id)
                                .limit(limit)))


@dataclass(frozen=True)
class Claim:
    """A delivery taken for one attempt: what to send, and which attempt this is."""

    delivery_id: int
    attempt: int
    message: OutgoingMessage
    channel: str


def claim(db, delivery_id: int) -> Claim | None:
    """Take a delivery for one attempt; None if someone else has it, it is done, or the person
    opted out since it was planned (then it is skipped)."""
    with db.transaction() as uow:
        session, now = uow.session, uow.now
        taken = session.execute(
            update(Delivery).where(Delivery.id == delivery_id, *_claimable(now))
            .values(status="sending", claimed_until=now + timedelta(seconds=claim_seconds()),
                    attempts=Delivery.attempts + 1)
            .execution_options(synchronize_session=False)
        ).rowcount
        if not taken:
            return None
        row = session.get(Delivery, delivery_id)
        session.refresh(row)
        if not row.legally_required and policy.is_opted_out(row.recipient_id, row.channel, _opt_outs(session, row)):
            row.status, row.reason, row.claimed_until, row.attempts = "skipped", "opted_out", None, row.attempts - 1
            return None
        if row.channel == "inbox":   # held by quiet hours (NOTIFY_QUIET_CHANNELS): delivered here, once
            row.attempts -= 1
            deliver_to_inbox(uow, row)
            return None
        session.add(DeliveryAttempt(delivery_id=row.id, number=row.attempts, started_at=now))
        return Claim(row.id, row.attempts, OutgoingMessage(row.key, row.contact, row.subject, row.body, row.case_no),
                     row.channel)


def _opt_outs(session, row: Delivery) -> set[tuple[str, str]]:
    return {(o.recipient_id, o.channel) for o in session.scalars(select(OptOut).where(
        OptOut.recipient_id == row.recipient_id))}


def send(db, channels: dict, delivery_id: int) -> None:
    """Send one delivery (at least once: the key lets the receiver drop a repeat) and record the outcome."""
    taken = claim(db, delivery_id)
    if taken is None:
        return
    channel = channels.get(taken.channel)
    if channel is None:
        result = SendResult.of(Outcome.PERMANENT_FAILURE, f"no channel {taken.channel!r} is configured")
    else:
        try:
            result = channel.send(taken.message)
        except Exception as exc:  # noqa: BLE001 - a channel bug must not leave the delivery claimed forever
            log.exception("%s channel raised for delivery %s", taken.channel, taken.message.idempotency_key)
            result = SendResult.of(Outcome.TRANSIENT_FAILURE, f"{type(exc).__name__}: {exc}")
    record_outcome(db, taken, result)


def record_outcome(db, taken: Claim, result: SendResult) -> None:
    """A success marks the delivery sent whoever holds it (it reached the receiver); a failure
    counts only if this attempt still holds the claim (else a later attempt decides)."""
    with db.transaction() as uow:
        session, now = uow.session, uow.now
        detail = result.detail[:DETAIL_CHARS]
        session.execute(update(DeliveryAttempt)
                        .where(DeliveryAttempt.delivery_id == taken.delivery_id,
                               DeliveryAttempt.number == taken.attempt)
                        .values(finished_at=now, outcome=result.outcome.value, detail=detail)
                        .execution_options(synchronize_session=False))
        current = update(Delivery).where(Delivery.id == taken.delivery_id).execution_options(synchronize_session=False)
        if result.outcome is Outcome.SENT:
            done = session.execute(current.where(Delivery.status.in_(("pending", "sending")))
                                   .values(status="sent", sent_at=now, claimed_until=None, last_error=None)).rowcount
            if done:
                emit_outcome(uow, session.get(Delivery, taken.delivery_id), "notification_sent", result.detail)
            return
        row = session.get(Delivery, taken.delivery_id)
        mine = current.where(Delivery.status == "sending", Delivery.attempts == taken.attempt)
        retry_at = None
        if result.outcome is Outcome.TRANSIENT_FAILURE:
            retry_at = RetryPolicy.from_env().next_attempt_at(taken.attempt, now)
            if retry_at is not None:   # a retry does not wake anyone at night either
                retry_at = policy.QuietHours.from_env().release_at(retry_at, row.urgent, row.channel)
        if retry_at is None:
            if session.execute(mine.values(status="failed", claimed_until=None, last_error=detail)).rowcount:
                session.refresh(row)
                emit_outcome(uow, row, "notification_failed", result.detail)
                log.warning("delivery %s failed for good after %d attempts: %s", row.key, row.attempts, detail)
        else:
            session.execute(mine.values(status="pending", due_at=retry_at, claimed_until=None, last_error=detail))
