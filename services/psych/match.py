"""Explainable matching of psychological counsellors to cases.

A case profile is matched against the pool in two steps:
1. hard constraints, in this order: active, not already offered this case, capacity
   left this week, no conflict (recusal village or person), available within the
   required time (hours for urgent cases, days otherwise);
2. soft scores, each worth up to its weight in rules/matching.yaml: speciality fit
   to the dispute type and risk signals, proximity, continuity, load, and the
   party's gender and age preferences.
Every candidate carries its score, its parts and readable reasons (Chinese, for the
coordinator).

The `Pool` groups active counsellors into cells of (home township, specialities).
All members of a cell share their speciality and proximity points, so a cell's best
possible score is known without looking at its members. `match` visits cells from
the best bound down and stops once no remaining cell can beat the current top
`limit`: the result is exactly what scoring everyone would give, at a fraction of
the cost (see `benchmark`).

Pure domain: no nameko, no database; times are aware datetimes passed in.
"""
from __future__ import annotations

import heapq
import json
import math
import random
import statistics
import time
from bisect import bisect_right
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping

import yaml

from services.common.clock import LOCAL_TZ

RULES_PATH = Path(__file__).with_name("rules") / "matching.yaml"
REFERENCE_PATH = Path(__file__).with_name("reference") / "counsellors.json"

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_LABELS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
GENDERS = {"female": "女", "male": "男"}
CRITERIA = ("speciality", "proximity", "continuity", "load", "gender", "age")
WEEK_MINUTES = 7 * 24 * 60
_EPSILON = 1e-9


# --- rules --------------------------------------------------------------------

@lru_cache(maxsize=8)
def _read_rules(path: str) -> dict:
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def load_rules_document(path: str | Path | None = None) -> dict:
    """The whole psych rules file; offers.py and sessions.py read their own sections."""
    return _read_rules(str(path or RULES_PATH))


@dataclass(frozen=True)
class Need:
    """A speciality the case needs, how much it counts, and what asked for it."""
    importance: float
    source: str


@dataclass(frozen=True)
class MatchingRules:
    weights: Mapping[str, float]
    urgent_weights: Mapping[str, float]
    urgent_within: timedelta
    normal_within: timedelta
    near_km: float
    zero_score_km: float
    age_tolerance_years: float
    specialities: tuple[str, ...]
    importance: Mapping[str, float]
    needs_by_dispute_type: Mapping[str, tuple[str, ...]]
    fallback_dispute_type: str
    risk_signals: Mapping[str, tuple[str, tuple[str, ...]]]   # signal -> (label, needs)
    combinations: tuple[tuple[str, str, tuple[str, ...]], ...]  # (dispute type, signal, needs)

    @classmethod
    def from_document(cls, document: Mapping) -> "MatchingRules":
        section = document["matching"]
        weights = {name: float(section["weights"][name]) for name in CRITERIA}
        rules = cls(
            weights=weights,
            urgent_weights={**weights, **{k: float(v) for k, v in section.get("urgent_weights", {}).items()}},
            urgent_within=timedelta(hours=section["availability"]["urgent_within_hours"]),
            normal_within=timedelta(days=section["availability"]["normal_within_days"]),
            near_km=float(section["proximity"]["near_km"]),
            zero_score_km=float(section["proximity"]["zero_score_km"]),
            age_tolerance_years=float(section["preferences"]["age_tolerance_years"]),
            specialities=tuple(section["specialities"]),
            importance={k: float(v) for k, v in section["importance"].items()},
            needs_by_dispute_type={k: tuple(v) for k, v in section["needs_by_dispute_type"].items()},
            fallback_dispute_type=section["fallback_dispute_type"],
            risk_signals={k: (v["label"], tuple(v["needs"])) for k, v in section["risk_signals"].items()},
            combinations=tuple((c["dispute_type"], c["signal"], tuple(c["needs"])) for c in section["combinations"]),
        )
        rules._check()
        return rules

    def _check(self) -> None:
        referenced = [s for needs in self.needs_by_dispute_type.values() for s in needs]
        referenced += [s for _, needs in self.risk_signals.values() for s in needs]
        referenced += [s for _, _, needs in self.combinations for s in needs]
        unknown = sorted(set(referenced) - set(self.specialities))
        if unknown:
            raise ValueError(f"matching rules name specialities missing from the vocabulary: {unknown}")
        if self.fallback_dispute_type not in self.needs_by_dispute_type:
            raise ValueError("fallback_dispute_type must be one of needs_by_dispute_type")
        bad_signals = sorted({s for _, s, _ in self.combinations} - set(self.risk_signals))
        if bad_signals:
            raise ValueError(f"combinations use unknown risk signals: {bad_signals}")

    def weights_for(self, urgent: bool) -> Mapping[str, float]:
        return self.urgent_weights if urgent else self.weights

    def window(self, urgent: bool) -> timedelta:
        return self.urgent_within if urgent else self.normal_within

    def dispute_type_used(self, dispute_type: str) -> str:
        return dispute_type if dispute_type in self.needs_by_dispute_type else self.fallback_dispute_type

    def needs(self, dispute_type: str, risk_signals: Iterable[str]) -> dict[str, Need]:
        """Specialities the case needs; the strongest source of each one wins."""
        dispute_type = self.dispute_type_used(dispute_type)
        signals = [s for s in sorted(risk_signals) if s in self.risk_signals]
        wanted: list[tuple[str, float, str]] = [
            (s, self.importance["dispute_type"], dispute_type) for s in self.needs_by_dispute_type[dispute_type]]
        for signal in signals:
            label, needs = self.risk_signals[signal]
            wanted += [(s, self.importance["risk_signal"], label) for s in needs]
        for combo_type, signal, needs in self.combinations:
            if combo_type == dispute_type and signal in signals:
                source = f"{combo_type}+{self.risk_signals[signal][0]}"
                wanted += [(s, self.importance["combination"], source) for s in needs]
        result: dict[str, Need] = {}
        for speciality, importance, source in wanted:
            if speciality not in result or importance > result[speciality].importance:
                result[speciality] = Need(importance, source)
        return result


