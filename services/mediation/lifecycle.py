"""The case lifecycle: one table of transitions, who may trigger them, and what they emit.

    transition = apply(case, "accept", Actor("mediator", "m-17"), {}, now)
    transition.case     # the new CaseState (store it)
    transition.audit    # the append-only audit row (store it)
    transition.events   # DomainEvents for the outbox, in order
    transition.record   # a Session or Agreement to store, or None

Refusals are exceptions the gateway maps to HTTP: `Forbidden` (403: this actor
may not do this to this case), `InvalidTransition` (409: not in this state, or
a rule of the process says no), `InvalidInput` (400: a field is missing or
wrong; `fields` says which). All three derive from `Refused` and carry a
Chinese `reason` a staff member can read.

Checks run in a fixed order so the answer does not leak more than the actor
may know: the role may take this action at all -> the actor's scope covers
this case -> the action is allowed in the current state -> the role may take
it from this state -> required fields -> the action's own rules.

Roles and their scope (see `in_scope`):
  system             the service itself, acting on events (routing, intake, timers)
  mediator           only on cases they hold
  grid_worker        only on grid-level cases they hold
  township_head      cases in their township at any level below county; approves extensions there
  county_supervisor  every case; approves county extensions (and any other)
  citizen            only the evaluation of the case their rating link is for
  receptionist       registers cases at intake; no mediation actions
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Callable

from services.common.privacy import mask_text
from services.mediation import timers
from services.mediation.deadlines import LimitTable, Limits, WorkingCalendar, default_calendar, default_limits

STATUSES = ("received", "routed", "assigned", "accepted", "in_mediation", "resolved", "closed",
            "returned", "escalated", "referred", "resolved_on_site", "reopened")
TERMINAL = ("closed", "referred", "resolved_on_site")
OPEN = tuple(status for status in STATUSES if status not in TERMINAL)
LEVELS = ("grid", "village", "work_area", "township", "county")
MECHANISMS = ("supermarket", "specialised", "joint", "chain")
ROLES = ("system", "mediator", "grid_worker", "township_head", "county_supervisor", "citizen", "receptionist")
SESSION_MODES = ("face_to_face", "back_to_back", "online")
REFERRAL_TARGETS = ("arbitration", "litigation", "administrative_review")
RATINGS = ("满意", "基本满意", "不满意")
SATISFIED = ("满意", "基本满意")
PSYCH_CONSENT = ("pending", "given", "refused")
SAME = "(unchanged)"


# --- refusals ----------------------------------------------------------------------

class Refused(Exception):
    http_status = 400

    def __init__(self, reason: str, fields: dict[str, list[str]] | None = None):
        super().__init__(reason)
        self.reason = reason
        self.fields = fields or {}


class Forbidden(Refused):
    """The actor's role or scope does not allow this action on this case (HTTP 403)."""
    http_status = 403


class InvalidTransition(Refused):
    """Not allowed in the case's current state, or a process rule forbids it now (HTTP 409)."""
    http_status = 409


class InvalidInput(Refused):
    """A required field is missing or a value is not acceptable (HTTP 400)."""
    http_status = 400


# --- data ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Actor:
    role: str
    id: str | None = None          # directory id of staff (mediator, grid worker, head, supervisor)
    township: str | None = None    # a township head's township
    case_no: str | None = None     # a citizen's: the case their rating link is for

    def label(self) -> str:
        return self.role if self.id is None else f"{self.role}:{self.id}"


@dataclass(frozen=True)
class ExtensionRequest:
    requested_by: str
    requested_at: datetime
    reason: str


