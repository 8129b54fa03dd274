"""Notify's use cases for people (RPC from the gateway): the inbox, opt-outs, the duty roster,
and what was sent to whom. Everything returned is masked; nothing here sends.

Who may call what is the gateway's decision (services/gateway/api_notify.py); these functions
check only what needs notify's data (a citizen's case number and phone, a township scope).
"""
from __future__ import annotations

from datetime import datetime

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import func, select, update

from services.common import privacy
from services.common.clock import local
from services.contracts.channels import Phone, Text
from services.contracts.errors import Invalid, NotFound
from services.notify import inputs, roster
from services.notify.models import CasePeople, Delivery, DeliveryAttempt, DutyAssignment, InboxMessage, OptOut, Place
from services.notify.rules import mask_contact

MAX_PER_PAGE = 100
OPT_OUT_CHANNELS = ("sms", "email", "app_push")   # the inbox is the record of a staff member's work: no opt-out
ALL_CHANNELS = "*"


def _iso(value: datetime | None) -> str | None:
    return local(value).isoformat() if value else None


def _page_args(page, per_page) -> tuple[int, int]:
    problems = {}
    if not isinstance(page, int) or isinstance(page, bool) or page < 1:
        problems["page"] = ["must be a whole number from 1"]
    if not isinstance(per_page, int) or isinstance(per_page, bool) or not 1 <= per_page <= MAX_PER_PAGE:
        problems["per_page"] = [f"must be a whole number from 1 to {MAX_PER_PAGE}"]
    if problems:
        raise Invalid("invalid paging", problems)
    return page, per_page


# -- the inbox -------------------------------------------------------------------------------

def inbox_page(session, owners: list[str], *, page: int = 1, per_page: int = 20, unread_only: bool = False) -> dict:
    """One page of a staff member's inbox, newest first. `owners`: the ids messages may be
    addressed to (their directory id and their account)."""
    page, per_page = _page_args(page, per_page)
    mine = InboxMessage.owner_id.in_([o for o in owners if o])
    listed = select(InboxMessage).where(mine)
    if unread_only:
        listed = listed.where(InboxMessage.read_at.is_(None))
    total = session.scalar(select(func.count()).select_from(listed.subquery()))
    unread = session.scalar(select(func.count()).where(mine, InboxMessage.read_at.is_(None)))
    rows = session.scalars(listed.order_by(InboxMessage.created_at.desc(), InboxMessage.id.desc())
                           .offset((page - 1) * per_page).limit(per_page))
    return {"items": [_message(m) for m in rows], "page": page, "per_page": per_page, "total": total,
            "unread": unread}


def _message(m: InboxMessage) -> dict:
    return {"id": m.id, "case_no": m.case_no, "event_type": m.event_type, "urgent": m.urgent, "subject": m.subject,
            "body": m.body, "created_at": _iso(m.created_at), "read": m.read_at is not None,
            "read_at": _iso(m.read_at)}


def mark_read(session, owners: list[str], ids: list[int] | None, now: datetime) -> dict:
    """Mark some (`ids`) or all (None) of a staff member's unread messages read; others' ids are ignored."""
    if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool)
                                                                for i in ids)):
        raise Invalid("ids must be a list of message ids", {"ids": ["must be a list of whole numbers"]})
    where = [InboxMessage.owner_id.in_([o for o in owners if o]), InboxMessage.read_at.is_(None)]
    if ids is not None:
        where.append(InboxMessage.id.in_(ids))
    marked = session.execute(update(InboxMessage).where(*where).values(read_at=now)
                             .execution_options(synchronize_session=False)).rowcount
    return {"marked": marked}


# -- deliveries ------------------------------------------------------------------------------

def case_deliveries(session, case_no: str) -> list[dict]:
    """What was sent to whom for a case, oldest first, with every attempt; contacts masked."""
    rows = list(session.scalars(select(Delivery).where(Delivery.case_no == case_no)
                                .order_by(Delivery.created_at, Delivery.id)))
    return _deliveries(session, rows)


def deliveries_by_status(session, status: str, limit: int = 100) -> list[dict]:
    """The most recent deliveries in one status (`failed` for an operator to look at)."""
    if status not in ("pending", "sending", "sent", "failed", "skipped"):
        raise Invalid("unknown status", {"status": ["one of pending, sending, sent, failed, skipped"]})
    rows = list(session.scalars(select(Delivery).where(Delivery.status == status)
                                .order_by(Delivery.created_at.desc(), Delivery.id.desc()).limit(min(limit, 500))))
    return _deliveries(session, rows)