def default_rules() -> MatchingRules:
    return _default_rules(str(RULES_PATH))


@lru_cache(maxsize=8)
def _default_rules(path: str) -> MatchingRules:
    return MatchingRules.from_document(load_rules_document(path))


# --- records ------------------------------------------------------------------

class InvalidRecord(ValueError):
    """A counsellor record that cannot be stored; `fields` maps field -> reasons."""

    def __init__(self, fields: dict[str, list[str]]):
        super().__init__("; ".join(f"{k}: {', '.join(v)}" for k, v in fields.items()))
        self.fields = fields


@dataclass(frozen=True)
class Township:
    code: str
    name: str
    lat: float
    lon: float


@dataclass(frozen=True)
class WeeklyHours:
    """Merged weekly slots as [start, end) minutes since Monday 00:00, local time."""
    starts: tuple[int, ...]
    ends: tuple[int, ...]

    @classmethod
    def from_slots(cls, slots: Iterable[tuple[str, str, str]]) -> "WeeklyHours":
        spans = sorted((DAYS.index(day) * 1440 + _minutes(start), DAYS.index(day) * 1440 + _minutes(end))
                       for day, start, end in slots)
        merged: list[list[int]] = []
        for start, end in spans:
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        return cls(tuple(s for s, _ in merged), tuple(e for _, e in merged))

    def wait_minutes(self, minute_of_week: float) -> float | None:
        """Minutes from this moment of the week to the next free time; None if never free."""
        if not self.starts:
            return None
        index = bisect_right(self.starts, minute_of_week) - 1
        if index >= 0 and minute_of_week < self.ends[index]:
            return 0.0
        if index + 1 < len(self.starts):
            return self.starts[index + 1] - minute_of_week
        return self.starts[0] + WEEK_MINUTES - minute_of_week


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    value = int(hours) * 60 + int(minutes)
    if not (0 <= int(minutes) < 60 and 0 <= value <= 1440):
        raise ValueError(hhmm)
    return value


def _minute_of_week(when: datetime) -> float:
    local = when.astimezone(LOCAL_TZ)
    return local.weekday() * 1440 + local.hour * 60 + local.minute + local.second / 60


