"""One canonical case from any channel's validated submission (pure; no I/O but the rules file).

    case = to_canonical(channel, load_submission(channel, payload, now), places, now)

The canonical case is a plain dict; personal data in it is in clear, so the service
encrypts it at rest and seals it on the wire (contracts.fields.Sealed):

    channel, reference        where it came from and its idempotency key there
    received_at               aware UTC datetime: the source's own time of receipt
                              (received_at / published_at / posted_at / reported_at /
                              visited_at), else `now`
    title, content            title given or the first words of the content; an opinion
                              lead's content is its summary plus its full text if sent
    township, village         directory codes (None when not known); village_name is the
                              village as the source wrote it, kept even when unresolved
    grid_code, address
    complainant               {name, phone, id_number, user_id} or None (opinion leads;
                              a grid report without an applicant party)
    parties                   [{role, name, phone, id_number}] as sent
    people_count, petition_form, app_section, resolved_on_site (grid only, else None)
    obligations               [{kind, label, to, due_at (ISO 8601 UTC or None), basis}]
    urgent, urgent_signals    from urgent.detect_emergency on title and content
    details                   channel-specific facts for the record (source platform,
                              URL, heat, centre, worker, attachments, unknown_fields …)

Locations are resolved through a `places` object (the intake cache of routing's
directory) that provides:

    township(name_or_code) -> code | None
    village(name_or_code, township_code) -> code | None
    grid(code) -> (village_code | None, township_code) | None
    township_aliases() -> Mapping[str, str | None]
        names and aliases to look for in free text; map a name that is not a township
        (the county itself, "兰陵县") to None so it does not count as one.

A township or grid the source gives that the directory does not know is a field error,
not a guess. A village that is unknown stays as village_name: the village list is the
part of the directory most likely to lag behind.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

import chinese_calendar
import yaml

from services.contracts.channels import SubmissionInvalid, reference_field
from services.intake.urgent import detect_emergency

log = logging.getLogger(__name__)

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
OBLIGATIONS_PATH = Path(__file__).with_name("rules") / "obligations.yaml"
TITLE_FROM_CONTENT = 30

_RECEIVED_FIELD = {
    "hotline": "received_at",
    "petition": "received_at",
    "opinion": "published_at",
    "app": "posted_at",
    "grid": "reported_at",
    "walkin": "visited_at",
}
_DETAIL_FIELDS = {
    "hotline": ("order_type", "category", "callback_phone", "wants_callback", "reply_deadline", "attachments"),
    "petition": ("is_repeat", "registering_office", "attachments"),
    "opinion": ("source_platform", "url", "heat", "author", "attachments"),
    "app": ("user_id", "wants_mediator", "attachments"),
    "grid": ("worker_id", "outcome", "attachments"),
    "walkin": ("centre", "receptionist_id", "attachments"),
}
_FIRST_SENTENCE = re.compile(r"[。！？!?；;\n]")


class Places(Protocol):
    def township(self, name_or_code: str) -> str | None: ...
    def village(self, name_or_code: str, township_code: str | None) -> str | None: ...
    def grid(self, code: str) -> tuple[str | None, str] | None: ...
    def township_aliases(self) -> Mapping[str, str | None]: ...


class StaticPlaces:
    """An in-memory `Places`, built from directory rows (the intake cache, or test data).

    townships: [{code, name, aliases?}]; villages: [{code, name, township}];
    grids: [{code, village, township}]; not_townships: names to ignore in text (the county).
    A township is also found by its name without 街道/镇/乡 when that is unambiguous.
    """

    SUFFIXES = ("街道", "镇", "乡")

    def __init__(
        self,
        townships: Iterable[Mapping],
        villages: Iterable[Mapping] = (),
        grids: Iterable[Mapping] = (),
        not_townships: Iterable[str] = (),
    ):
        self._townships: dict[str, str] = {}
        self._aliases: dict[str, str | None] = {name: None for name in not_townships}
        stems: dict[str, set[str]] = {}
        for row in townships:
            code = row["code"]
            names = [row["name"], *row.get("aliases", ())]
            self._aliases.update({name: code for name in names})
            for key in (code, *names):
                self._townships[key] = code
            for suffix in self.SUFFIXES:
                if row["name"].endswith(suffix) and len(row["name"]) > len(suffix) + 1:
                    stems.setdefault(row["name"][: -len(suffix)], set()).add(code)
        for stem, codes in stems.items():
            if len(codes) == 1 and stem not in self._townships:
                self._townships[stem] = next(iter(codes))
        self._villages: dict[tuple[str | None, str], str] = {}
        for row in villages:
            for key in (row["code"], row["name"]):
                self._villages[(row["township"], key)] = row["code"]
                self._villages.setdefault((None, key), row["code"])
        self._grids = {row["code"]: (row.get("village"), row["township"]) for row in grids}

    def township(self, name_or_code: str) -> str | None:
        return self._townships.get(name_or_code.strip())

    def village(self, name_or_code: str, township_code: str | None) -> str | None:
        return self._villages.get((township_code, name_or_code.strip()))

    def grid(self, code: str) -> tuple[str | None, str] | None:
        return self._grids.get(code.strip())

    def township_aliases(self) -> Mapping[str, str | None]:
        return self._aliases


def to_canonical(
    channel: str,
    submission: Mapping,
    places: Places,
    now: datetime,
    *,
    add_working_days: Callable[[date, int], date] | None = None,
) -> dict:
    """Map a validated submission (channels.load_submission) to the canonical case.

    Raises SubmissionInvalid naming `township` or `grid_code` when the directory does
    not know the place given.
    """
    received_at = (submission.get(_RECEIVED_FIELD[channel]) or now).astimezone(timezone.utc)
    content = _content(channel, submission)
    title = submission.get("title") or _title_from(content)
    township, village, village_name = _locate(channel, submission, places, f"{title}\n{content}")
    signals = detect_emergency(f"{title}。{content}" if submission.get("title") else content)
    return {
        "channel": channel,
        "reference": submission[reference_field(channel)],
        "received_at": received_at,
        "title": title,
        "content": content,
        "township": township,
        "village": village,
        "village_name": village_name,
        "grid_code": submission.get("grid_code"),
        "address": submission.get("address"),
        "complainant": _complainant(channel, submission),
        "parties": [dict(party) for party in submission.get("parties", ())],
        "people_count": submission.get("people_count"),
        "petition_form": submission.get("form") if channel == "petition" else None,
        "app_section": submission.get("section") if channel == "app" else None,
        "resolved_on_site": submission.get("resolved_on_site") if channel == "grid" else None,
        "obligations": obligations_for(channel, submission, received_at, add_working_days),
        "urgent": bool(signals),
        "urgent_signals": signals,
        "details": _details(channel, submission),
    }


def _content(channel: str, submission: Mapping) -> str:
    if channel == "opinion":
        full_text = submission.get("content")
        return f"{submission['summary']}\n\n{full_text}" if full_text else submission["summary"]
    return submission["content"]


def _title_from(content: str) -> str:
    first = _FIRST_SENTENCE.split(content.strip(), maxsplit=1)[0].strip()
    return first if len(first) <= TITLE_FROM_CONTENT else first[:TITLE_FROM_CONTENT] + "…"


def _locate(channel: str, submission: Mapping, places: Places, text: str):
    """(township code, village code, village name as given)."""
    village_name = submission.get("village")
    if channel == "grid":
        located = places.grid(submission["grid_code"])
        if located is None:
            raise SubmissionInvalid({"grid_code": ["is not a grid in the directory"]})
        village, township = located
        return township, village, village_name
    given = submission.get("township")
    if given is not None:
        township = places.township(given)
        if township is None:
            raise SubmissionInvalid({"township": ["is not a township name or code in the directory"]})
    else:  # only opinion leads may come without one
        township = township_named_in(text, places)
    village = places.village(village_name, township) if village_name else None
    return township, village, village_name


def township_named_in(text: str, places: Places) -> str | None:
    """The one township a free text names, or None when it names none or several."""
    names = set(_alias_pattern(places).findall(text)) if text else set()
    codes = {places.township_aliases()[name] for name in names} - {None}
    return codes.pop() if len(codes) == 1 else None


def _alias_pattern(places: Places) -> re.Pattern:
    aliases = places.township_aliases()
    return _compiled_alternation(tuple(sorted(aliases, key=len, reverse=True)))


@lru_cache(maxsize=16)
def _compiled_alternation(names: tuple[str, ...]) -> re.Pattern:
    # Longest first, so 兰陵县 (the county) is consumed before 兰陵 could match.
    return re.compile("|".join(re.escape(name) for name in names) or r"(?!)")


def _complainant(channel: str, s: Mapping) -> dict | None:
    if channel == "hotline":
        person = (s["caller_name"], s["caller_phone"], None, None)
    elif channel == "petition":
        person = (s["petitioner_name"], s["petitioner_phone"], s.get("id_number"), None)
    elif channel == "app":
        person = (s.get("real_name"), s["phone"], None, s["user_id"])
    elif channel == "walkin":
        person = (s["visitor_name"], s["visitor_phone"], s.get("id_number"), None)
    elif channel == "grid":
        applicant = next((p for p in s.get("parties", ()) if p["role"] == "applicant"), None)
        if applicant is None:
            return None
        person = (applicant["name"], applicant.get("phone"), applicant.get("id_number"), None)
    else:  # opinion: an author's screen name identifies nobody
        return None
    return dict(zip(("name", "phone", "id_number", "user_id"), person))


def _details(channel: str, submission: Mapping) -> dict:
    details = {}
    for name in _DETAIL_FIELDS[channel]:
        value = submission.get(name)
        if value is not None:
            details[name] = value.astimezone(timezone.utc).isoformat() if isinstance(value, datetime) else value
    details["unknown_fields"] = list(submission.get("unknown_fields", ()))
    return details


# --- obligations ------------------------------------------------------------------


@lru_cache(maxsize=None)
def load_obligation_rules(path: Path = OBLIGATIONS_PATH) -> dict:
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def obligations_for(
    channel: str,
    submission: Mapping,
    received_at: datetime,
    add_working_days: Callable[[date, int], date] | None = None,
) -> list[dict]:
    """What this source is owed, with due times (ISO 8601 UTC) where a period applies."""
    owed = []
    for rule in load_obligation_rules()[channel]:
        if any(submission.get(field) == value for field, value in rule.get("unless", {}).items()):
            continue
        due = submission.get(rule.get("due_field")) if rule.get("due_field") else None
        if due is None and rule.get("within"):
            due = due_time(received_at, rule["within"], add_working_days or add_official_working_days)
        owed.append(
            {
                "kind": rule["kind"],
                "label": rule["label"],
                "to": rule["to"],
                "due_at": due.astimezone(timezone.utc).isoformat() if due else None,
                "basis": rule["basis"],
            }
        )
    return owed


def due_time(
    received_at: datetime, within: Mapping, add_working_days: Callable[[date, int], date]
) -> datetime:
    """Hours run from the instant; days and working days end at local midnight of the last day."""
    amount, unit = within["amount"], within["unit"]
    if unit == "hours":
        return received_at + timedelta(hours=amount)
    start = received_at.astimezone(LOCAL_TZ).date()
    if unit == "days":
        last = start + timedelta(days=amount)
    elif unit == "working_days":
        last = add_working_days(start, amount)
    else:
        raise ValueError(f"unknown period unit {unit!r}")
    return datetime.combine(last + timedelta(days=1), time(0), LOCAL_TZ)


def add_official_working_days(start: date, count: int) -> date:
    """The `count`-th working day after `start` on China's official calendar.

    For a year chinese_calendar does not know yet, Monday-Friday, with a warning.
    """
    day, left = start, count
    while left > 0:
        day += timedelta(days=1)
        try:
            working = chinese_calendar.is_workday(day)
        except NotImplementedError:
            _warn_calendar_unknown(day.year)
            working = day.weekday() < 5
        left -= working
    return day


@lru_cache(maxsize=None)
def _warn_calendar_unknown(year: int) -> None:
    log.warning("official calendar unknown for %s; counting Monday-Friday (update chinesecalendar)", year)
