"""Scorecards per unit, township and mediator; hot topics (兰陵热点); CSV export.

Computed from plain records the service reads from its own tables, so the
figures can be checked by hand. One `CaseRecord` is one ASSIGNMENT: a case
escalated from a township to the county gives two records, one per holder,
and each holder is scored on its own part.

The cohort of a scorecard is the records ASSIGNED in the period
[start, end). `as_of` (the report's "now", from the injectable clock) decides
which open assignments already count as late. A rate whose denominator is
zero is None (shown empty), never 0% or 100%.
"""
from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Sequence

SATISFIED = ("满意", "基本满意")
CONCLUDED = ("resolved", "resolved_on_site", "referred", "escalated")
RESOLVED = ("resolved", "resolved_on_site")
OUTCOMES = CONCLUDED + ("returned", "reassigned")
GROUPINGS = ("unit", "township", "mediator")
TOTAL = "合计"


@dataclass(frozen=True)
class CaseRecord:
    """One assignment of one case to one holder.

    outcome: None while the holder still has it; otherwise resolved,
    resolved_on_site, referred, escalated (failed or reported one level up),
    returned (退单) or reassigned (taken away by a supervisor).
    finished_at: when the outcome happened (for a redone case, the last round).
    handling_deadline: the one in force at the end (after extensions or a redo).
    rating: the latest rating of this assignment, if the citizen rated it.
    """
    case_no: str
    unit: str | None
    township: str | None
    mediator: str | None
    assigned_at: datetime
    sign_off_deadline: datetime
    accepted_at: datetime | None
    handling_deadline: datetime
    finished_at: datetime | None = None
    outcome: str | None = None
    rating: str | None = None
    redo_count: int = 0

    def __post_init__(self) -> None:
        if self.outcome is not None and self.outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {self.outcome!r}")
        if (self.outcome is None) != (self.finished_at is None):
            raise ValueError("finished_at and outcome go together")

    @property
    def escalated(self) -> bool:
        return self.outcome == "escalated"

    @property
    def responded_at(self) -> datetime | None:
        """签收, or a response that ended the assignment without it (退单, 上报, 现场化解)."""
        if self.accepted_at is not None:
            return self.accepted_at
        return self.finished_at if self.outcome not in (None, "reassigned") else None

    def held_until(self, as_of: datetime) -> datetime:
        return self.finished_at or as_of