@dataclass(frozen=True)
class Counsellor:
    id: str
    name: str
    gender: str
    birth_year: int
    occupation: str
    specialities: frozenset[str]
    certification: str
    township_code: str
    phone: str
    weekly_capacity: int
    slots: tuple[tuple[str, str, str], ...]          # (day, "HH:MM", "HH:MM"), local time
    urgent_callout: bool
    callout_response_minutes: int | None
    away_until: datetime | None
    recusal_villages: frozenset[str]
    recusal_persons: frozenset[str]                   # keyed hashes of people
    active: bool
    hours: WeeklyHours = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "hours", WeeklyHours.from_slots(self.slots))

    def age_in(self, year: int) -> int:
        return year - self.birth_year

    @classmethod
    def from_record(cls, record: Mapping) -> "Counsellor":
        """Parse the stored/JSON shape (see reference/README.md); raises InvalidRecord."""
        problems: dict[str, list[str]] = defaultdict(list)

        def take(name, kind):
            value = record.get(name)
            if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
                problems[name].append(f"must be {getattr(kind, '__name__', kind)}")
                return None
            return value

        availability = take("availability", dict) or {}
        recusal = record.get("recusal") or {}
        slots = []
        for slot in availability.get("slots") or []:
            try:
                start, end = _minutes(slot["start"]), _minutes(slot["end"])
                if slot["day"] not in DAYS or end <= start:
                    raise ValueError
                slots.append((slot["day"], slot["start"], slot["end"]))
            except (KeyError, ValueError, TypeError, AttributeError):
                problems["availability.slots"].append(f"invalid slot {slot!r}: day mon..sun, start < end, HH:MM")
        away_until = availability.get("away_until")
        if away_until is not None:
            try:
                away_until = away_until if isinstance(away_until, datetime) else datetime.fromisoformat(away_until)
                if away_until.tzinfo is None:
                    raise ValueError
            except (TypeError, ValueError):
                problems["availability.away_until"].append("must be an ISO 8601 time with offset")
        callout = bool(availability.get("urgent_callout", False))
        response = availability.get("callout_response_minutes")
        if callout and not (isinstance(response, int) and response > 0):
            problems["availability.callout_response_minutes"].append("required (minutes > 0) with urgent_callout")
        gender = take("gender", str)
        if gender is not None and gender not in GENDERS:
            problems["gender"].append(f"one of {sorted(GENDERS)}")
        capacity = take("weekly_capacity", int)
        if capacity is not None and capacity < 0:
            problems["weekly_capacity"].append("must be >= 0")
        specialities = take("specialities", list)
        values = dict(
            id=take("id", str), name=take("name", str), gender=gender, birth_year=take("birth_year", int),
            occupation=take("occupation", str), specialities=frozenset(specialities or ()),
            certification=take("certification", str), township_code=take("township_code", str),
            phone=take("phone", str), weekly_capacity=capacity, slots=tuple(slots),
            urgent_callout=callout, callout_response_minutes=response if callout else None,
            away_until=away_until, recusal_villages=frozenset(recusal.get("villages") or ()),
            recusal_persons=frozenset(recusal.get("persons") or ()), active=bool(record.get("active", True)),
        )
        if problems:
            raise InvalidRecord(dict(problems))
        return cls(**values)

    def to_record(self) -> dict:
        return {
            "id": self.id, "name": self.name, "gender": self.gender, "birth_year": self.birth_year,
            "occupation": self.occupation, "specialities": sorted(self.specialities),
            "certification": self.certification, "township_code": self.township_code, "phone": self.phone,
            "weekly_capacity": self.weekly_capacity,
            "availability": {
                "slots": [{"day": d, "start": s, "end": e} for d, s, e in self.slots],
                "urgent_callout": self.urgent_callout,
                "callout_response_minutes": self.callout_response_minutes,
                "away_until": self.away_until.isoformat() if self.away_until else None,
            },
            "recusal": {"villages": sorted(self.recusal_villages), "persons": sorted(self.recusal_persons)},
            "active": self.active,
        }


def validate_record(record: Mapping, *, townships: Mapping[str, Township],
                    rules: MatchingRules | None = None) -> dict[str, list[str]]:
    """Problems per field for the gateway's 400 answer; empty when the record is valid."""
    return _checked(record, townships, rules or default_rules())[1]