def _deliveries(session, rows: list[Delivery]) -> list[dict]:
    tries: dict[int, list[dict]] = {}
    if rows:
        for a in session.scalars(select(DeliveryAttempt).where(DeliveryAttempt.delivery_id.in_([r.id for r in rows]))
                                 .order_by(DeliveryAttempt.delivery_id, DeliveryAttempt.number)):
            tries.setdefault(a.delivery_id, []).append({
                "number": a.number, "started_at": _iso(a.started_at), "finished_at": _iso(a.finished_at),
                "outcome": a.outcome or "unknown", "detail": a.detail})
    return [{
        "id": r.key, "case_no": r.case_no, "event_type": r.event_type, "audience": r.audience,
        "recipient": r.recipient_display, "channel": r.channel, "status": r.status, "reason": r.reason,
        "urgent": r.urgent, "legally_required": r.legally_required, "attempts": r.attempts,
        "created_at": _iso(r.created_at), "due_at": _iso(r.due_at), "sent_at": _iso(r.sent_at),
        "last_error": r.last_error, "tries": tries.get(r.id, []),
    } for r in rows]


def retry_delivery(session, key: str, now: datetime) -> dict:
    """Send a failed delivery again (after an operator fixed the cause), with the same key."""
    row = session.scalar(select(Delivery).where(Delivery.key == key))
    if row is None:
        raise NotFound(f"no delivery {key}")
    if row.status != "failed":
        raise Invalid("only a failed delivery can be retried", {"status": [f"is {row.status}"]})
    row.status, row.due_at, row.claimed_until = "pending", now, None
    return _deliveries(session, [row])[0]


# -- opt-outs --------------------------------------------------------------------------------

def _channels(channels) -> list[str]:
    if channels in (None, ALL_CHANNELS, [ALL_CHANNELS]):
        return list(OPT_OUT_CHANNELS)
    if isinstance(channels, str):
        channels = [channels]
    if not isinstance(channels, list) or not channels or any(c not in OPT_OUT_CHANNELS for c in channels):
        raise Invalid("unknown channel", {"channels": [f"a list of {', '.join(OPT_OUT_CHANNELS)}, or \"*\""]})
    return sorted(set(channels))


def _set_opt_outs(session, recipient_ids: list[str], display: str | None, channels: list[str], opted_out: bool,
                  actor: str | None, now: datetime) -> None:
    for recipient_id in recipient_ids:
        for channel in channels:
            row = session.get(OptOut, (recipient_id, channel))
            if opted_out and row is None:
                session.add(OptOut(recipient_id=recipient_id, channel=channel, created_at=now, display=display,
                                   created_by=actor))
            elif not opted_out and row is not None:
                session.delete(row)
    session.flush()


def _opt_out_state(session, recipient_ids: list[str]) -> list[str]:
    rows = session.scalars(select(OptOut.channel).where(OptOut.recipient_id.in_(recipient_ids)))
    channels = set(rows)
    return sorted(OPT_OUT_CHANNELS if ALL_CHANNELS in channels else channels & set(OPT_OUT_CHANNELS))


def citizen_opt_out(session, case_no: str, phone: str, channels, opted_out: bool, now: datetime) -> dict:
    """A citizen proves who they are with their case number and the phone they gave; the choice
    applies to that phone in every case. Legally required notices (受理, 结果, 办结告知) still go."""
    problems = {name: ["required string"] for name, value in (("case_no", case_no), ("phone", phone))
                if not isinstance(value, str) or not value.strip()}
    if problems:
        raise Invalid("case_no and phone are required", problems)
    channels = _channels(channels)
    people = session.get(CasePeople, case_no.strip())
    wanted = privacy.normalise_phone(phone)
    match = next((c for c in (people.complainants if people else []) if c.get("phone")
                  and privacy.normalise_phone(c["phone"]) == wanted), None)
    if match is None:   # one answer for an unknown case and a wrong phone: nothing to probe
        raise NotFound("no case with this case number and phone")
    recipient = inputs.citizen_id(match)
    display = mask_contact("sms", match["phone"])
    _set_opt_outs(session, [recipient], display, channels, opted_out, "citizen", now)
    return {"recipient": display, "opted_out": _opt_out_state(session, [recipient])}


