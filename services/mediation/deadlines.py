"""Deadlines in Chinese working days, and the time limits of each kind of case.

Working days come from the official calendar (chinese-calendar: holidays off,
make-up weekend days on). For a year the package does not know (1.11 knows
2004-2026) the county's own file `rules/holidays.yaml` is used on top of
Monday-Friday; either way one warning is logged per year and nothing raises.

Counting follows the civil code (民法典 第二百零一条, 第二百零三条): the day a
period starts is not counted, and a period ends at the close of business on
its last day. Every deadline is returned as an aware UTC datetime that falls
at the office closing time (17:30 by default) in Asia/Shanghai.

    calendar = default_calendar()
    due = calendar.add_working_days(assigned_at, 7)
    limits = default_limits().limits_for("township", "chain", "hotline")
    due = limits.handling.after(assigned_at, calendar)

The module-level functions use the default rules directory (this package's
`rules/`, or MEDIATION_RULES_DIR), loaded on first use, never at import.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import chinese_calendar
import yaml

log = logging.getLogger(__name__)

RULES_DIR = Path(__file__).resolve().parent / "rules"
SHANGHAI = ZoneInfo("Asia/Shanghai")
PERIOD = re.compile(r"^\s*(\d+)\s+(working|calendar)\s+days?\s*$")


def rules_dir() -> Path:
    return Path(os.environ.get("MEDIATION_RULES_DIR") or RULES_DIR)


def _require_aware(instant: datetime) -> None:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"naive datetime {instant!r}: pass an aware datetime (UTC as stored)")


def _parse_clock(text: str) -> time:
    hours, minutes = str(text).split(":")
    return time(int(hours), int(minutes))


def _expand_dates(entries: list[Any] | None) -> set[date]:
    """YAML dates or "YYYY-MM-DD..YYYY-MM-DD" ranges (inclusive) -> a set of dates."""
    days: set[date] = set()
    for entry in entries or ():
        if isinstance(entry, date):
            days.add(entry)
            continue
        first, _, last = str(entry).partition("..")
        start = date.fromisoformat(first.strip())
        end = date.fromisoformat(last.strip()) if last else start
        days.update(start + timedelta(days=i) for i in range((end - start).days + 1))
    return days


@dataclass(frozen=True)
class YearOverride:
    """A year from the county's holiday file."""
    days_off: frozenset[date]
    makeup_workdays: frozenset[date]
    provisional: bool
    source: str