@dataclass(frozen=True)
class CaseState:
    """Mediation's view of one case. Times are aware UTC datetimes."""
    case_no: str
    status: str = "received"
    channel: str | None = None
    received_at: datetime | None = None
    township: str | None = None
    dispute_type: str | None = None
    level: str | None = None
    mechanism: str | None = None
    unit: str | None = None
    co_units: tuple[str, ...] = ()
    holders: tuple[str, ...] = ()             # directory ids of who holds it now (多对一: several)
    returned_by: tuple[str, ...] = ()         # everyone who returned it: never route it back to them
    merged_sources: tuple[str, ...] = ()
    major_since: datetime | None = None
    assigned_at: datetime | None = None
    sign_off_due: datetime | None = None
    accepted_at: datetime | None = None
    accepted_late: bool = False
    handling_started_at: datetime | None = None
    handling_due: datetime | None = None
    finished_at: datetime | None = None       # when the current assignment ended (resolved, returned …)
    extensions_used: int = 0
    pending_extension: ExtensionRequest | None = None
    sessions: int = 0
    outcome: str | None = None                # resolved, resolved_on_site, referred, escalated, returned
    referral_target: str | None = None
    rating: str | None = None
    review_open: bool = False                 # 不满意 is under review: ends in redo or dismiss_rating
    redo_count: int = 0
    escalations: int = 0

    def next_deadline(self) -> datetime | None:
        """The deadline the holder works against now (the case view's `deadline`)."""
        if self.status == "assigned":
            return self.sign_off_due
        if self.status in ("accepted", "in_mediation"):
            return self.handling_due
        return None

    def timer_view(self) -> timers.CaseDeadlines:
        """The deadlines the timer watches (see timers.due_actions)."""
        deadlines = []
        if self.assigned_at is not None and self.sign_off_due is not None:
            deadlines.append(timers.Deadline("sign_off", self.assigned_at, self.sign_off_due,
                                             self.accepted_at or self.finished_at))
        if self.handling_started_at is not None and self.handling_due is not None:
            deadlines.append(timers.Deadline("handling", self.handling_started_at, self.handling_due,
                                             self.finished_at))
        return timers.CaseDeadlines(
            case_no=self.case_no, deadlines=tuple(deadlines), unit=self.unit,
            mediator=self.holders[0] if self.holders else None, level=self.level,
            township=self.township, major_since=self.major_since,
        )


@dataclass(frozen=True)
class Session:
    case_no: str
    mode: str                      # face_to_face | back_to_back (背对背) | online
    attendees: tuple[str, ...]     # personal data: store encrypted, show masked
    notes: str
    held_at: datetime
    recorded_by: str


@dataclass(frozen=True)
class Agreement:
    case_no: str
    terms: tuple[str, ...]
    facts: str
    judicial_confirmation: bool    # the parties will ask the court to confirm it (司法确认)
    mediators: tuple[str, ...]
    agreed_at: datetime


@dataclass(frozen=True)
class AuditRow:
    case_no: str
    at: datetime
    actor: str
    action: str
    from_status: str
    to_status: str
    reason: str | None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DomainEvent:
    name: str                      # an event of DESIGN §2
    payload: dict[str, Any]


@dataclass(frozen=True)
class Transition:
    case: CaseState
    audit: AuditRow
    events: tuple[DomainEvent, ...]
    record: Session | Agreement | None = None


# --- the table -------------------------------------------------------------------------

HOLDERS_AND_HEADS = frozenset({"mediator", "grid_worker", "township_head", "county_supervisor"})
MEDIATORS_AND_HEADS = frozenset({"mediator", "township_head", "county_supervisor"})
GRID_WORKERS_AND_HEADS = frozenset({"grid_worker", "township_head", "county_supervisor"})
HEADS = frozenset({"township_head", "county_supervisor"})
SYSTEM = frozenset({"system"})


@dataclass(frozen=True)
class Rule:
    action: str
    sources: tuple[str, ...]
    targets: tuple[str, ...]       # SAME: the state does not change; several: the action decides
    roles: frozenset[str]
    requires: tuple[str, ...] = ()
    guard: str = ""                # the action's own rules, for people reading the table


