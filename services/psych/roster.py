"""The counsellor roster in psych's database, and the in-memory `Pool` each replica matches against.

Every transaction that changes the roster bumps one version number (table `roster_version`)
and stamps the rows it changed with it. `load_pool` reads that number (one primary-key
read), and when it moved since this process last looked, reloads only the rows stamped
with a newer version into its `Pool`, incrementally. So every replica follows every
change made through any replica or by `lanling load-reference`, at the cost of one tiny
query per use; the whole roster is read only once per process.

Records are stored as `EncryptedJSON` (they hold the phone) and validated with
`match.validate_record` plus the checks an API user needs (`normalise`).
"""
from __future__ import annotations

import logging
import re
import time
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Mapping

from marshmallow import ValidationError
from sqlalchemy import func, select

from services.common import privacy
from services.common.clock import LOCAL_TZ, local
from services.contracts.channels import Phone
from services.contracts.errors import Conflict, Invalid, NotFound
from services.psych import match, stats
from services.psych.models import CounsellorRow, Offer, RosterVersion

log = logging.getLogger(__name__)

ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
HASH_PATTERN = re.compile(r"[0-9a-f]{64}")
TEXT_LIMITS = {"name": 50, "occupation": 50, "certification": 50}
MAX_WEEKLY_CAPACITY = 50
FILTERS = ("active", "township", "speciality", "occupation", "certification", "gender", "age_band",
           "urgent_callout", "q")
MAX_PAGE = 200
YIELD_EVERY = 250


@lru_cache(maxsize=1)
def townships() -> tuple[match.Township, ...]:
    return tuple(match.load_reference()[0])


def township_code(value: str | None) -> str | None:
    """A township code from a code or a name (卞庄街道 or 卞庄); None when unknown."""
    if not value:
        return None
    for township in townships():
        if value in (township.code, township.name) or township.name.rstrip("街道镇乡") == value:
            return township.code
    return None


# -- the version and the cached pool ---------------------------------------------
@dataclass
class _Cached:
    version: int
    pool: match.Pool


# One pool per engine: each Database (a service process, or a replica in a test) keeps its own.
_pools: "weakref.WeakKeyDictionary[object, _Cached]" = weakref.WeakKeyDictionary()


def current_version(session) -> int:
    return session.scalar(select(RosterVersion.version).where(RosterVersion.id == 1)) or 0


def bump_version(session) -> int:
    """The next roster version, locking the row so concurrent writers commit in version order."""
    row = session.scalars(select(RosterVersion).where(RosterVersion.id == 1).with_for_update()).first()
    if row is None:
        row = RosterVersion(id=1, version=0)
        session.add(row)
    row.version += 1
    session.flush()
    return row.version


def load_pool(session) -> match.Pool:
    """This process's pool, brought up to date with the roster in the database."""
    version = current_version(session)
    key = session.get_bind()
    cached = _pools.get(key)
    if cached is not None and cached.version == version:
        return cached.pool
    if cached is None or version < cached.version:  # first use, or a database rebuilt under us
        cached = _Cached(-1, match.Pool(townships()))
        _pools[key] = cached
    newest = cached.version
    rows = session.scalars(select(CounsellorRow).where(CounsellorRow.version > cached.version))
    for count, row in enumerate(rows, 1):
        if count % YIELD_EVERY == 0:
            time.sleep(0)  # a first load of a large pool: let other green threads run (eventlet patches sleep)
        try:
            cached.pool.upsert(row.record)
        except match.InvalidRecord as exc:
            log.error("counsellor %s is stored but unusable, left out of matching: %s", row.id, exc)
        newest = max(newest, row.version)
    cached.version = max(newest, version)
    return cached.pool


def _save(session, record: dict, now: datetime, version: int) -> CounsellorRow:
    row = session.get(CounsellorRow, record["id"])
    if row is None:
        row = CounsellorRow(id=record["id"], created_at=now)
        session.add(row)
    row.record, row.active, row.updated_at, row.version = record, bool(record.get("active", True)), now, version
    return row