class WorkingCalendar:
    """The official working-day calendar, with the county's file for unknown years.

    A working day runs from `opens` to `closes`, local time in `tz`.
    """

    def __init__(self, county_years: dict[int, YearOverride] | None = None, *,
                 tz: ZoneInfo = SHANGHAI, opens: time = time(8, 30), closes: time = time(17, 30),
                 roll_forward: bool = True):
        self.county_years = county_years or {}
        self.tz = tz
        self.opens = opens
        self.closes = closes
        self.roll_forward = roll_forward
        self._warned_years: set[int] = set()
        self._working_days: dict[date, bool] = {}

    @classmethod
    def from_files(cls, holidays_file: Path, limits_file: Path | None = None) -> WorkingCalendar:
        raw = yaml.safe_load(holidays_file.read_text(encoding="utf-8")) or {}
        county_years = {
            int(year): YearOverride(
                days_off=frozenset(_expand_dates(spec.get("days_off"))),
                makeup_workdays=frozenset(_expand_dates(spec.get("makeup_workdays"))),
                provisional=bool(spec.get("provisional", False)),
                source=str(spec.get("source", "")).strip(),
            )
            for year, spec in raw.items()
        }
        settings: dict[str, Any] = {}
        if limits_file is not None:
            settings = yaml.safe_load(limits_file.read_text(encoding="utf-8")) or {}
        hours = settings.get("office_hours", {})
        return cls(
            county_years,
            tz=ZoneInfo(settings.get("timezone", "Asia/Shanghai")),
            opens=_parse_clock(hours.get("opens", "08:30")),
            closes=_parse_clock(hours.get("closes", "17:30")),
            roll_forward=bool(settings.get("calendar_days_roll_forward", True)),
        )

    # --- days -------------------------------------------------------------

    def is_working_day(self, day: date) -> bool:
        # Cached: chinese_calendar validates the year range on every call, which
        # dominates the timer's cost; a county calendar has a few thousand days.
        known = self._working_days.get(day)
        if known is None:
            try:
                known = chinese_calendar.is_workday(day)
            except NotImplementedError:
                known = self._fallback_is_working_day(day)
            self._working_days[day] = known
        return known

    def _fallback_is_working_day(self, day: date) -> bool:
        override = self.county_years.get(day.year)
        self._warn_once(day.year, override)
        if override is not None:
            if day in override.makeup_workdays:
                return True
            if day in override.days_off:
                return False
        return day.weekday() < 5

    def _warn_once(self, year: int, override: YearOverride | None) -> None:
        if year in self._warned_years:
            return
        self._warned_years.add(year)
        if override is None:
            log.warning("chinese-calendar has no data for %s and rules/holidays.yaml has no entry: "
                        "counting Monday-Friday only; add the year to holidays.yaml", year)
        elif override.provisional:
            log.warning("chinese-calendar has no data for %s: using the PROVISIONAL county list in "
                        "rules/holidays.yaml; replace it once the State Council publishes %s", year, year)
        else:
            log.warning("chinese-calendar has no data for %s: using the county list in "
                        "rules/holidays.yaml (%s)", year, override.source or "no source given")

    def next_working_day(self, day: date) -> date:
        """The first working day strictly after `day`."""
        day += timedelta(days=1)
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return day

    # --- instants ---------------------------------------------------------

    def local(self, instant: datetime, tz: ZoneInfo | None = None) -> datetime:
        _require_aware(instant)
        return instant.astimezone(tz or self.tz)

    def close_of(self, day: date, tz: ZoneInfo | None = None) -> datetime:
        """Close of business on `day`, as an aware UTC datetime."""
        return datetime.combine(day, self.closes, tzinfo=tz or self.tz).astimezone(timezone.utc)

    def opening_of(self, day: date, tz: ZoneInfo | None = None) -> datetime:
        return datetime.combine(day, self.opens, tzinfo=tz or self.tz).astimezone(timezone.utc)

    def add_working_days(self, start: datetime, n: int, tz: ZoneInfo | None = None) -> datetime:
        """Close of business on the n-th working day after `start`'s local date.

        n == 0 means the same working day: today's close if today is a working
        day and it is not yet closing time, else the next working day's close.
        """
        if n < 0:
            raise ValueError("n must be >= 0")
        local = self.local(start, tz)
        day = local.date()
        if n == 0:
            if self.is_working_day(day) and local.timetz().replace(tzinfo=None) < self.closes:
                return self.close_of(day, tz)
            return self.close_of(self.next_working_day(day), tz)
        for _ in range(n):
            day = self.next_working_day(day)
        return self.close_of(day, tz)

    def add_calendar_days(self, start: datetime, n: int, tz: ZoneInfo | None = None) -> datetime:
        """Close of business on the n-th calendar day after `start`'s local date.

        When that day is not a working day and roll_forward is on (民法典 第二百零三条),
        the period ends on the next working day instead.
        """
        if n < 0:
            raise ValueError("n must be >= 0")
        day = self.local(start, tz).date() + timedelta(days=n)
        if self.roll_forward and not self.is_working_day(day):
            day = self.next_working_day(day)
        return self.close_of(day, tz)

    def working_days_between(self, start: datetime, end: datetime, tz: ZoneInfo | None = None) -> int:
        """Working days d with start's local date < d <= end's local date; negative if end < start.

        The inverse of add_working_days: working_days_between(s, add_working_days(s, n)) == n for n >= 1.
        """
        first, last = self.local(start, tz).date(), self.local(end, tz).date()
        sign = 1
        if last < first:
            first, last, sign = last, first, -1
        count = sum(1 for i in range(1, (last - first).days + 1)
                    if self.is_working_day(first + timedelta(days=i)))
        return sign * count

    def _office_windows(self, start: datetime, tz: ZoneInfo | None = None):
        """(opening, closing) UTC pairs of every working day from `start`'s local date on."""
        day = self.local(start, tz).date()
        while True:
            if self.is_working_day(day):
                yield self.opening_of(day, tz), self.close_of(day, tz)
            day += timedelta(days=1)

    def working_time_between(self, start: datetime, end: datetime, tz: ZoneInfo | None = None) -> timedelta:
        """Office hours on working days between two instants (zero if end <= start)."""
        total = timedelta(0)
        if end <= start:
            return total
        for opening, closing in self._office_windows(start, tz):
            if opening >= end:
                return total
            total += max(min(closing, end) - max(opening, start), timedelta(0))

    def add_working_time(self, start: datetime, duration: timedelta, tz: ZoneInfo | None = None) -> datetime:
        """The instant when `duration` of office hours on working days has passed since `start`.

        So "75% of a 7-working-day limit" across Spring Festival falls late in
        the limit, not on the first day back.
        """
        if duration <= timedelta(0):
            return start.astimezone(timezone.utc)
        remaining = duration
        for opening, closing in self._office_windows(start, tz):
            window_start = max(opening, start)
            if window_start >= closing:
                continue
            if remaining <= closing - window_start:
                return window_start + remaining
            remaining -= closing - window_start
        raise AssertionError("unreachable: the calendar has no end")


# --- time limits ---------------------------------------------------------------