TRANSITIONS: tuple[Rule, ...] = (
    # routing and assignment (events from routing and intake)
    Rule("route", ("received", "returned", "escalated", "reopened"), ("routed",), SYSTEM,
         ("level", "mechanism"), "level and mechanism from case_routed"),
    Rule("assign", ("routed", "reopened"), ("assigned",), SYSTEM, ("holders",),
         "sets sign-off and handling deadlines from the limits table"),
    Rule("reassign", ("assigned", "accepted", "in_mediation", "reopened"), ("assigned",), HEADS,
         ("holders", "reason"), "by a supervisor, to someone else, with a reason"),
    Rule("choose", ("assigned", "accepted"), ("assigned",), SYSTEM, ("holders", "level", "mechanism"),
         "the parties picked their mediator(s) (超市点将) after assignment: routing re-routed it"),
    Rule("merge_source", OPEN, (SAME,), SYSTEM, ("source",), "case_merged: the source joins this case"),
    Rule("unmerge_source", OPEN, (SAME,), SYSTEM, ("source",), "case_unmerged: only a merged source"),
    Rule("mark_major", OPEN, (SAME,), SYSTEM | HEADS, ("reason",), "opens supervision at once (timers)"),
    # the holder's work
    Rule("accept", ("assigned",), ("accepted",), HOLDERS_AND_HEADS, (),
         "签收; after the sign-off deadline it is allowed and recorded as late"),
    Rule("return", ("assigned", "accepted"), ("returned",), HOLDERS_AND_HEADS, ("reason",),
         "退单 before mediation starts; routing re-routes, never to the same holder"),
    Rule("record_session", ("accepted", "in_mediation"), ("in_mediation",), HOLDERS_AND_HEADS,
         ("mode", "attendees", "notes"), "face_to_face, back_to_back or online"),
    Rule("request_psych", ("assigned", "accepted", "in_mediation"), (SAME,), MEDIATORS_AND_HEADS, ("need",)),
    Rule("request_extension", ("accepted", "in_mediation"), (SAME,), MEDIATORS_AND_HEADS, ("reason",),
         "before the handling deadline, one pending at a time, within max_extensions"),
    Rule("approve_extension", ("accepted", "in_mediation"), (SAME,), HEADS, (),
         "by the head of the level (township head below county, county supervisor), not the requester"),
    Rule("reject_extension", ("accepted", "in_mediation"), (SAME,), HEADS, ("reason",)),
    # endings
    Rule("resolve", ("in_mediation",), ("resolved",), MEDIATORS_AND_HEADS, ("terms",),
         "an agreement with its terms"),
    Rule("resolve_on_site", ("received",), ("resolved_on_site",), SYSTEM, ("summary",),
         "a grid report already settled on the spot; terminal"),
    Rule("resolve_on_site", ("assigned", "accepted", "in_mediation"), ("resolved_on_site",),
         GRID_WORKERS_AND_HEADS, ("summary",), "grid-level cases only; terminal"),
    Rule("fail", ("in_mediation",), ("escalated",), MEDIATORS_AND_HEADS, ("reason",),
         "调解不成: escalate one level up; not at county level (refer instead)"),
    Rule("escalate", ("assigned", "accepted", "in_mediation"), ("escalated",), HOLDERS_AND_HEADS, ("reason",),
         "上报 one level up; not at county level"),
    Rule("refer", ("accepted", "in_mediation"), ("referred",), MEDIATORS_AND_HEADS, ("target", "reason"),
         "调解优先: a session was held, or a party's refusal to mediate is recorded"),
    # feedback, evaluation, review
    Rule("evaluate", ("resolved",), ("closed", "resolved"), frozenset({"citizen", "system"}), ("rating",),
         "满意/基本满意 close the case; 不满意 opens a review"),
    Rule("redo", ("resolved",), ("in_mediation",), HEADS | SYSTEM, ("reason",),
         "重办 after a 不满意 review, with a new handling deadline"),
    Rule("dismiss_rating", ("resolved",), ("closed",), HEADS, ("reason",),
         "the review judged the 不满意 unreasonable"),
    Rule("close", ("resolved",), ("closed",), SYSTEM, ("reason",), "e.g. no rating in time; not during a review"),
    Rule("reopen", ("closed", "referred"), ("reopened",), HEADS, ("reason",)),
)

ACTIONS = tuple(dict.fromkeys(rule.action for rule in TRANSITIONS))
STAFF_ROLES = frozenset({"mediator", "grid_worker", "township_head", "county_supervisor"})
# What `POST /cases/{case_no}/actions/{action}` may expose; route, assign, close … stay internal.
STAFF_ACTIONS = tuple(action for action in ACTIONS
                      if any(rule.action == action and rule.roles & STAFF_ROLES for rule in TRANSITIONS))


