"""Which event reaches whom, on which channel: the rules table and the planner.

The table itself is data (rules/rules.yaml); this module loads it and turns one event
into the list of messages to deliver. Nothing here sends, stores or waits.

    plan(event_type, event_data, directory, now=...) -> list[PlannedMessage]

Each PlannedMessage is one delivery: one (event, recipient, channel), identified by
`delivery_key = "<event_id>:<recipient_id>:<channel>"`, which the service stores under a
unique constraint and uses as the idempotency key of every send attempt.

Input shapes (the service maps each contract event to this plain dict)
---------------------------------------------------------------------
Every event:
    event_id      str, required: the envelope's id (redelivery gives the same keys)
    case_no       str "371324-YYYYMMDD-NNNNNN"
    township      str | None   township name, e.g. "卞庄街道"; None for county-level cases
    township_code str | None   the directory's code for it, used to look up rosters (else the name)
    dispute_type  str | None   e.g. "劳动争议"
    summary       str | None   short description; masked, cut to 60 characters, inbox only
    occurred_at   aware datetime or ISO 8601 with offset | None (defaults to `now`)
    urgent        bool | None, priority "urgent" | "normal" | None  (for `urgent: from_event`)

People: a Person mapping {id, name, role, phone, email, app_user_id}; only `id` is required
for staff. A citizen mapping may omit `id`: the recipient id is then a keyed hash of the
phone, so the key stays stable without carrying the number.

Per event (fields named in rules.yaml `requires` must be present):
    case_received         complainant: [Person] (the first source's complainant; [] reaches nobody)
    case_merged           complainant: [Person] (the NEW source's complainant only)
    case_assigned         assignees: [Person], deadline (handling), sign_off_by, level, mechanism
    case_accepted         -
    reminder_due          deadline, stage "before" | "at", deadline_kind "sign_off" | "handling",
                          assignees?: [Person]
    case_overdue          deadline, grade "warning" | "overdue" | "seriously_overdue",
                          deadline_kind?, assignees?, supervisors?: [Person]
    supervision_opened    units: [Person] (the supervised unit or mediator), deadline, reason,
                          supervisors?
    accountability_recorded  units: [Person] (held to account), measure (e.g. "约谈"), reason,
                          supervisors?
    case_resolved         rating_url?: a SHORT link (<= 30 chars, or the citizen SMS needs two segments)
    evaluation_requested  rating_url (same limit)
    case_evaluated        rating (满意 | 基本满意 | 不满意, or 1-5 stars), comment? (inbox only, like summary)
    case_closed           -
    counsellor_offered    counsellor: Person, respond_by, priority, need (category, never notes)
    counsellor_assigned   counsellor: Person, assignees?
    psych_unmatched       reason, priority, need, coordinators?: [Person]
    case_urgent           signal (what was detected: text, or categories labelled by rules.yaml), village?

services/notify/inputs.py maps each contract event to these shapes.

An audience named in an event field (complainant, assignees, supervisors, units, counsellor)
comes from the event; when the field is absent, from the Directory (see rules.yaml `lookup`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence
from zoneinfo import ZoneInfo

import yaml

from services.common import config, privacy

RULES_FILE = Path(__file__).with_name("rules") / "rules.yaml"
CHANNELS = ("sms", "email", "app_push", "inbox")
URGENCY = (True, False, "from_event")
TIME_FIELDS = ("deadline", "sign_off_by", "respond_by", "occurred_at")
COMMON_CONTEXT = ("case_no", "township", "dispute_type", "summary", "occurred_at")
SUMMARY_CHARS = 60
# Citizens' own words may name people, which masking cannot catch: they stay behind the
# console's login (the inbox) and never leave the system by SMS, push or e-mail.
FREE_TEXT_FIELDS = ("summary", "comment")
FREE_TEXT_CHANNELS = ("inbox",)
TEXT_CHARS = 200


@dataclass(frozen=True)
class Person:
    id: str
    name: str | None = None
    role: str | None = None
    phone: str | None = None
    email: str | None = None
    app_user_id: str | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, citizen: bool = False) -> "Person | None":
        """None when the person cannot be addressed at all (a citizen with neither id nor phone)."""
        person_id = data.get("id")
        if not person_id and citizen and data.get("phone"):
            person_id = "citizen-" + privacy.keyed_hash(data["phone"], "phone")[:24]
        if not person_id:
            if citizen:
                return None
            raise ValueError(f"a staff recipient has no id: {sorted(data)}")
        return cls(
            id=str(person_id),
            name=data.get("name"),
            role=data.get("role"),
            phone=privacy.normalise_phone(data["phone"]) if data.get("phone") else None,
            email=data.get("email"),
            app_user_id=data.get("app_user_id"),
        )

    def contact(self, channel: str) -> str | None:
        return {
            "sms": self.phone,
            "email": self.email,
            "app_push": self.app_user_id,
            "inbox": self.id,
        }[channel]


@dataclass(frozen=True)
class Recipient:
    id: str
    contact: str      # phone, e-mail address, app user id or inbox owner id, per channel
    display: str      # masked, for logs and the case history: "王* 138****5678"


@dataclass(frozen=True)
class PlannedMessage:
    delivery_key: str
    event_id: str
    event_type: str
    case_no: str | None
    audience: str
    recipient: Recipient
    channel: str
    template: str
    context: Mapping[str, Any]
    urgent: bool
    legally_required: bool


class Directory(Protocol):
    """People notify needs but the event does not carry. The service implements it from its
    own tables (contacts recorded from case_received/case_merged/case_assigned, duty rosters).
    Each method returns Person mappings (see the module docstring)."""

    def complainants(self, case_no: str) -> Sequence[Mapping[str, Any]]: ...
    def assignees(self, case_no: str) -> Sequence[Mapping[str, Any]]: ...
    def supervisors(self, township: str | None) -> Sequence[Mapping[str, Any]]: ...
    def on_duty(self, township: str | None, at: datetime) -> Sequence[Mapping[str, Any]]: ...
    def psych_coordinators(self) -> Sequence[Mapping[str, Any]]: ...


@dataclass
class StaticDirectory:
    """An in-memory Directory: for tests, or filled by the service from its rows per event.
    `on_duty` ignores the time: the roster given is the one on duty now; key None is the county."""

    complainants_by_case: dict[str, list[dict]] = field(default_factory=dict)
    assignees_by_case: dict[str, list[dict]] = field(default_factory=dict)
    supervisors_by_township: dict[str | None, list[dict]] = field(default_factory=dict)
    on_duty_by_township: dict[str | None, list[dict]] = field(default_factory=dict)
    coordinators: list[dict] = field(default_factory=list)

    def complainants(self, case_no):
        return self.complainants_by_case.get(case_no, [])

    def assignees(self, case_no):
        return self.assignees_by_case.get(case_no, [])

    def supervisors(self, township):
        return self.supervisors_by_township.get(township, [])

    def on_duty(self, township, at):
        return self.on_duty_by_township.get(township, [])

    def psych_coordinators(self):
        return self.coordinators


Lookup = Callable[[Directory, Mapping[str, Any], datetime], Sequence[Mapping[str, Any]]]

def _township(event: Mapping[str, Any]) -> str | None:
    """The township as the directory knows it: its code when the event gives one, else its name."""
    return event.get("township_code") or event.get("township")


LOOKUPS: dict[str, Lookup] = {
    "complainants": lambda d, event, at: d.complainants(event["case_no"]),
    "assignees": lambda d, event, at: d.assignees(event["case_no"]),
    "supervisors": lambda d, event, at: d.supervisors(_township(event)),
    "township_on_duty": lambda d, event, at: d.on_duty(_township(event), at) if _township(event) else [],
    "county_on_duty": lambda d, event, at: d.on_duty(None, at),
    "psych_coordinators": lambda d, event, at: d.psych_coordinators(),
}


@dataclass(frozen=True)
class Audience:
    name: str
    description: str
    from_event: str | None = None
    lookup: str | None = None
    citizen: bool = False


@dataclass(frozen=True)
class Rule:
    event_type: str
    audience: str
    channels: tuple[str, ...]
    legally_required: bool
    urgent: bool | str   # True, False or "from_event"

    def template(self, channel: str) -> str:
        return f"{channel}/{self.event_type}.{self.audience}.j2"


@dataclass(frozen=True)
class EventSpec:
    requires: tuple[str, ...]
    context: tuple[str, ...]
    rules: tuple[Rule, ...]


class RulesTable:
    def __init__(self, audiences: Mapping[str, Audience], events: Mapping[str, EventSpec],
                 labels: Mapping[str, Mapping[str, str]]):
        self.audiences = dict(audiences)
        self.events = dict(events)
        self.labels = {name: dict(values) for name, values in labels.items()}

    @classmethod
    def load(cls, path: Path | str = RULES_FILE) -> "RulesTable":
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        audiences = {name: Audience(name=name, **spec) for name, spec in raw["audiences"].items()}
        for audience in audiences.values():
            if audience.lookup and audience.lookup not in LOOKUPS:
                raise ValueError(f"audience {audience.name}: unknown lookup {audience.lookup!r}")
            if not (audience.lookup or audience.from_event):
                raise ValueError(f"audience {audience.name}: needs from_event or lookup")
        events = {}
        for event_type, spec in raw["events"].items():
            rules = tuple(_rule(event_type, r, audiences) for r in spec["rules"])
            events[event_type] = EventSpec(tuple(spec.get("requires", ())), tuple(spec.get("context", ())), rules)
        return cls(audiences, events, raw.get("labels", {}))

    def templates(self) -> set[str]:
        return {rule.template(channel) for spec in self.events.values() for rule in spec.rules
                for channel in rule.channels}

    def plan(self, event_type: str, event_data: Mapping[str, Any], directory: Directory, *,
             now: datetime, console_url: str, tz: ZoneInfo) -> list[PlannedMessage]:
        spec = self.events.get(event_type)
        if spec is None:
            return []
        missing = [name for name in ("event_id", *spec.requires) if event_data.get(name) in (None, "", [])]
        if missing:
            raise ValueError(f"{event_type}: missing {', '.join(missing)}")
        at = _aware(event_data.get("occurred_at")) or now
        context = self._context(event_type, spec, event_data, console_url, tz)
        contexts = {channel: context if channel in FREE_TEXT_CHANNELS
                    else {**context, **dict.fromkeys(FREE_TEXT_FIELDS)} for channel in CHANNELS}
        planned: dict[str, PlannedMessage] = {}
        for rule in spec.rules:
            audience = self.audiences[rule.audience]
            urgent = _is_urgent(event_data) if rule.urgent == "from_event" else bool(rule.urgent)
            for person in self._people(audience, event_data, directory, at):
                for channel in rule.channels:
                    contact = person.contact(channel)
                    key = f"{event_data['event_id']}:{person.id}:{channel}"
                    if not contact or key in planned:   # the first audience that reaches a person wins
                        continue
                    planned[key] = PlannedMessage(
                        delivery_key=key, event_id=str(event_data["event_id"]), event_type=event_type,
                        case_no=event_data.get("case_no"), audience=rule.audience,
                        recipient=Recipient(person.id, contact, _display(person, channel)),
                        channel=channel, template=rule.template(channel), context=contexts[channel],
                        urgent=urgent, legally_required=rule.legally_required,
                    )
        return list(planned.values())

    def _people(self, audience: Audience, event: Mapping[str, Any], directory: Directory,
                at: datetime) -> Iterable[Person]:
        if audience.from_event and event.get(audience.from_event) is not None:
            found = event[audience.from_event]
        elif audience.lookup:
            found = LOOKUPS[audience.lookup](directory, event, at)
        else:
            found = []
        if isinstance(found, Mapping):
            found = [found]
        people = (Person.from_mapping(p, citizen=audience.citizen) for p in found)
        return [p for p in people if p is not None]

    def _context(self, event_type: str, spec: EventSpec, event: Mapping[str, Any], console_url: str,
                 tz: ZoneInfo) -> dict[str, Any]:
        """What templates may show: no contact details at all, free text masked."""
        context: dict[str, Any] = {"event_type": event_type}
        for name in (*COMMON_CONTEXT, *spec.context):
            context[name] = self._value(name, event.get(name), tz)
        context["case_url"] = f"{console_url.rstrip('/')}/cases/{event['case_no']}" if event.get("case_no") else None
        context["urgent"] = _is_urgent(event)
        return context

    def _value(self, name: str, value: Any, tz: ZoneInfo) -> Any:
        if value is None or value == "":
            return None
        if name in TIME_FIELDS:
            return _aware(value).astimezone(tz).strftime("%Y-%m-%d %H:%M")
        if name.endswith("_url") or isinstance(value, (int, float)):
            return value
        labels = self.labels.get(name, {})
        if isinstance(value, Mapping):   # people are shown to colleagues by name only
            value = value.get("name") or ""
        elif isinstance(value, (list, tuple)):
            value = "、".join(str(p.get("name") or "") if isinstance(p, Mapping) else labels.get(str(p), str(p))
                             for p in value)
        text = privacy.mask_text(str(value).strip())
        if labels:
            return labels.get(text, text)
        limit = SUMMARY_CHARS if name == "summary" else TEXT_CHARS
        return text if len(text) <= limit else text[:limit - 1] + "…"


def _rule(event_type: str, raw: Mapping[str, Any], audiences: Mapping[str, Audience]) -> Rule:
    rule = Rule(event_type=event_type, audience=raw["audience"], channels=tuple(raw["channels"]),
                legally_required=bool(raw.get("legally_required", False)), urgent=raw.get("urgent", False))
    if rule.audience not in audiences:
        raise ValueError(f"{event_type}: unknown audience {rule.audience!r}")
    unknown = set(rule.channels) - set(CHANNELS)
    if unknown:
        raise ValueError(f"{event_type}/{rule.audience}: unknown channels {sorted(unknown)}")
    if rule.urgent not in URGENCY:
        raise ValueError(f"{event_type}/{rule.audience}: urgent must be true, false or from_event")
    return rule


def _is_urgent(event: Mapping[str, Any]) -> bool:
    return bool(event.get("urgent")) or event.get("priority") == "urgent"


def _aware(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        raise ValueError(f"timestamp without an offset: {value!r}")
    return moment


def _display(person: Person, channel: str) -> str:
    shown = mask_contact(channel, person.contact(channel))
    return " ".join(part for part in (privacy.mask_name(person.name), shown) if part)


def mask_contact(channel: str, contact: str | None) -> str | None:
    """A contact as logs and the case history may show it: 138****5678, w***@example.cn, ids as is."""
    if not contact:
        return contact
    if channel == "sms":
        return privacy.mask_phone(contact)
    if channel == "email" and "@" in contact:
        local, domain = contact.split("@", 1)
        return f"{local[:1]}***@{domain}"
    return contact


@lru_cache(maxsize=None)
def default_table() -> RulesTable:
    return RulesTable.load()


def plan(event_type: str, event_data: Mapping[str, Any], directory: Directory, *,
         now: datetime | None = None, console_url: str | None = None,
         table: RulesTable | None = None) -> list[PlannedMessage]:
    """The messages one event asks for; [] for events notify has no rule for.

    Raises ValueError when a field the rules require is missing (dead-letter the event with it).
    `console_url` defaults to NOTIFY_CONSOLE_URL (the staff console, for the case links).
    """
    return (table or default_table()).plan(
        event_type, event_data, directory,
        now=now or datetime.now(timezone.utc),
        console_url=console_url or config.get("NOTIFY_CONSOLE_URL") or "http://127.0.0.1:8000/console",
        tz=ZoneInfo(config.get("TZ_NAME")),
    )