def _checked(record: Mapping, townships: Mapping[str, Township],
             rules: MatchingRules) -> tuple[Counsellor | None, dict[str, list[str]]]:
    """The parsed counsellor (None if it cannot be parsed) and every problem found, all at once."""
    try:
        counsellor, problems = Counsellor.from_record(record), {}
    except InvalidRecord as invalid:
        counsellor, problems = None, dict(invalid.fields)
    if isinstance(record.get("township_code"), str) and record["township_code"] not in townships:
        problems["township_code"] = ["unknown township code"]
    specialities = record.get("specialities")
    if isinstance(specialities, list):
        unknown = sorted(set(specialities) - set(rules.specialities))
        if unknown or not specialities:
            problems["specialities"] = [f"unknown: {unknown}" if unknown else "at least one"]
    return counsellor, problems


def load_reference(path: str | Path | None = None) -> tuple[list[Township], list[dict]]:
    """Townships and counsellor records from the sample file (or another in its shape)."""
    document = json.loads(Path(path or REFERENCE_PATH).read_text(encoding="utf-8"))
    townships = [Township(t["code"], t["name"], t["lat"], t["lon"]) for t in document["townships"]]
    return townships, document["counsellors"]


# --- the case -----------------------------------------------------------------

@dataclass(frozen=True)
class CaseProfile:
    """What matching needs to know about a case; built from psych_requested / case_urgent."""
    case_no: str
    dispute_type: str
    township_code: str
    risk_signals: frozenset[str] = frozenset()      # extreme_risk, grief, mass_risk, minors, elderly ...
    village: str | None = None
    party_hashes: frozenset[str] = frozenset()      # keyed hashes of the parties (privacy.keyed_hash)
    preferred_gender: str | None = None             # "female" | "male"
    preferred_age: tuple[int, int] | None = None    # inclusive band, e.g. (40, 55)
    urgent: bool = False
    previous_counsellor_ids: frozenset[str] = frozenset()

    def __post_init__(self):
        for name in ("risk_signals", "party_hashes", "previous_counsellor_ids"):
            object.__setattr__(self, name, frozenset(getattr(self, name) or ()))
        if self.preferred_age is not None:
            low, high = self.preferred_age
            if low > high:
                raise ValueError("preferred_age must be (low, high) with low <= high")
            object.__setattr__(self, "preferred_age", (int(low), int(high)))
        if self.preferred_gender not in (None, *GENDERS):
            raise ValueError(f"preferred_gender must be one of {sorted(GENDERS)} or None")

    @classmethod
    def from_dict(cls, data: Mapping) -> "CaseProfile":
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


# --- the pool -----------------------------------------------------------------

def _haversine_km(a: Township, b: Township) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (a.lat, a.lon, b.lat, b.lon))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))


class Pool:
    """All counsellors, indexed for matching; built once and kept up to date incrementally."""

    def __init__(self, townships: Iterable[Township], records: Iterable[Mapping | Counsellor] = (), *,
                 rules: MatchingRules | None = None):
        self.townships: dict[str, Township] = {t.code: t for t in townships}
        self.rules = rules or default_rules()
        self._distance = {(a.code, b.code): _haversine_km(a, b)
                          for a in self.townships.values() for b in self.townships.values()}
        self._records: dict[str, Counsellor] = {}
        self._cells: dict[tuple[str, frozenset[str]], set[str]] = defaultdict(set)  # active counsellors only
        self._by_village: dict[str, set[str]] = defaultdict(set)
        self._by_person: dict[str, set[str]] = defaultdict(set)
        for record in records:
            self.upsert(record)

    @classmethod
    def from_reference(cls, path: str | Path | None = None, *, rules: MatchingRules | None = None) -> "Pool":
        townships, records = load_reference(path)
        return cls(townships, records, rules=rules)

    def __len__(self) -> int:
        return len(self._records)

    def get(self, counsellor_id: str) -> Counsellor | None:
        return self._records.get(counsellor_id)

    def counsellors(self) -> list[Counsellor]:
        return list(self._records.values())

    def distance_km(self, township_a: str, township_b: str) -> float:
        return self._distance[(township_a, township_b)]

    def upsert(self, record: Mapping | Counsellor) -> Counsellor:
        """Add or replace one counsellor; raises InvalidRecord for a record the pool cannot use."""
        if isinstance(record, Counsellor):
            record = record.to_record()
        counsellor, problems = _checked(record, self.townships, self.rules)
        if problems:
            raise InvalidRecord(problems)
        self._unindex(counsellor.id)
        self._records[counsellor.id] = counsellor
        if counsellor.active:
            self._cells[(counsellor.township_code, counsellor.specialities)].add(counsellor.id)
        for village in counsellor.recusal_villages:
            self._by_village[village].add(counsellor.id)
        for person in counsellor.recusal_persons:
            self._by_person[person].add(counsellor.id)
        return counsellor

    def deactivate(self, counsellor_id: str) -> Counsellor:
        """Take a counsellor out of matching, keeping the record (and its statistics)."""
        current = self._records[counsellor_id]
        return self.upsert(replace(current, active=False))

    def _unindex(self, counsellor_id: str) -> None:
        old = self._records.pop(counsellor_id, None)
        if old is None:
            return
        cell_key = (old.township_code, old.specialities)
        cell = self._cells.get(cell_key)
        if cell is not None:
            cell.discard(counsellor_id)
            if not cell:
                del self._cells[cell_key]
        for index, keys in ((self._by_village, old.recusal_villages), (self._by_person, old.recusal_persons)):
            for key in keys:
                index[key].discard(counsellor_id)
                if not index[key]:
                    del index[key]