def transitions() -> list[tuple[str, str, str, frozenset[str]]]:
    """Every allowed (from, action, to, roles), with SAME expanded: the table as data."""
    return [(source, rule.action, source if target == SAME else target, rule.roles)
            for rule in TRANSITIONS for source in rule.sources for target in rule.targets]


def _rule_for(action: str, status: str) -> Rule | None:
    return next((rule for rule in TRANSITIONS if rule.action == action and status in rule.sources), None)


def in_scope(case: CaseState, actor: Actor) -> str | None:
    """None when the actor's scope covers the case, else the reason it does not."""
    role = actor.role
    if role == "system" or role == "county_supervisor":
        return None
    if role == "mediator":
        return None if actor.id in case.holders else "调解员只能办理本人承办的案件"
    if role == "grid_worker":
        if case.level == "grid" and actor.id in case.holders:
            return None
        return "网格员只能办理本人承办的网格案件"
    if role == "township_head":
        if actor.township and case.township == actor.township and case.level != "county":
            return None
        return "乡镇负责人只能办理本乡镇县级以下的案件"
    if role == "citizen":
        return None if actor.case_no == case.case_no else "评价链接与案件不符"
    return "该角色没有调解流程操作权限"


def allowed_actions(case: CaseState, actor: Actor) -> list[str]:
    """Actions this actor may offer on this case now (role, scope and state; not the action's own rules)."""
    if in_scope(case, actor) is not None:
        return []
    return [action for action in ACTIONS
            if (rule := _rule_for(action, case.status)) is not None and actor.role in rule.roles]


# --- payload helpers --------------------------------------------------------------------

def _text(payload: dict[str, Any], name: str, required: bool = True) -> str:
    value = payload.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InvalidInput(f"缺少{name}", {name: ["required"]})
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"{name}应为文本", {name: ["must be text"]})
    return value.strip()


def _texts(payload: dict[str, Any], name: str) -> tuple[str, ...]:
    value = payload.get(name)
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise InvalidInput(f"{name}应为列表", {name: ["must be a list"]})
    items = tuple(item.strip() for item in value if isinstance(item, str) and item.strip())
    if not items or len(items) != len(value):
        raise InvalidInput(f"{name}不能为空", {name: ["must be a non-empty list of non-empty texts"]})
    return items


def _choice(payload: dict[str, Any], name: str, choices: tuple[str, ...]) -> str:
    value = payload.get(name)
    if value not in choices:
        raise InvalidInput(f"{name}取值无效", {name: [f"one of {', '.join(choices)}"]})
    return value


def _missing(payload: dict[str, Any], names: tuple[str, ...]) -> dict[str, list[str]]:
    return {name: ["required"] for name in names
            if payload.get(name) is None or payload.get(name) == "" or payload.get(name) == []}


# --- effects: one per action -----------------------------------------------------------

@dataclass
class Context:
    case: CaseState
    actor: Actor
    payload: dict[str, Any]
    now: datetime
    limits_table: LimitTable
    calendar: WorkingCalendar

    def limits(self, case: CaseState | None = None) -> Limits:
        case = case or self.case
        return self.limits_table.limits_for(case.level, case.mechanism, case.channel, case.dispute_type)

    def event(self, name: str, **payload: Any) -> DomainEvent:
        return DomainEvent(name, {"case_no": self.case.case_no, "at": self.now, **payload})


@dataclass
class Effect:
    case: CaseState
    events: list[DomainEvent] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)
    record: Session | Agreement | None = None


def _route(ctx: Context) -> Effect:
    level = _choice(ctx.payload, "level", LEVELS)
    mechanism = _choice(ctx.payload, "mechanism", MECHANISMS)
    case = replace(ctx.case, status="routed", level=level, mechanism=mechanism,
                   unit=ctx.payload.get("unit"), co_units=tuple(ctx.payload.get("co_units") or ()),
                   township=ctx.payload.get("township") or ctx.case.township,
                   dispute_type=ctx.payload.get("dispute_type") or ctx.case.dispute_type,
                   holders=(), outcome=None)
    effect = Effect(case, detail={"level": level, "mechanism": mechanism, "unit": case.unit})
    if ctx.payload.get("psych_needed"):
        effect.events.append(ctx.event("psych_requested", need=ctx.payload.get("psych_need") or "routing",
                                       urgent=case.major_since is not None, consent="pending"))
    return effect


