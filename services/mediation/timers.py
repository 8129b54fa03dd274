"""What the deadline timer must do now: reminders, overdue grades, supervision, accountability.

Pure: given a case's deadlines, the keys already fired and the current time,
`due_actions` lists what fires now, oldest first. Every action carries a
stable `key`; the service stores fired keys under a unique constraint in the
same transaction as the events it emits, so with several replicas (SKIP
LOCKED scan) and after downtime each action fires exactly once, in order.

For each deadline (sign_off, handling) the ladder is, by default:

    reminder_before (催办, at 75% of the time) -> warning (黄灯, 90%)
    -> reminder_at_deadline + overdue -> supervision (督办)
    -> seriously_overdue (50% over, or 5 working days over) -> accountability (问责)

all configurable in rules/limits.yaml (`timers`). A major case opens
supervision as soon as it is known. Fractions and hours are of WORKING time
(office hours on working days), so "75% of a 7-working-day limit" across
Spring Festival falls late in the limit, and no reminder goes out at 3 a.m.

Once a deadline is met (accepted, finished), nothing more fires for it except
breach records whose moment had already come before it was met: a timer that
was down still records that the case went overdue, but sends no stale 催办.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import yaml

from services.mediation.deadlines import Period, WorkingCalendar, default_calendar, rules_dir

GRADES = ("warning", "overdue", "seriously_overdue")
DEADLINE_KINDS = ("sign_off", "handling")

# Steps in the order they fire when several fall due at the same instant.
STEPS = ("reminder_before", "warning", "reminder_at_deadline", "overdue", "seriously_overdue",
         "supervision", "accountability")
NUDGES = {"reminder_before", "warning", "reminder_at_deadline"}
EVENTS = {
    "reminder_before": "reminder_due", "reminder_at_deadline": "reminder_due",
    "warning": "case_overdue", "overdue": "case_overdue", "seriously_overdue": "case_overdue",
    "supervision": "supervision_opened", "accountability": "accountability_recorded",
}


@dataclass(frozen=True)
class Deadline:
    kind: str                        # "sign_off" | "handling"
    starts_at: datetime              # when the period began (assignment)
    due_at: datetime
    met_at: datetime | None = None   # accepted (sign_off) or finished (handling)


@dataclass(frozen=True)
class CaseDeadlines:
    """What the timer needs to know about one case (see lifecycle.CaseState.timer_view)."""
    case_no: str
    deadlines: tuple[Deadline, ...]
    unit: str | None = None
    mediator: str | None = None          # the accountable holder, if a person holds the case
    level: str | None = None
    township: str | None = None
    major_since: datetime | None = None  # when the case was known to be major; None if it is not


@dataclass(frozen=True)
class Action:
    key: str                 # stable and unique: the once-only constraint in the database
    case_no: str
    step: str                # one of STEPS, or "supervision" for a major case
    event: str               # the DESIGN §2 event to emit
    fire_at: datetime
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TimerPolicy:
    """Thresholds for one deadline kind (rules/limits.yaml, timers.deadlines)."""
    reminder_fraction: float | None = 0.75
    reminder_hours: float | None = None
    reminder_at_deadline: bool = True
    warning_fraction: float | None = 0.9
    serious_fraction_over: float | None = 0.5
    serious_working_days_over: int | None = 5
    supervision_from: str | None = "overdue"
    accountability_from: str | None = "seriously_overdue"
    accountable: str = "mediator"

    @classmethod
    def from_mapping(cls, spec: dict[str, Any], base: TimerPolicy | None = None) -> TimerPolicy:
        policy = base or cls()
        changes: dict[str, Any] = {}
        if "reminder_before" in spec:
            before = spec["reminder_before"] or {}
            changes["reminder_fraction"] = before.get("fraction")
            changes["reminder_hours"] = before.get("hours")
        if "reminder_at_deadline" in spec:
            changes["reminder_at_deadline"] = bool(spec["reminder_at_deadline"])
        if "warning" in spec:
            changes["warning_fraction"] = (spec["warning"] or {}).get("fraction")
        if "seriously_overdue" in spec:
            serious = spec["seriously_overdue"] or {}
            changes["serious_fraction_over"] = serious.get("fraction_over")
            changes["serious_working_days_over"] = serious.get("working_days_over")
        for name in ("supervision_from", "accountability_from", "accountable"):
            if name in spec:
                changes[name] = spec[name]
        policy = replace(policy, **changes)
        for name in ("supervision_from", "accountability_from"):
            grade = getattr(policy, name)
            if grade is not None and grade not in GRADES:
                raise ValueError(f"timers: {name} must be one of {GRADES} or null, not {grade!r}")
        if policy.accountable not in ("mediator", "unit"):
            raise ValueError(f"timers: accountable must be 'mediator' or 'unit', not {policy.accountable!r}")
        return policy


@dataclass(frozen=True)
class EvaluationPolicy:
    """After case_resolved: remind the citizen to rate, then close without a rating."""
    reminder_after: Period | None = Period(3, "calendar")
    close_after: Period | None = Period(10, "calendar")

    @classmethod
    def from_mapping(cls, spec: dict[str, Any]) -> EvaluationPolicy:
        policy = cls()
        for name in ("reminder_after", "close_after"):
            if name in spec:
                policy = replace(policy, **{name: Period.parse(spec[name])})
        return policy


@dataclass(frozen=True)
class TimerRules:
    default: TimerPolicy
    per_kind: dict[str, TimerPolicy]
    major_case_supervision: bool = True
    evaluation: EvaluationPolicy = EvaluationPolicy()

    def for_kind(self, kind: str) -> TimerPolicy:
        return self.per_kind.get(kind, self.default)

    @classmethod
    def from_file(cls, path: Path) -> TimerRules:
        raw = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("timers", {})
        specs = dict(raw.get("deadlines", {}))
        default = TimerPolicy.from_mapping(specs.pop("default", {}) or {})
        per_kind = {kind: TimerPolicy.from_mapping(spec or {}, default) for kind, spec in specs.items()}
        return cls(default, per_kind, bool(raw.get("major_case_supervision", True)),
                   EvaluationPolicy.from_mapping(raw.get("evaluation") or {}))


@lru_cache(maxsize=4)
def _load_rules(directory: Path) -> TimerRules:
    return TimerRules.from_file(directory / "limits.yaml")


def default_rules() -> TimerRules:
    return _load_rules(rules_dir())


# --- the schedule of one deadline --------------------------------------------------

def _stamp(instant: datetime) -> str:
    return instant.strftime("%Y%m%dT%H%M%SZ")


def _grade_instants(deadline: Deadline, policy: TimerPolicy, calendar: WorkingCalendar,
                    allowed: timedelta) -> dict[str, datetime]:
    """When each grade begins; `allowed` is the working time from start to deadline."""
    due = deadline.due_at
    instants: dict[str, datetime] = {"overdue": due}
    if policy.warning_fraction is not None:
        instants["warning"] = min(calendar.add_working_time(deadline.starts_at, allowed * policy.warning_fraction), due)
    serious = []
    if policy.serious_fraction_over is not None:
        serious.append(calendar.add_working_time(due, allowed * policy.serious_fraction_over))
    if policy.serious_working_days_over is not None:
        serious.append(calendar.add_working_days(due, policy.serious_working_days_over))
    if serious:
        instants["seriously_overdue"] = max(min(serious), due)
    return instants


def _reminder_instant(deadline: Deadline, policy: TimerPolicy, calendar: WorkingCalendar,
                     allowed: timedelta) -> datetime | None:
    if policy.reminder_hours is not None:
        elapsed = max(allowed - timedelta(hours=policy.reminder_hours), timedelta(0))
    elif policy.reminder_fraction is not None:
        elapsed = allowed * policy.reminder_fraction
    else:
        return None
    return min(calendar.add_working_time(deadline.starts_at, elapsed), deadline.due_at)


def _deadline_steps(deadline: Deadline, policy: TimerPolicy, calendar: WorkingCalendar) -> list[tuple[str, datetime]]:
    allowed = calendar.working_time_between(deadline.starts_at, deadline.due_at)
    grades = _grade_instants(deadline, policy, calendar, allowed)
    steps: list[tuple[str, datetime]] = list(grades.items())
    reminder = _reminder_instant(deadline, policy, calendar, allowed)
    if reminder is not None:
        steps.append(("reminder_before", reminder))
    if policy.reminder_at_deadline:
        steps.append(("reminder_at_deadline", deadline.due_at))
    for step, grade in (("supervision", policy.supervision_from), ("accountability", policy.accountability_from)):
        if grade is not None and grade in grades:
            steps.append((step, grades[grade]))
    if deadline.met_at is not None:
        steps = [(step, at) for step, at in steps if step not in NUDGES and at < deadline.met_at]
    return steps


def _payload(case: CaseDeadlines, deadline: Deadline, step: str, policy: TimerPolicy) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "case_no": case.case_no, "deadline": deadline.kind, "due_at": deadline.due_at,
        "unit": case.unit, "mediator": case.mediator, "level": case.level, "township": case.township,
    }
    if step in ("reminder_before", "reminder_at_deadline"):
        payload["stage"] = "before" if step == "reminder_before" else "at_deadline"
    elif step in GRADES:
        payload["grade"] = step
    elif step == "supervision":
        payload.update(reason="overdue", grade=policy.supervision_from)
    elif step == "accountability":
        against_mediator = policy.accountable == "mediator" and case.mediator
        payload.update(grade=policy.accountability_from,
                       against={"kind": "mediator", "id": case.mediator} if against_mediator
                       else {"kind": "unit", "id": case.unit})
    return payload


def schedule(case: CaseDeadlines, rules: TimerRules | None = None,
             calendar: WorkingCalendar | None = None) -> list[Action]:
    """Every action this case fires as its deadlines stand, in firing order."""
    rules = rules or default_rules()
    calendar = calendar or default_calendar()
    actions: list[tuple[datetime, int, int, Action]] = []
    for kind_rank, deadline in enumerate(sorted(case.deadlines, key=lambda d: DEADLINE_KINDS.index(d.kind)
                                                if d.kind in DEADLINE_KINDS else len(DEADLINE_KINDS))):
        policy = rules.for_kind(deadline.kind)
        for step, at in _deadline_steps(deadline, policy, calendar):
            action = Action(
                key=f"{case.case_no}/{deadline.kind}@{_stamp(deadline.due_at)}/{step}",
                case_no=case.case_no, step=step, event=EVENTS[step], fire_at=at,
                payload=_payload(case, deadline, step, policy),
            )
            actions.append((at, STEPS.index(step), kind_rank, action))
    if rules.major_case_supervision and case.major_since is not None:
        action = Action(
            key=f"{case.case_no}/major/supervision", case_no=case.case_no, step="supervision",
            event="supervision_opened", fire_at=case.major_since,
            payload={"case_no": case.case_no, "reason": "major", "unit": case.unit, "mediator": case.mediator,
                     "level": case.level, "township": case.township},
        )
        actions.append((case.major_since, -1, -1, action))
    return [action for *_, action in sorted(actions, key=lambda item: item[:3])]


def evaluation_actions(case_no: str, resolved_at: datetime, round_no: int, rules: TimerRules | None = None,
                       calendar: WorkingCalendar | None = None) -> list[Action]:
    """The follow-up of a resolution nobody rated yet: a reminder (evaluation_requested), then closing.

    `round_no` counts resolutions (1 + redos), so a redone case gets its own follow-up.
    Closing is not an event of its own: the service applies the lifecycle's `close`.
    """
    rules = rules or default_rules()
    calendar = calendar or default_calendar()
    policy = rules.evaluation
    actions = []
    for step, period, event in (("evaluation_reminder", policy.reminder_after, "evaluation_requested"),
                                ("evaluation_close", policy.close_after, "case_closed")):
        if period is not None:
            actions.append(Action(key=f"{case_no}/evaluation#{round_no}/{step}", case_no=case_no, step=step,
                                  event=event, fire_at=period.after(resolved_at, calendar),
                                  payload={"case_no": case_no, "round": round_no}))
    return actions


def due_actions(case: CaseDeadlines, already_fired: Iterable[str], now: datetime,
                rules: TimerRules | None = None, calendar: WorkingCalendar | None = None) -> list[Action]:
    """Actions whose moment has come (fire_at <= now) and whose key has not fired, oldest first.

    Call it again with the fired keys added and it returns nothing new, so a
    catch-up after downtime fires each missed action exactly once.
    """
    fired = set(already_fired)
    return [action for action in schedule(case, rules, calendar)
            if action.fire_at <= now and action.key not in fired]


def next_fire_at(case: CaseDeadlines, already_fired: Iterable[str], now: datetime,
                 rules: TimerRules | None = None, calendar: WorkingCalendar | None = None) -> datetime | None:
    """When this case next needs the timer (to store as an index column for the scan), or None."""
    fired = set(already_fired)
    upcoming = [action.fire_at for action in schedule(case, rules, calendar)
                if action.fire_at > now and action.key not in fired]
    return min(upcoming, default=None)


def overdue_grade(case: CaseDeadlines, now: datetime, rules: TimerRules | None = None,
                  calendar: WorkingCalendar | None = None) -> str | None:
    """The gravest grade of the case's unmet deadlines at `now` (for worklists), or None."""
    rules = rules or default_rules()
    calendar = calendar or default_calendar()
    worst = -1
    for deadline in case.deadlines:
        if deadline.met_at is not None:
            continue
        allowed = calendar.working_time_between(deadline.starts_at, deadline.due_at)
        grades = _grade_instants(deadline, rules.for_kind(deadline.kind), calendar, allowed)
        for rank, grade in enumerate(GRADES):
            if grade in grades and grades[grade] <= now:
                worst = max(worst, rank)
    return GRADES[worst] if worst >= 0 else None


def benchmark(cases: int = 2000) -> dict[str, float]:
    """Cost of the pure timer logic per case, for `make bench` (the DB scan is not included)."""
    import time as clock
    from datetime import timezone

    calendar, rules = default_calendar(), default_rules()
    start = datetime(2026, 2, 10, 1, 0, tzinfo=timezone.utc)
    sample = [
        CaseDeadlines(case_no=f"371324-20260210-{i:06d}", unit="u1", mediator="m1", deadlines=(
            Deadline("sign_off", start, calendar.add_working_days(start, 1)),
            Deadline("handling", start, calendar.add_working_days(start, 7 + i % 20)),
        ))
        for i in range(cases)
    ]
    now = start + timedelta(days=60)
    began = clock.perf_counter()
    fired = sum(len(due_actions(case, (), now, rules, calendar)) for case in sample)
    elapsed = clock.perf_counter() - began
    return {"cases": cases, "actions": fired, "seconds": round(elapsed, 4),
            "cases_per_second": round(cases / elapsed, 1), "microseconds_per_case": round(elapsed / cases * 1e6, 1)}