@dataclass(frozen=True)
class Rate:
    numerator: int
    denominator: int

    @property
    def value(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None

    def percent(self) -> str:
        return "" if self.value is None else f"{self.value * 100:.1f}%"


def on_time_sign_off(records: Sequence[CaseRecord], as_of: datetime) -> Rate:
    """按时签收率.

    numerator: records responded to (signed for, or returned/escalated/settled
      on site without signing) at or before the sign-off deadline.
    denominator: records responded to at all, plus records not responded to
      whose sign-off deadline passed while the holder still had them (before
      `as_of`, or before a supervisor took them away). Records still within
      their deadline, or taken away before it, are not counted.
    """
    numerator = denominator = 0
    for r in records:
        responded = r.responded_at
        if responded is not None:
            denominator += 1
            numerator += responded <= r.sign_off_deadline
        elif r.sign_off_deadline < r.held_until(as_of):
            denominator += 1
    return Rate(numerator, denominator)


def on_time_completion(records: Sequence[CaseRecord], as_of: datetime) -> Rate:
    """按时办结率.

    numerator: records concluded (resolved, resolved on site, referred or
      escalated) at or before their handling deadline.
    denominator: concluded records, plus records still open past their
      handling deadline at `as_of`, plus records reassigned away after their
      handling deadline had passed. Returned (退单) records are not counted:
      a return is judged by the sign-off rate.
    """
    numerator = denominator = 0
    for r in records:
        if r.outcome in CONCLUDED:
            denominator += 1
            numerator += r.finished_at <= r.handling_deadline
        elif r.outcome is None and r.handling_deadline < as_of:
            denominator += 1
        elif r.outcome == "reassigned" and r.handling_deadline < r.finished_at:
            denominator += 1
    return Rate(numerator, denominator)


def resolution_rate(records: Sequence[CaseRecord]) -> Rate:
    """化解率. numerator: outcome resolved or resolved_on_site. denominator: concluded records
    (resolved, resolved_on_site, referred, escalated); returned, reassigned and open ones are not counted."""
    concluded = [r for r in records if r.outcome in CONCLUDED]
    return Rate(sum(r.outcome in RESOLVED for r in concluded), len(concluded))


def satisfaction_rate(records: Sequence[CaseRecord]) -> Rate:
    """满意率. numerator: latest rating 满意 or 基本满意. denominator: records with a rating."""
    rated = [r for r in records if r.rating is not None]
    return Rate(sum(r.rating in SATISFIED for r in rated), len(rated))


def redo_rate(records: Sequence[CaseRecord]) -> Rate:
    """重办率. numerator: records redone at least once. denominator: records resolved with an
    agreement at least once (outcome resolved now, or redone, which implies an earlier resolution)."""
    resolved_once = [r for r in records if r.outcome == "resolved" or r.redo_count > 0]
    return Rate(sum(r.redo_count > 0 for r in resolved_once), len(resolved_once))


def escalation_rate(records: Sequence[CaseRecord]) -> Rate:
    """上报率. numerator: outcome escalated. denominator: concluded records (as for 化解率)."""
    concluded = [r for r in records if r.outcome in CONCLUDED]
    return Rate(sum(r.outcome == "escalated" for r in concluded), len(concluded))


@dataclass(frozen=True)
class ScoreRow:
    group: str                 # the unit, township or mediator id; TOTAL for the total row
    assigned: int              # records assigned in the period
    on_time_sign_off: Rate
    on_time_completion: Rate
    resolution: Rate
    satisfaction: Rate
    redo: Rate
    escalation: Rate


RATE_COLUMNS = (
    ("on_time_sign_off", "按时签收率"), ("on_time_completion", "按时办结率"), ("resolution", "化解率"),
    ("satisfaction", "满意率"), ("redo", "重办率"), ("escalation", "上报率"),
)
GROUP_HEADERS = {"unit": "单位", "township": "乡镇(街道)", "mediator": "调解员"}


def _score(group: str, records: Sequence[CaseRecord], as_of: datetime) -> ScoreRow:
    return ScoreRow(group, len(records), on_time_sign_off(records, as_of), on_time_completion(records, as_of),
                    resolution_rate(records), satisfaction_rate(records), redo_rate(records),
                    escalation_rate(records))


def scorecard(records: Iterable[CaseRecord], by: str, start: datetime, end: datetime, as_of: datetime,
              with_total: bool = True) -> list[ScoreRow]:
    """One row per unit, township or mediator with records assigned in [start, end), sorted by group.

    Records without a value for `by` (e.g. no mediator: a unit held it) are
    left out of the groups but counted in the total row.
    """
    if by not in GROUPINGS:
        raise ValueError(f"by must be one of {GROUPINGS}")
    cohort = [r for r in records if start <= r.assigned_at < end]
    groups: dict[str, list[CaseRecord]] = {}
    for record in cohort:
        key = getattr(record, by)
        if key is not None:
            groups.setdefault(key, []).append(record)
    rows = [_score(key, groups[key], as_of) for key in sorted(groups)]
    if with_total:
        rows.append(_score(TOTAL, cohort, as_of))
    return rows


# --- records from the audit trail --------------------------------------------------------

ENDINGS = {"resolve": "resolved", "resolve_on_site": "resolved_on_site", "refer": "referred",
           "fail": "escalated", "escalate": "escalated", "return": "returned"}


def records_from_audit(rows: Iterable[Any]) -> list[CaseRecord]:
    """The assignment records of cases, rebuilt from their audit rows (lifecycle.AuditRow) in order.

    assign/reassign opens a record (a reassign first closes the open one as
    `reassigned`); accept, extension approvals, endings, ratings and redos
    update the latest record of the case. With several holders (多对一) the
    first is the record's mediator.
    """
    records: list[dict[str, Any]] = []
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        current = latest.get(row.case_no)
        detail = row.detail
        if row.action in ("assign", "reassign"):
            if current is not None and current["outcome"] is None:
                current.update(outcome="reassigned", finished_at=row.at)
            current = latest[row.case_no] = dict(
                case_no=row.case_no, unit=detail.get("unit"), township=detail.get("township"),
                mediator=(detail.get("holders") or [None])[0], assigned_at=row.at,
                sign_off_deadline=detail["sign_off_due"], accepted_at=None,
                handling_deadline=detail["handling_due"], finished_at=None, outcome=None, rating=None, redo_count=0)
            records.append(current)
        elif current is None:
            continue
        elif row.action == "accept":
            current["accepted_at"] = row.at
        elif row.action == "approve_extension":
            current["handling_deadline"] = detail["handling_due"]
        elif row.action in ENDINGS and current["outcome"] is None:
            current.update(outcome=ENDINGS[row.action], finished_at=row.at)
        elif row.action == "evaluate":
            current["rating"] = detail["rating"]
        elif row.action == "redo":
            current.update(outcome=None, finished_at=None, handling_deadline=detail["handling_due"],
                           redo_count=current["redo_count"] + 1)
    return [CaseRecord(**fields) for fields in records]


# --- hot topics -----------------------------------------------------------------------

@dataclass(frozen=True)
class TopicRecord:
    case_no: str
    received_at: datetime
    dispute_type: str
    place: str                 # township (or village) name; never a person's address


@dataclass(frozen=True)
class Count:
    name: str
    count: int
    share: float               # of the cases in the window


@dataclass(frozen=True)
class HotTopics:
    cases: int
    dispute_types: list[Count]
    places: list[Count]
    pairs: list[Count]         # "place · dispute type": where which kind of dispute gathers


def _top(counter: Counter, total: int, top: int) -> list[Count]:
    ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0]))[:top]
    return [Count(name, count, count / total) for name, count in ranked]