def _assignment(ctx: Context, holders: tuple[str, ...], why: str) -> Effect:
    """A new holder: a fresh sign-off deadline; a fresh handling period unless the limit forbids it."""
    limits = ctx.limits()
    case = ctx.case
    restart = limits.restart_on_reassignment or case.handling_due is None
    case = replace(
        case, status="assigned", holders=holders, assigned_at=ctx.now,
        sign_off_due=limits.sign_off.after(ctx.now, ctx.calendar),
        accepted_at=None, accepted_late=False, finished_at=None, pending_extension=None, outcome=None,
        handling_started_at=ctx.now if restart else case.handling_started_at,
        handling_due=limits.handling.after(ctx.now, ctx.calendar) if restart else case.handling_due,
        extensions_used=0 if restart else case.extensions_used,
    )
    deadlines = {"sign_off_due": case.sign_off_due, "handling_due": case.handling_due}
    event = ctx.event("case_assigned", holders=list(holders), unit=case.unit, level=case.level,
                      mechanism=case.mechanism, reason=why, limits=limits.as_dict(), **deadlines)
    detail = {"holders": list(holders), "unit": case.unit, "township": case.township, "level": case.level,
              "basis": list(limits.basis), **deadlines}
    return Effect(case, [event], detail)


def _assign(ctx: Context) -> Effect:
    return _assignment(ctx, _texts(ctx.payload, "holders"), "routed")


def _choose(ctx: Context) -> Effect:
    ctx.case = replace(ctx.case, level=_choice(ctx.payload, "level", LEVELS),
                       mechanism=_choice(ctx.payload, "mechanism", MECHANISMS),
                       unit=ctx.payload.get("unit"), co_units=tuple(ctx.payload.get("co_units") or ()),
                       township=ctx.payload.get("township") or ctx.case.township)
    return _assignment(ctx, _texts(ctx.payload, "holders"), "party_choice")


def _reassign(ctx: Context) -> Effect:
    holders = _texts(ctx.payload, "holders")
    if set(holders) == set(ctx.case.holders):
        raise InvalidTransition("改派对象与现承办人相同")
    return _assignment(ctx, holders, "reassigned")


def _merge_source(ctx: Context) -> Effect:
    source = _text(ctx.payload, "source")
    if source in ctx.case.merged_sources:
        raise InvalidTransition("该来源已并入本案")
    return Effect(replace(ctx.case, merged_sources=ctx.case.merged_sources + (source,)), detail={"source": source})


def _unmerge_source(ctx: Context) -> Effect:
    source = _text(ctx.payload, "source")
    if source not in ctx.case.merged_sources:
        raise InvalidTransition("该来源未并入本案")
    remaining = tuple(s for s in ctx.case.merged_sources if s != source)
    return Effect(replace(ctx.case, merged_sources=remaining), detail={"source": source})


def _mark_major(ctx: Context) -> Effect:
    if ctx.case.major_since is not None:
        raise InvalidTransition("已标记为重大案件")
    return Effect(replace(ctx.case, major_since=ctx.now))


def _accept(ctx: Context) -> Effect:
    late = ctx.case.sign_off_due is not None and ctx.now > ctx.case.sign_off_due
    case = replace(ctx.case, status="accepted", accepted_at=ctx.now, accepted_late=late)
    event = ctx.event("case_accepted", by=ctx.actor.id, holders=list(case.holders), late=late,
                      sign_off_due=case.sign_off_due, handling_due=case.handling_due)
    return Effect(case, [event], {"late": late, "sign_off_due": case.sign_off_due})


def _return(ctx: Context) -> Effect:
    reason = _text(ctx.payload, "reason")
    returned_by = tuple(dict.fromkeys(ctx.case.returned_by + ctx.case.holders))
    case = replace(ctx.case, status="returned", holders=(), returned_by=returned_by,
                   finished_at=ctx.now, outcome="returned")
    event = ctx.event("assignment_returned", reason=mask_text(reason), level=case.level, unit=case.unit,
                      exclude_holders=list(returned_by))
    return Effect(case, [event], {"returned_by": list(ctx.case.holders)})