# --- matching -----------------------------------------------------------------

@dataclass(frozen=True)
class Candidate:
    counsellor_id: str
    score: float                       # sum of parts, rounded to 0.1
    reasons: tuple[str, ...]           # readable, one per criterion, with its points
    parts: Mapping[str, float]         # criterion -> points
    available_from: datetime           # earliest time the counsellor can act on the case

    def to_dict(self) -> dict:
        return {"counsellor_id": self.counsellor_id, "score": self.score, "reasons": list(self.reasons),
                "parts": dict(self.parts), "available_from": self.available_from.isoformat()}


HARD_CONSTRAINTS = {  # failure code -> label, in the order they are checked
    "inactive": "停用",
    "already_offered": "已邀请过",
    "full": "本周已满",
    "conflict": "需回避",
    "unavailable": "时间不合",
}


class _Query:
    """Everything one match call computes once, then applies to many counsellors."""

    def __init__(self, profile: CaseProfile, pool: Pool, now: datetime, rules: MatchingRules,
                 load: Mapping[str, int] | None, exclude: Iterable[str]):
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        if profile.township_code not in pool.townships:
            raise ValueError(f"unknown township code {profile.township_code!r}")
        self.profile, self.pool, self.now, self.rules = profile, pool, now, rules
        self.weights = rules.weights_for(profile.urgent)
        self.window_minutes = rules.window(profile.urgent).total_seconds() / 60
        self.minute_of_week = _minute_of_week(now)
        self.year = now.astimezone(LOCAL_TZ).year
        self.load = load or {}
        self.exclude = frozenset(exclude)
        self.needs = rules.needs(profile.dispute_type, profile.risk_signals)
        self.total_importance = sum(n.importance for n in self.needs.values())
        self.conflicted = set(pool._by_village.get(profile.village, ())) if profile.village else set()
        for person in profile.party_hashes:
            self.conflicted |= pool._by_person.get(person, set())
        zero_km, weight = rules.zero_score_km, self.weights["proximity"]
        self.proximity = {code: weight * max(0.0, 1 - pool.distance_km(code, profile.township_code) / zero_km)
                          for code in pool.townships}
        self.preference_ceiling = (self.weights["gender"] if profile.preferred_gender else 0.0) + \
                                  (self.weights["age"] if profile.preferred_age else 0.0)
        self._speciality_memo: dict[frozenset[str], float] = {}

    def speciality_points(self, specialities: frozenset[str]) -> float:
        points = self._speciality_memo.get(specialities)
        if points is None:
            covered = sum(need.importance for s, need in self.needs.items() if s in specialities)
            points = self.weights["speciality"] * covered / self.total_importance if self.total_importance else 0.0
            self._speciality_memo[specialities] = points
        return points

    def cell_bound(self, township_code: str, specialities: frozenset[str]) -> float:
        return (self.speciality_points(specialities) + self.proximity[township_code]
                + self.preference_ceiling + self.weights["load"])

    def availability(self, counsellor: Counsellor) -> tuple[float, bool] | None:
        """(minutes until the counsellor can act on this case, whether by urgent call-out), or None."""
        delay = 0.0
        minute = self.minute_of_week
        if counsellor.away_until and counsellor.away_until > self.now:
            delay = (counsellor.away_until - self.now).total_seconds() / 60
            minute = _minute_of_week(counsellor.away_until)
        options = []
        slot_wait = counsellor.hours.wait_minutes(minute)
        if slot_wait is not None:
            options.append((delay + slot_wait, False))
        if self.profile.urgent and counsellor.urgent_callout:
            options.append((delay + counsellor.callout_response_minutes, True))
        return min(options) if options else None

    def failure(self, counsellor: Counsellor) -> tuple[str | None, tuple[float, bool] | None]:
        """The first hard constraint the counsellor fails (None if none), and its availability."""
        if not counsellor.active:
            return "inactive", None
        if counsellor.id in self.exclude:
            return "already_offered", None
        if self.load.get(counsellor.id, 0) >= counsellor.weekly_capacity:
            return "full", None
        if counsellor.id in self.conflicted:
            return "conflict", None
        availability = self.availability(counsellor)
        if availability is None or availability[0] > self.window_minutes:
            return "unavailable", availability
        return None, availability

    def parts(self, counsellor: Counsellor) -> dict[str, float]:
        profile, weights = self.profile, self.weights
        capacity = counsellor.weekly_capacity
        parts = {
            "speciality": self.speciality_points(counsellor.specialities),
            "proximity": self.proximity[counsellor.township_code],
            "continuity": weights["continuity"] if counsellor.id in profile.previous_counsellor_ids else 0.0,
            "load": weights["load"] * (capacity - self.load.get(counsellor.id, 0)) / capacity,
            "gender": 0.0,
            "age": 0.0,
        }
        if profile.preferred_gender and counsellor.gender == profile.preferred_gender:
            parts["gender"] = weights["gender"]
        if profile.preferred_age:
            outside = self._years_outside(counsellor.age_in(self.year))
            parts["age"] = weights["age"] * max(0.0, 1 - outside / self.rules.age_tolerance_years)
        return parts

    def _years_outside(self, age: int) -> int:
        low, high = self.profile.preferred_age
        return max(low - age, age - high, 0)

    def reasons(self, counsellor: Counsellor, parts: Mapping[str, float],
                availability: tuple[float, bool]) -> tuple[str, ...]:
        profile, weights = self.profile, self.weights

        def points(name: str) -> str:
            return f"+{parts[name]:.1f}/{weights[name]:g}"

        reasons = [self._speciality_reason(counsellor, points("speciality"))]
        case_town = self.pool.townships[profile.township_code].name
        if counsellor.township_code == profile.township_code:
            reasons.append(f"距离 {points('proximity')}：同在{case_town}")
        else:
            km = self.pool.distance_km(counsellor.township_code, profile.township_code)
            home = self.pool.townships[counsellor.township_code].name
            reasons.append(f"距离 {points('proximity')}：住{home}，距{case_town}约 {km:.0f} 公里")
        taken = self.load.get(counsellor.id, 0)
        reasons.append(f"负荷 {points('load')}：本周已接 {taken} 件，每周可接 {counsellor.weekly_capacity} 件")
        if counsellor.id in profile.previous_counsellor_ids:
            reasons.append(f"连续性 {points('continuity')}：曾为该当事人提供服务")
        if profile.preferred_gender:
            verdict = "符合当事人偏好" if parts["gender"] else f"当事人偏好{GENDERS[profile.preferred_gender]}"
            reasons.append(f"性别 {points('gender')}：{GENDERS[counsellor.gender]}，{verdict}")
        if profile.preferred_age:
            age, (low, high) = counsellor.age_in(self.year), profile.preferred_age
            where = "在" if not self._years_outside(age) else "不在"
            reasons.append(f"年龄 {points('age')}：{age} 岁，{where}偏好 {low}–{high} 岁内")
        reasons.append(self._availability_reason(counsellor, *availability))
        return tuple(reasons)

    def _speciality_reason(self, counsellor: Counsellor, points: str) -> str:
        fallback = self.rules.dispute_type_used(self.profile.dispute_type) != self.profile.dispute_type
        note = f"（纠纷类型“{self.profile.dispute_type}”未配置，按“{self.rules.fallback_dispute_type}”匹配）" \
            if fallback else ""
        if not self.needs:
            return f"专长 {points}：本案无特定专长需求{note}"
        ordered = sorted(self.needs.items(), key=lambda item: (-item[1].importance, item[0]))
        have = [f"{s}（{n.source}）" for s, n in ordered if s in counsellor.specialities]
        lack = [f"{s}（{n.source}）" for s, n in ordered if s not in counsellor.specialities]
        text = "；".join(part for part in (
            "具备 " + "、".join(have) if have else "",
            "未具备 " + "、".join(lack) if lack else "") if part)
        return f"专长 {points}：{text}{note}"

    def _availability_reason(self, counsellor: Counsellor, wait: float, by_callout: bool) -> str:
        if by_callout:
            return f"可约时间：接受应急出勤，约 {counsellor.callout_response_minutes} 分钟内到场"
        if wait == 0:
            return "可约时间：当前在排班时间内"
        start = (self.now + timedelta(minutes=wait)).astimezone(LOCAL_TZ)
        return f"可约时间：{DAY_LABELS[start.weekday()]} {start:%m-%d %H:%M} 起"