@dataclass(frozen=True)
class Period:
    """A length of time counted in working days or calendar days."""
    amount: int
    unit: Literal["working", "calendar"]

    @classmethod
    def parse(cls, text: str | None) -> Period | None:
        if text is None:
            return None
        match = PERIOD.match(str(text))
        if not match:
            raise ValueError(f"period {text!r}: write '<N> working days' or '<N> calendar days'")
        return cls(int(match.group(1)), match.group(2))  # type: ignore[arg-type]

    def after(self, start: datetime, calendar: WorkingCalendar) -> datetime:
        if self.unit == "working":
            return calendar.add_working_days(start, self.amount)
        return calendar.add_calendar_days(start, self.amount)

    def __str__(self) -> str:
        return f"{self.amount} {self.unit} days"


@dataclass(frozen=True)
class Limits:
    """The limits that apply to one case; `basis` names the rules that set them."""
    sign_off: Period
    handling: Period
    extension: Period | None
    max_extensions: int
    restart_on_reassignment: bool
    basis: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {
            "sign_off": str(self.sign_off), "handling": str(self.handling),
            "extension": str(self.extension) if self.extension else None,
            "max_extensions": self.max_extensions,
            "restart_on_reassignment": self.restart_on_reassignment, "basis": list(self.basis),
        }


_PERIOD_FIELDS = {"sign_off", "handling", "extension"}
_MATCH_KEYS = {"level", "mechanism", "channel", "dispute_type"}


def _coerce(name: str, value: Any) -> Any:
    if name in _PERIOD_FIELDS:
        return Period.parse(value)
    if name == "max_extensions":
        return int(value)
    if name == "restart_on_reassignment":
        return bool(value)
    raise ValueError(f"unknown limit field {name!r}")


@dataclass(frozen=True)
class LimitRule:
    name: str
    when: dict[str, str]
    changes: dict[str, Any]
    why: str

    def matches(self, case: dict[str, str | None]) -> bool:
        return all(case.get(key) == value for key, value in self.when.items())


class LimitTable:
    """`base` limits refined by an ordered list of rules (later matching rules win)."""

    def __init__(self, base: Limits, rules: list[LimitRule]):
        self.base = base
        self.rules = rules

    @classmethod
    def from_file(cls, path: Path) -> LimitTable:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        base_fields = {name: _coerce(name, value) for name, value in raw["base"].items()}
        missing = {f.name for f in fields(Limits)} - {"basis"} - set(base_fields)
        if missing:
            raise ValueError(f"{path}: base limits lack {sorted(missing)}")
        base = Limits(**base_fields)
        rules = []
        for spec in raw.get("rules", []):
            unknown = set(spec.get("when", {})) - _MATCH_KEYS
            if unknown:
                raise ValueError(f"{path}: rule {spec.get('name')!r} matches on unknown keys {sorted(unknown)}")
            rules.append(LimitRule(
                name=spec["name"], when=dict(spec.get("when", {})),
                changes={name: _coerce(name, value) for name, value in spec.get("set", {}).items()},
                why=" ".join(str(spec.get("why", "")).split()),
            ))
        return cls(base, rules)

    def limits_for(self, level: str | None, mechanism: str | None, channel: str | None,
                   dispute_type: str | None = None) -> Limits:
        case = {"level": level, "mechanism": mechanism, "channel": channel, "dispute_type": dispute_type}
        limits, basis = self.base, ["base"]
        for rule in self.rules:
            if rule.matches(case):
                limits = replace(limits, **rule.changes)
                basis.append(rule.name)
        return replace(limits, basis=tuple(basis))

    def reasons(self, limits: Limits) -> list[tuple[str, str]]:
        """(rule name, why) for each rule behind `limits`, to explain a deadline to staff."""
        by_name = {rule.name: rule.why for rule in self.rules}
        return [(name, by_name[name]) for name in limits.basis if name in by_name]


# --- defaults, loaded on first use -------------------------------------------------

@lru_cache(maxsize=4)
def _load_calendar(directory: Path) -> WorkingCalendar:
    return WorkingCalendar.from_files(directory / "holidays.yaml", directory / "limits.yaml")


@lru_cache(maxsize=4)
def _load_limits(directory: Path) -> LimitTable:
    return LimitTable.from_file(directory / "limits.yaml")


def default_calendar() -> WorkingCalendar:
    return _load_calendar(rules_dir())


def default_limits() -> LimitTable:
    return _load_limits(rules_dir())


def add_working_days(start: datetime, n: int, tz: ZoneInfo = SHANGHAI) -> datetime:
    return default_calendar().add_working_days(start, n, tz)


def add_calendar_days(start: datetime, n: int, tz: ZoneInfo = SHANGHAI) -> datetime:
    return default_calendar().add_calendar_days(start, n, tz)


def working_days_between(start: datetime, end: datetime, tz: ZoneInfo = SHANGHAI) -> int:
    return default_calendar().working_days_between(start, end, tz)


def limits_for(level: str | None, mechanism: str | None, channel: str | None,
               dispute_type: str | None = None) -> Limits:
    return default_limits().limits_for(level, mechanism, channel, dispute_type)