def _record_session(ctx: Context) -> Effect:
    mode = _choice(ctx.payload, "mode", SESSION_MODES)
    attendees = _texts(ctx.payload, "attendees")
    notes = _text(ctx.payload, "notes")
    held_at = ctx.payload.get("held_at") or ctx.now
    if not isinstance(held_at, datetime) or held_at.tzinfo is None:
        raise InvalidInput("held_at应为带时区的时间", {"held_at": ["an aware datetime"]})
    if held_at > ctx.now:
        raise InvalidInput("调解时间不能晚于当前时间", {"held_at": ["not in the future"]})
    session = Session(ctx.case.case_no, mode, attendees, notes, held_at, ctx.actor.label())
    case = replace(ctx.case, status="in_mediation", sessions=ctx.case.sessions + 1)
    return Effect(case, detail={"mode": mode, "attendees": len(attendees), "held_at": held_at}, record=session)


def _request_psych(ctx: Context) -> Effect:
    need = _text(ctx.payload, "need")
    consent = ctx.payload.get("consent", "pending")
    if consent not in PSYCH_CONSENT:
        raise InvalidInput("consent取值无效", {"consent": [f"one of {', '.join(PSYCH_CONSENT)}"]})
    urgent = bool(ctx.payload.get("urgent")) or ctx.case.major_since is not None
    event = ctx.event("psych_requested", need=mask_text(need), urgent=urgent, consent=consent)
    return Effect(ctx.case, [event], {"urgent": urgent, "consent": consent})


def _approver_role(case: CaseState) -> str:
    return "county_supervisor" if case.level == "county" else "township_head"


def _request_extension(ctx: Context) -> Effect:
    reason = _text(ctx.payload, "reason")
    case, limits = ctx.case, ctx.limits()
    if case.pending_extension is not None:
        raise InvalidTransition("已有待审批的延期申请")
    if limits.extension is None or case.extensions_used >= limits.max_extensions:
        raise InvalidTransition("本案已无可用的延期次数")
    if case.handling_due is None or ctx.now >= case.handling_due:
        raise InvalidTransition("延期须在办理期限届满前申请")
    request = ExtensionRequest(ctx.actor.label(), ctx.now, reason)
    event = ctx.event("extension_requested", requested_by=ctx.actor.id, reason=mask_text(reason),
                      handling_due=case.handling_due, extension=str(limits.extension),
                      approver_role=_approver_role(case), township=case.township, level=case.level)
    return Effect(replace(case, pending_extension=request), [event],
                  {"handling_due": case.handling_due, "extension": str(limits.extension)})


def _pending_request(ctx: Context) -> ExtensionRequest:
    request = ctx.case.pending_extension
    if request is None:
        raise InvalidTransition("没有待审批的延期申请")
    if request.requested_by == ctx.actor.label():
        raise Forbidden("不能审批本人提出的延期申请")
    return request


def _approve_extension(ctx: Context) -> Effect:
    _pending_request(ctx)
    case, limits = ctx.case, ctx.limits()
    new_due = limits.extension.after(case.handling_due, ctx.calendar)
    case = replace(case, handling_due=new_due, extensions_used=case.extensions_used + 1, pending_extension=None)
    event = ctx.event("extension_decided", approved=True, handling_due=new_due, holders=list(case.holders))
    return Effect(case, [event], {"previous_due": ctx.case.handling_due, "handling_due": new_due})


def _reject_extension(ctx: Context) -> Effect:
    _pending_request(ctx)
    reason = _text(ctx.payload, "reason")
    event = ctx.event("extension_decided", approved=False, reason=mask_text(reason),
                      handling_due=ctx.case.handling_due, holders=list(ctx.case.holders))
    return Effect(replace(ctx.case, pending_extension=None), [event])


def _resolve(ctx: Context) -> Effect:
    terms = _texts(ctx.payload, "terms")
    facts = _text(ctx.payload, "facts", required=False)
    judicial = bool(ctx.payload.get("judicial_confirmation", False))
    agreement = Agreement(ctx.case.case_no, terms, facts, judicial, ctx.case.holders, ctx.now)
    case = replace(ctx.case, status="resolved", finished_at=ctx.now, outcome="resolved",
                   rating=None, review_open=False)
    # The rating link rides on case_resolved (one SMS); evaluation_requested is the timer's
    # later reminder when no rating came (timers.evaluation_actions).
    events = [ctx.event("case_resolved", outcome="resolved", judicial_confirmation=judicial,
                        redo_count=case.redo_count)]
    return Effect(case, events, {"terms": len(terms), "judicial_confirmation": judicial}, agreement)