def match(profile: CaseProfile, pool: Pool, now: datetime, *, load: Mapping[str, int] | None = None,
          exclude: Iterable[str] = (), config: MatchingRules | None = None, limit: int = 10) -> list[Candidate]:
    """The best `limit` counsellors for the case, ranked by score (ties: by id).

    `load`: cases each counsellor already holds this week (counsellor_id -> count).
    `exclude`: counsellors already offered this case (declined, timed out, withdrawn).
    """
    if limit <= 0:
        return []
    query = _Query(profile, pool, now, config or pool.rules, load, exclude)
    feasible: list[tuple[float, str, dict[str, float], tuple[float, bool]]] = []
    best_scores: list[float] = []  # min-heap of the top `limit` scores seen

    def consider(counsellor: Counsellor) -> None:
        failure, availability = query.failure(counsellor)
        if failure:
            return
        parts = query.parts(counsellor)
        score = round(sum(parts.values()), 9)
        feasible.append((score, counsellor.id, parts, availability))
        if len(best_scores) < limit:
            heapq.heappush(best_scores, score)
        elif score > best_scores[0]:
            heapq.heapreplace(best_scores, score)

    # A returning party's counsellors get a continuity bonus no cell bound includes.
    seen = set()
    for counsellor_id in sorted(profile.previous_counsellor_ids):
        counsellor = pool.get(counsellor_id)
        if counsellor is not None:
            consider(counsellor)
            seen.add(counsellor_id)

    cells = sorted(((query.cell_bound(*key), key) for key in pool._cells), key=lambda item: -item[0])
    for bound, key in cells:
        if len(best_scores) >= limit and bound + _EPSILON < best_scores[0]:
            break
        for counsellor_id in pool._cells[key]:
            if counsellor_id not in seen:
                consider(pool._records[counsellor_id])

    feasible.sort(key=lambda item: (-item[0], item[1]))
    return [Candidate(counsellor_id=cid, score=round(score, 1), parts={k: round(v, 2) for k, v in parts.items()},
                      reasons=query.reasons(pool._records[cid], parts, availability),
                      available_from=now + timedelta(minutes=availability[0]))
            for score, cid, parts, availability in feasible[:limit]]