def replace_pool(session, records: list[dict], now: datetime) -> int:
    """Load the sample or a county's pool: insert or update each counsellor by id (idempotent)."""
    changed = [r for r in records if (row := session.get(CounsellorRow, r["id"])) is None or row.record != r]
    if changed:
        version = bump_version(session)
        for record in changed:
            _save(session, record, now, version)
    return len(changed)


# -- load: cases accepted this week + open offers ----------------------------------
def week_start(now: datetime) -> datetime:
    day = now.astimezone(LOCAL_TZ)
    return (day - timedelta(days=day.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)


def weekly_load(session, now: datetime, counsellor_id: str | None = None) -> dict[str, int]:
    """counsellor_id -> cases accepted since Monday 00:00 (county time) + offers still open."""
    accepted = (Offer.status == "accepted") & (Offer.answered_at >= week_start(now))
    open_ = (Offer.status == "pending") & (Offer.expires_at > now)
    query = select(Offer.counsellor_id, func.count()).where(accepted | open_).group_by(Offer.counsellor_id)
    if counsellor_id is not None:
        query = query.where(Offer.counsellor_id == counsellor_id)
    return dict(session.execute(query).all())


# -- records from the API ---------------------------------------------------------
def _merge(current: Mapping, changes: Mapping) -> dict:
    merged = dict(current)
    for key, value in changes.items():
        if key in ("availability", "recusal") and isinstance(value, Mapping) and isinstance(current.get(key), Mapping):
            merged[key] = {**current[key], **value}
        else:
            merged[key] = value
    return merged


def _recusal_persons(entries, problems: dict) -> list[str]:
    """Keyed hashes, from hashes or from {"phone": …} / {"id_number": …}; never stored in clear."""
    hashes = []
    for entry in entries if isinstance(entries, list) else [entries]:
        if isinstance(entry, str) and HASH_PATTERN.fullmatch(entry):
            hashes.append(entry)
        elif isinstance(entry, Mapping) and (entry.get("phone") or entry.get("id_number")):
            kind, value = ("phone", entry["phone"]) if entry.get("phone") else ("id", entry["id_number"])
            hashes.append(privacy.keyed_hash(str(value), kind))
        else:
            problems.setdefault("recusal.persons", []).append(
                'each entry is {"phone": …}, {"id_number": …} or a keyed hash (64 hex)')
            return []
    return sorted(set(hashes))


def normalise(body: Mapping, current: Mapping | None, *, now: datetime) -> dict:
    """A complete, valid record from an API body (a new record, or changes to `current`); else Invalid."""
    record = _merge(current or {"active": True, "recusal": {"villages": [], "persons": []}}, body)
    problems: dict[str, list[str]] = {}
    if current is not None and body.get("id", current["id"]) != current["id"]:
        problems["id"] = ["cannot be changed"]
    if not isinstance(record.get("id"), str) or not ID_PATTERN.fullmatch(record["id"]):
        problems["id"] = ["1-32 letters, digits, - or _"]
    given = record.pop("township", None) if "township" in body else body.get("township_code")
    if isinstance(given, str):
        record["township_code"] = township_code(given) or given
    for name, limit in TEXT_LIMITS.items():
        value = record.get(name)
        if isinstance(value, str):
            record[name] = value.strip()
            if not record[name] or len(record[name]) > limit:
                problems[name] = [f"1-{limit} characters"]
    if "phone" in body:
        try:
            record["phone"] = Phone().deserialize(body["phone"])
        except ValidationError as exc:
            problems["phone"] = list(exc.messages)
    year = now.astimezone(LOCAL_TZ).year
    birth_year = record.get("birth_year")
    if isinstance(birth_year, int) and not (year - 90 <= birth_year <= year - 18):
        problems["birth_year"] = [f"between {year - 90} and {year - 18}"]
    capacity = record.get("weekly_capacity")
    if isinstance(capacity, int) and capacity > MAX_WEEKLY_CAPACITY:
        problems["weekly_capacity"] = [f"at most {MAX_WEEKLY_CAPACITY}"]
    if not isinstance(record.get("active", True), bool):
        problems["active"] = ["true or false"]
    recusal = record.get("recusal") if isinstance(record.get("recusal"), Mapping) else {}
    if "recusal" in body and isinstance(body["recusal"], Mapping) and "persons" in body["recusal"]:
        recusal = {**recusal, "persons": _recusal_persons(body["recusal"]["persons"], problems)}
    villages = recusal.get("villages") or []
    if not isinstance(villages, list) or not all(isinstance(v, str) for v in villages):
        problems["recusal.villages"] = ["a list of village codes"]
    record["recusal"] = {"villages": villages, "persons": recusal.get("persons") or []}
    if isinstance(record.get("availability"), Mapping):
        record["availability"] = {"slots": [], "urgent_callout": False, "callout_response_minutes": None,
                                  "away_until": None, **record["availability"]}
    unknown = sorted(set(body) - set(EDITABLE))
    if unknown:
        problems.update({name: ["unknown field"] for name in unknown})
    for field_name, reasons in match.validate_record(record, townships={t.code: t for t in townships()}).items():
        problems.setdefault(field_name, reasons)
    if problems:
        raise Invalid("the counsellor record is invalid", problems)
    return match.Counsellor.from_record(record).to_record()


EDITABLE = ("id", "name", "gender", "birth_year", "occupation", "specialities", "certification", "township",
            "township_code", "phone", "weekly_capacity", "availability", "recusal", "active")


def next_id(session) -> str:
    numbers = [int(m.group(1)) for cid in session.scalars(select(CounsellorRow.id))
               if (m := re.fullmatch(r"PC-(\d+)", cid))]
    return f"PC-{max(numbers, default=0) + 1:04d}"


def create(session, body: Mapping, now: datetime) -> CounsellorRow:
    version = bump_version(session)  # first: it also makes concurrent creates take turns for the next id
    body = dict(body)
    body.setdefault("id", next_id(session))
    if isinstance(body["id"], str) and session.get(CounsellorRow, body["id"]) is not None:
        raise Conflict(f"counsellor {body['id']} already exists", {"id": ["already exists"]})
    record = normalise(body, None, now=now)
    return _save(session, record, now, version)


def get_row(session, counsellor_id: str, *, lock: bool = False) -> CounsellorRow:
    query = select(CounsellorRow).where(CounsellorRow.id == counsellor_id)
    row = session.scalars(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFound(f"no counsellor {counsellor_id}")
    return row


def update(session, counsellor_id: str, changes: Mapping, now: datetime) -> tuple[CounsellorRow, bool]:
    """The row and whether anything changed (an identical update bumps nothing)."""
    row = get_row(session, counsellor_id, lock=True)
    record = normalise(changes, row.record, now=now)
    if record == row.record:
        return row, False
    return _save(session, record, now, bump_version(session)), True


# -- views ------------------------------------------------------------------------
def view(counsellor: match.Counsellor, *, year: int, load: Mapping[str, int], reveal_phone: bool = False) -> dict:
    """A counsellor for the API: the phone masked unless `reveal_phone`, recusal persons counted only."""
    held = load.get(counsellor.id, 0)
    names = {t.code: t.name for t in townships()}
    record = counsellor.to_record()
    return {
        "id": counsellor.id, "name": counsellor.name, "gender": counsellor.gender,
        "birth_year": counsellor.birth_year, "age": counsellor.age_in(year),
        "age_band": stats.age_band(counsellor.age_in(year)), "occupation": counsellor.occupation,
        "specialities": record["specialities"], "certification": counsellor.certification,
        "township_code": counsellor.township_code, "township": names.get(counsellor.township_code),
        "phone": counsellor.phone if reveal_phone else privacy.mask_phone(counsellor.phone),
        "weekly_capacity": counsellor.weekly_capacity, "load_this_week": held,
        "capacity_left": max(counsellor.weekly_capacity - held, 0),
        "availability": record["availability"],
        "recusal": {"villages": record["recusal"]["villages"], "persons": len(record["recusal"]["persons"])},
        "active": counsellor.active,
    }


def _bool_filter(value: str, name: str) -> bool:
    if value not in ("true", "false"):
        raise Invalid(f"{name} must be true or false", {name: ["true or false"]})
    return value == "true"


def _predicates(filters: Mapping[str, str], year: int):
    unknown = sorted(set(filters) - set(FILTERS))
    if unknown:
        raise Invalid("unknown filter", {name: [f"filters are {', '.join(FILTERS)}"] for name in unknown})
    checks = []
    if "active" in filters:
        active = _bool_filter(filters["active"], "active")
        checks.append(lambda c: c.active == active)
    if "urgent_callout" in filters:
        callout = _bool_filter(filters["urgent_callout"], "urgent_callout")
        checks.append(lambda c: c.urgent_callout == callout)
    if "township" in filters:
        code = township_code(filters["township"])
        if code is None:
            raise Invalid("unknown township", {"township": ["a township code or name"]})
        checks.append(lambda c: c.township_code == code)
    if "age_band" in filters:
        bands = [label for label, _, _ in stats.AGE_BANDS]
        if filters["age_band"] not in bands:
            raise Invalid("unknown age band", {"age_band": [f"one of {', '.join(bands)}"]})
        checks.append(lambda c: stats.age_band(c.age_in(year)) == filters["age_band"])
    for name in ("occupation", "certification", "gender"):
        if name in filters:
            checks.append(lambda c, name=name: getattr(c, name) == filters[name])
    if "speciality" in filters:
        checks.append(lambda c: filters["speciality"] in c.specialities)
    if "q" in filters:
        checks.append(lambda c: filters["q"] in c.name or filters["q"].lower() in c.id.lower())
    return checks


def page_bounds(limit, offset) -> tuple[int, int]:
    try:
        limit, offset = int(limit if limit is not None else 50), int(offset if offset is not None else 0)
    except (TypeError, ValueError):
        raise Invalid("limit and offset must be whole numbers", {"limit": ["integer"], "offset": ["integer"]})
    if not (1 <= limit <= MAX_PAGE) or offset < 0:
        raise Invalid("page out of range", {"limit": [f"1-{MAX_PAGE}"], "offset": [">= 0"]})
    return limit, offset


def list_view(session, filters: Mapping[str, str], limit, offset, now: datetime) -> dict:
    limit, offset = page_bounds(limit, offset)
    year = now.astimezone(LOCAL_TZ).year
    checks = _predicates(filters, year)
    pool = load_pool(session)
    chosen = [c for c in sorted(pool.counsellors(), key=lambda c: c.id) if all(check(c) for check in checks)]
    load = weekly_load(session, now)
    return {
        "items": [view(c, year=year, load=load) for c in chosen[offset:offset + limit]],
        "total": len(chosen), "limit": limit, "offset": offset,
    }


def detail_view(session, counsellor_id: str, now: datetime, *, reveal_phone: bool) -> dict:
    row = get_row(session, counsellor_id)
    counsellor = match.Counsellor.from_record(row.record)
    body = view(counsellor, year=now.astimezone(LOCAL_TZ).year,
                load=weekly_load(session, now, counsellor_id), reveal_phone=reveal_phone)
    body["created_at"] = local(row.created_at).isoformat() if row.created_at else None
    body["updated_at"] = local(row.updated_at).isoformat()
    return body


def statistics(session, now: datetime, *, active_only: bool = False) -> dict:
    pool = load_pool(session)
    return stats.pool_stats(pool.counsellors(), as_of=now.astimezone(LOCAL_TZ).date(), townships=pool.townships,
                            load=weekly_load(session, now), active_only=active_only)