def staff_opt_out(session, recipient_ids: list[str], display: str | None, channels, opted_out: bool,
                  now: datetime) -> dict:
    """A staff member's own choice; duty notices (督办, 问责, urgent alerts) still reach them."""
    ids = [i for i in recipient_ids if i]
    if not ids:
        raise Invalid("this account is not linked to anyone notify can reach", {"account": ["no directory id"]})
    _set_opt_outs(session, ids, display, _channels(channels), opted_out, ids[0], now)
    return {"recipient": display, "opted_out": _opt_out_state(session, ids)}


def staff_opt_outs(session, recipient_ids: list[str]) -> dict:
    return {"opted_out": _opt_out_state(session, [i for i in recipient_ids if i])}


# -- the duty roster -------------------------------------------------------------------------

class DutyEntrySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    role = fields.String(required=True, validate=validate.OneOf(roster.ROLES))
    township = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=32))
    staff_id = fields.String(required=True, validate=validate.Length(min=1, max=100))
    name = Text(60, load_default=None, allow_none=True)
    phone = Phone(load_default=None, allow_none=True)
    email = fields.Email(load_default=None, allow_none=True, validate=validate.Length(max=200))
    app_user_id = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=100))
    starts_at = fields.AwareDateTime(load_default=None, allow_none=True)
    ends_at = fields.AwareDateTime(load_default=None, allow_none=True)
    note = Text(200, load_default=None, allow_none=True)

    @validates_schema
    def _consistent(self, data, **kwargs):
        if data.get("starts_at") and data.get("ends_at") and data["ends_at"] <= data["starts_at"]:
            raise ValidationError("must be after starts_at", "ends_at")
        if data["role"] == "psych_coordinator" and data.get("township"):
            raise ValidationError("the psych coordinator is the county's: leave it empty", "township")


def add_duty(session, payload: dict, actor: str, now: datetime) -> dict:
    try:
        entry = DutyEntrySchema().load(payload or {})
    except ValidationError as exc:
        raise Invalid("invalid duty roster entry", _flat(exc.messages)) from exc
    township = entry["township"]
    if township and session.get(Place, township) is None and session.scalar(select(func.count(Place.code))):
        raise Invalid("unknown township", {"township": ["a township code of the directory, or empty for the county"]})
    row = DutyAssignment(source="manual", created_at=now, created_by=actor, **entry)
    session.add(row)
    session.flush()
    return _duty(row)


def _flat(messages) -> dict[str, list[str]]:
    return {name: reasons if isinstance(reasons, list) else [str(reasons)] for name, reasons in messages.items()}


def remove_duty(session, entry_id: int, township_scope: str | None = None) -> dict:
    """Remove one entry; with `township_scope`, only an entry of that township."""
    row = session.get(DutyAssignment, entry_id)
    if row is None or (township_scope is not None and row.township != township_scope):
        raise NotFound(f"no duty roster entry {entry_id}")
    removed = _duty(row)
    session.delete(row)
    return removed


def list_duty(session, *, township: str | None = None, role: str | None = None, county: bool = True,
              at: datetime | None = None) -> dict:
    """Roster entries (of one township and/or the county), and who of them is on duty `at`."""
    query = select(DutyAssignment).order_by(DutyAssignment.role, DutyAssignment.township, DutyAssignment.id)
    if role:
        query = query.where(DutyAssignment.role == role)
    if township:
        query = query.where(DutyAssignment.township == township if not county else
                            (DutyAssignment.township == township) | DutyAssignment.township.is_(None))
    rows = list(session.scalars(query))
    now_ids = set()
    if at is not None:
        groups: dict[tuple, list] = {}
        for r in rows:
            groups.setdefault((r.role, r.township), []).append(r)
        for group in groups.values():
            entries = {id(r): roster.Entry(role=r.role, township=r.township, staff_id=r.staff_id,
                                           starts_at=r.starts_at, ends_at=r.ends_at) for r in group}
            active = roster.on_duty_at(entries.values(), at)
            now_ids |= {r.id for r in group if entries[id(r)] in active}
    return {"entries": [dict(_duty(r), active=r.id in now_ids) for r in rows]}


def _duty(r: DutyAssignment) -> dict:
    return {"id": r.id, "role": r.role, "township": r.township, "staff_id": r.staff_id, "name": r.name,
            "phone": privacy.mask_phone(r.phone), "email": mask_contact("email", r.email),
            "app_user_id": r.app_user_id, "starts_at": _iso(r.starts_at), "ends_at": _iso(r.ends_at),
            "source": r.source, "note": r.note, "created_by": r.created_by}