def check(profile: CaseProfile, pool: Pool, now: datetime, counsellor_id: str, *,
          load: Mapping[str, int] | None = None, config: MatchingRules | None = None) -> str | None:
    """The first hard constraint (a HARD_CONSTRAINTS code) one counsellor fails for the case, or None.

    For the service's second look at someone already chosen: a case turning urgent while
    an offer is open, or a coordinator naming a counsellor by hand.
    """
    counsellor = pool.get(counsellor_id)
    if counsellor is None:
        raise KeyError(counsellor_id)
    return _Query(profile, pool, now, config or pool.rules, load, ()).failure(counsellor)[0]


def _window_text(window: timedelta) -> str:
    hours = window.total_seconds() / 3600
    return f"{hours / 24:g} 天" if hours >= 24 and hours % 24 == 0 else f"{hours:g} 小时"


def explain_no_match(profile: CaseProfile, pool: Pool, now: datetime, *, load: Mapping[str, int] | None = None,
                     exclude: Iterable[str] = (), config: MatchingRules | None = None) -> str:
    """Why nobody is available, counted by the first hard constraint each counsellor fails.

    Meant for `psych_unmatched`: it scans the whole pool, which only the rare no-match path needs.
    """
    rules = config or pool.rules
    query = _Query(profile, pool, now, rules, load, exclude)
    near, county = Counter(), Counter()
    for counsellor in pool.counsellors():
        failure = query.failure(counsellor)[0] or "available"
        county[failure] += 1
        if pool.distance_km(counsellor.township_code, profile.township_code) <= rules.near_km:
            near[failure] += 1

    def summary(counts: Counter) -> str:
        details = [f"{label} {counts[code]} 人" for code, label in HARD_CONSTRAINTS.items() if counts[code]]
        details.append(f"可用 {counts['available']} 人")
        return f"在册 {sum(counts.values())} 人（{'、'.join(details)}）"

    window = _window_text(rules.window(profile.urgent))
    town = pool.townships[profile.township_code].name
    if not county["available"]:
        headline = f"{window}内没有可用的心理咨询师"
    elif not near["available"]:
        headline = f"{town}及附近 {window}内没有可用的心理咨询师，全县其他地方仍有 {county['available']} 人"
    else:
        headline = f"{window}内仍有可用的心理咨询师"
    return f"{headline}：{town}及附近（{rules.near_km:g} 公里内）{summary(near)}；全县{summary(county)}"