def hot_topics(records: Iterable[TopicRecord], start: datetime, end: datetime, top: int = 10) -> HotTopics:
    """The most frequent dispute types, places and (place, type) pairs among cases received in
    [start, end); each case counted once; ties broken by name so the order is stable."""
    cases = {r.case_no: r for r in records if start <= r.received_at < end}
    types = Counter(r.dispute_type for r in cases.values())
    places = Counter(r.place for r in cases.values())
    pairs = Counter(f"{r.place} · {r.dispute_type}" for r in cases.values())
    total = len(cases)
    return HotTopics(total, _top(types, total, top), _top(places, total, top), _top(pairs, total, top))


# --- CSV ------------------------------------------------------------------------------

def _cell(value: Any) -> Any:
    # A cell starting with = + - @ is a formula to Excel (CSV injection): make it text.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


def to_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """CSV as UTF-8 with a BOM, so Excel opens Chinese text correctly."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([_cell(h) for h in header])
    for row in rows:
        writer.writerow([_cell(value) for value in row])
    return buffer.getvalue().encode("utf-8-sig")


def scorecard_csv(rows: Sequence[ScoreRow], by: str, labels: dict[str, str] | None = None) -> bytes:
    """Scorecard rows as CSV; `labels` maps ids to display names (e.g. unit names)."""
    labels = labels or {}
    header = [GROUP_HEADERS[by], "交办件数"]
    for _, title in RATE_COLUMNS:
        header += [title, f"{title[:-1]}(件数/基数)"]
    body = []
    for row in rows:
        line: list[Any] = [labels.get(row.group, row.group), row.assigned]
        for name, _ in RATE_COLUMNS:
            rate: Rate = getattr(row, name)
            line += [rate.percent(), f"{rate.numerator}/{rate.denominator}"]
        body.append(line)
    return to_csv(header, body)


def hot_topics_csv(topics: HotTopics) -> bytes:
    header = ["类别", "名称", "件数", "占比"]
    body = [[kind, c.name, c.count, f"{c.share * 100:.1f}%"]
            for kind, counts in (("纠纷类型", topics.dispute_types), ("地点", topics.places),
                                 ("地点·类型", topics.pairs))
            for c in counts]
    return to_csv(header, body)