def _resolve_on_site(ctx: Context) -> Effect:
    summary = _text(ctx.payload, "summary")
    is_grid = ctx.case.channel == "grid" if ctx.case.status == "received" else ctx.case.level == "grid"
    if not is_grid:
        raise InvalidTransition("只有网格案件可以现场化解")
    case = replace(ctx.case, status="resolved_on_site", finished_at=ctx.now, outcome="resolved_on_site")
    events = [ctx.event("case_resolved", outcome="resolved_on_site", summary=mask_text(summary)),
              ctx.event("case_closed", outcome="resolved_on_site")]
    return Effect(case, events, {"summary": mask_text(summary)})


def _escalation(ctx: Context, failed: bool) -> Effect:
    reason = _text(ctx.payload, "reason")
    if ctx.case.level == "county":
        raise InvalidTransition("县级已是最高层级, 调解不成的应引导至仲裁、诉讼或行政复议")
    case = replace(ctx.case, status="escalated", holders=(), finished_at=ctx.now, outcome="escalated",
                   escalations=ctx.case.escalations + 1)
    event = ctx.event("escalation_requested", from_level=ctx.case.level, township=case.township,
                      unit=case.unit, reason=mask_text(reason), failed=failed,
                      previous_holders=list(ctx.case.holders))
    return Effect(case, [event], {"from_level": ctx.case.level, "failed": failed})


def _refer(ctx: Context) -> Effect:
    target = _choice(ctx.payload, "target", REFERRAL_TARGETS)
    _text(ctx.payload, "reason")
    declined = _text(ctx.payload, "mediation_declined", required=False)
    if ctx.case.sessions == 0 and not declined:
        raise InvalidTransition("调解优先: 转仲裁、诉讼或行政复议前须先调解 (记录调解) 或记录当事人拒绝调解的理由")
    mediation_first = {"sessions": ctx.case.sessions} if ctx.case.sessions else {"declined": mask_text(declined)}
    case = replace(ctx.case, status="referred", finished_at=ctx.now, outcome="referred", referral_target=target)
    event = ctx.event("case_closed", outcome="referred", target=target)
    return Effect(case, [event], {"target": target, "mediation_first": mediation_first})


def _evaluate(ctx: Context) -> Effect:
    rating = _choice(ctx.payload, "rating", RATINGS)
    comment = _text(ctx.payload, "comment", required=False)
    if ctx.case.rating is not None or ctx.case.review_open:
        raise InvalidTransition("本轮办理已评价")
    satisfied = rating in SATISFIED
    case = replace(ctx.case, rating=rating, review_open=not satisfied,
                   status="closed" if satisfied else "resolved")
    events = [ctx.event("case_evaluated", rating=rating, comment=mask_text(comment), review=not satisfied)]
    if satisfied:
        events.append(ctx.event("case_closed", outcome=case.outcome, rating=rating))
    return Effect(case, events, {"rating": rating, "review": not satisfied})


def _open_review(ctx: Context) -> None:
    if not ctx.case.review_open:
        raise InvalidTransition("没有待复核的不满意评价")


def _redo(ctx: Context) -> Effect:
    _open_review(ctx)
    _text(ctx.payload, "reason")
    limits = ctx.limits()
    case = replace(ctx.case, status="in_mediation", review_open=False, rating=None, finished_at=None,
                   outcome=None, redo_count=ctx.case.redo_count + 1, extensions_used=0,
                   handling_started_at=ctx.now, handling_due=limits.handling.after(ctx.now, ctx.calendar))
    event = ctx.event("case_assigned", holders=list(case.holders), unit=case.unit, level=case.level,
                      mechanism=case.mechanism, reason="redo", limits=limits.as_dict(),
                      sign_off_due=None, handling_due=case.handling_due)
    return Effect(case, [event], {"redo_count": case.redo_count, "handling_due": case.handling_due})