# --- benchmark ----------------------------------------------------------------

def _scaled_records(records: list[dict], factor: int, rng: random.Random, township_codes: list[str]) -> list[dict]:
    """Clones of the pool with new ids and shuffled home townships."""
    clones = []
    for copy in range(factor):
        for record in records:
            clone = json.loads(json.dumps(record))
            clone["id"] = f"{record['id']}-x{copy:03d}"
            clone["township_code"] = rng.choice(township_codes)
            clones.append(clone)
    return clones


def _sample_profiles(count: int, rng: random.Random, rules: MatchingRules, township_codes: list[str],
                     counsellor_ids: list[str], start: datetime) -> list[tuple[CaseProfile, datetime]]:
    dispute_types = list(rules.needs_by_dispute_type)
    signals = list(rules.risk_signals)
    profiles = []
    for n in range(count):
        township = rng.choice(township_codes)
        profile = CaseProfile(
            case_no=f"371324-20250601-{n:06d}",
            dispute_type=rng.choice(dispute_types),
            township_code=township,
            risk_signals=frozenset(rng.sample(signals, rng.choice((0, 1, 1, 2)))),
            village=f"{township}-{rng.randint(1, 60):03d}",
            party_hashes=frozenset(f"{rng.getrandbits(256):064x}" for _ in range(2)),
            preferred_gender=rng.choice((None, None, "female", "male")),
            preferred_age=rng.choice((None, None, (30, 45), (45, 60))),
            urgent=rng.random() < 0.3,
            previous_counsellor_ids=frozenset(rng.sample(counsellor_ids, 1)) if rng.random() < 0.2 else frozenset(),
        )
        profiles.append((profile, start + timedelta(minutes=rng.randrange(WEEK_MINUTES))))
    return profiles


def _p(samples: list[float], percentile: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[percentile - 1]


def benchmark(queries: int = 400, seed: int = 20250601) -> dict:
    """Matching latency on the sample pool (248) and on it scaled x100 (24,800), in ms.

    Each query is a random profile (30% urgent, random risk signals, preferences,
    continuity) at a random time of the week, with random weekly loads.
    """
    rng = random.Random(seed)
    townships, records = load_reference()
    codes = [t.code for t in townships]
    start = datetime(2025, 6, 2, tzinfo=LOCAL_TZ)
    figures = {}
    for label, pool_records in (("248", records), ("24800", _scaled_records(records, 100, rng, codes))):
        began = time.perf_counter()
        pool = Pool(townships, pool_records)
        figures[f"psych_pool_build_ms_{label}"] = round((time.perf_counter() - began) * 1000, 1)
        ids = [r["id"] for r in pool_records]
        load = {cid: rng.randint(0, 3) for cid in rng.sample(ids, len(ids) // 2)}
        samples = []
        for profile, now in _sample_profiles(queries, rng, pool.rules, codes, ids, start):
            began = time.perf_counter()
            match(profile, pool, now, load=load)
            samples.append((time.perf_counter() - began) * 1000)
        figures[f"psych_match_p50_ms_{label}"] = round(_p(samples, 50), 2)
        figures[f"psych_match_p99_ms_{label}"] = round(_p(samples, 99), 2)
    return figures


if __name__ == "__main__":
    print(json.dumps(benchmark(), indent=2))