def _dismiss_rating(ctx: Context) -> Effect:
    _open_review(ctx)
    _text(ctx.payload, "reason")
    case = replace(ctx.case, status="closed", review_open=False)
    event = ctx.event("case_closed", outcome=case.outcome, rating=case.rating, review="rating_unreasonable")
    return Effect(case, [event], {"rating": case.rating, "judgement": "rating_unreasonable"})


def _close(ctx: Context) -> Effect:
    if ctx.case.review_open:
        raise InvalidTransition("不满意评价复核中, 不能结案")
    _text(ctx.payload, "reason")
    case = replace(ctx.case, status="closed")
    return Effect(case, [ctx.event("case_closed", outcome=case.outcome, rating=case.rating)])


def _reopen(ctx: Context) -> Effect:
    _text(ctx.payload, "reason")
    # The old deadlines belong to the finished round: the next assignment sets new ones.
    case = replace(ctx.case, status="reopened", outcome=None, referral_target=None, rating=None,
                   review_open=False, pending_extension=None, assigned_at=None, sign_off_due=None,
                   accepted_at=None, accepted_late=False, handling_started_at=None, handling_due=None,
                   finished_at=None, extensions_used=0)
    return Effect(case, detail={"previous_outcome": ctx.case.outcome})


EFFECTS: dict[str, Callable[[Context], Effect]] = {
    "route": _route, "assign": _assign, "choose": _choose, "reassign": _reassign, "merge_source": _merge_source,
    "unmerge_source": _unmerge_source, "mark_major": _mark_major, "accept": _accept, "return": _return,
    "record_session": _record_session, "request_psych": _request_psych,
    "request_extension": _request_extension, "approve_extension": _approve_extension,
    "reject_extension": _reject_extension, "resolve": _resolve, "resolve_on_site": _resolve_on_site,
    "fail": lambda ctx: _escalation(ctx, failed=True), "escalate": lambda ctx: _escalation(ctx, failed=False),
    "refer": _refer, "evaluate": _evaluate, "redo": _redo, "dismiss_rating": _dismiss_rating,
    "close": _close, "reopen": _reopen,
}
if set(EFFECTS) != set(ACTIONS):
    raise RuntimeError("every action in TRANSITIONS needs exactly one effect")


# --- apply -------------------------------------------------------------------------------

def apply(case: CaseState, action: str, actor: Actor, payload: dict[str, Any] | None, now: datetime, *,
          limits: LimitTable | None = None, calendar: WorkingCalendar | None = None) -> Transition:
    """Check and perform one action; raise Forbidden, InvalidTransition or InvalidInput."""
    payload = payload or {}
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    if action not in EFFECTS:
        raise InvalidInput(f"未知操作 {action}", {"action": [f"one of {', '.join(ACTIONS)}"]})
    if actor.role not in ROLES:
        raise Forbidden(f"未知角色 {actor.role}")
    if not any(actor.role in rule.roles for rule in TRANSITIONS if rule.action == action):
        raise Forbidden(f"角色 {actor.role} 无权执行 {action}")
    scope_refusal = in_scope(case, actor)
    if scope_refusal:
        raise Forbidden(scope_refusal)
    rule = _rule_for(action, case.status)
    if rule is None:
        raise InvalidTransition(f"案件状态为 {case.status}, 不能执行 {action}")
    if actor.role not in rule.roles:
        raise Forbidden(f"案件状态为 {case.status} 时, 角色 {actor.role} 无权执行 {action}")
    missing = _missing(payload, rule.requires)
    if missing:
        raise InvalidInput(f"缺少必填项: {', '.join(missing)}", missing)

    ctx = Context(case, actor, payload, now, limits or default_limits(), calendar or default_calendar())
    effect = EFFECTS[action](ctx)
    new_case = effect.case
    allowed_targets = {case.status if target == SAME else target for target in rule.targets}
    if new_case.status not in allowed_targets:
        raise RuntimeError(f"{action} produced {new_case.status}; the table allows {sorted(allowed_targets)}")

    reason = payload.get("reason")
    audit = AuditRow(case.case_no, now, actor.label(), action, case.status, new_case.status,
                     mask_text(reason) if isinstance(reason, str) else None, effect.detail)
    return Transition(new_case, audit, tuple(effect.events), effect.record)
