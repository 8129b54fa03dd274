"""Where a case goes and who handles it: mechanism, level, unit(s), mediators, with reasons.

Pure functions over `CaseFacts` (what the canonical case says), a `Classification` (what
classify.py read in the text) and a `Directory`. The rules a county may want to change
are tables in rules/: mechanism.yaml (the four mechanisms and joint co-units), level.yaml
(the starting level) and ranking.yaml (mediator scoring, 多对一, 点将 limits).

Entry points for the service:
- `decide`            a new, returned (exclude_mediators, exclude_units) or escalated (at_level, room) case
- `decide_staffed`    `decide`, moving up a level while nobody at the level can take the case
- `escalate`          the next level up the chain grid → village → work_area → township → county
- `validate_choice`   the parties' own pick of one or several mediators (超市 点将)
- `rank_mediators`    the ranked candidates, for a roster view or a staff re-assignment
- `staff_refs`        a decision's unit/co-units/mediators (and supervisors) as case_routed's StaffRefs
Every reason is Chinese: the case history shows it to staff and to citizens.
"""
from __future__ import annotations

import random
import statistics
import string
import time
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping

import yaml

from services.routing.directory import Directory, Mediator, Unit, distance_km
from services.routing.domain import DISPUTE_TYPES, LEVELS, MECHANISMS, Classification, Severity

RULES_DIR = Path(__file__).resolve().parent / "rules"
CHANNELS = ("hotline", "petition", "opinion", "app", "grid", "walkin")
APP_SECTIONS = ("speak", "miao", "ask_gov", "accountability", "advice")
LEVEL_NAMES = {"grid": "网格", "village": "村居", "work_area": "片区(社区)", "township": "乡镇(街道)", "county": "县级"}
MECHANISM_NAMES = {"supermarket": "超市", "specialised": "归口", "joint": "联动", "chain": "连锁"}
# The highest level each kind of mediator serves; a party may pick a mediator serving the
# case's level or above (a county mediator for a village case, never the reverse).
MEDIATOR_REACH = {"village": "work_area", "township": "township", "county": "county"}

# Facts a rule may test; numeric ones take the _at_least / _at_most suffixes.
VALUE_FACTS = ("dispute_type", "gov_category", "channel", "app_section", "petition_form", "mechanism")
FLAG_FACTS = ("major", "urgent", "party_dispute", "mass_risk", "extreme_risk", "repeat", "psych_needed",
              "township_known", "village_known",
              "grid_known", "walkin_at_county", "cross_department", "department_owned")
# people: the submission form's count when it gives one, else the count read in the text;
# reported_people: the form's count only (texts give estate sizes, "小区2584户", not complainants).
NUMBER_FACTS = ("people", "reported_people", "amount")
WEIGHTS = ("specialty", "locality", "room_lead", "full_time", "spare_capacity", "distance_per_km")
TEMPLATE_NAMES = VALUE_FACTS + FLAG_FACTS + NUMBER_FACTS + ("severity", "unit_name")


class RulesError(ValueError):
    """A rules file that cannot be applied; raised when the rules are loaded."""


class CannotEscalate(Exception):
    """The case is already at the top of the chain (county)."""


@dataclass(frozen=True)
class CaseFacts:
    """What the canonical case (intake's case_received) says, as routing needs it.

    Places are codes from the directory (a township may also be given by name); the grid
    implies its village, the village its work area and township.
    """

    case_no: str
    channel: str                           # hotline | petition | opinion | app | grid | walkin
    township: str | None = None
    village: str | None = None
    grid: str | None = None
    people_count: int | None = None
    app_section: str | None = None         # speak | miao | ask_gov | accountability | advice
    petition_form: str | None = None       # letter | visit | online
    party_villages: tuple[str, ...] = ()   # the parties' home villages, for recusal
    repeat_of_party: bool = False          # intake found an earlier case of the same party
    centre: str | None = None              # walk-ins: the centre whose front desk took it
    urgent: bool = False                   # intake saw an emergency in progress (case_urgent)

    def __post_init__(self):
        if self.channel not in CHANNELS:
            raise ValueError(f"unknown channel {self.channel!r}")
        if self.app_section is not None and self.app_section not in APP_SECTIONS:
            raise ValueError(f"unknown app section {self.app_section!r}")


@dataclass(frozen=True)
class Candidate:
    mediator: str
    score: float
    parts: tuple[tuple[str, float], ...]   # (weight name, contribution), for the record
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class JointPlan:
    lead_unit: str
    co_units: tuple[str, ...]
    township: str | None
    summary: str
    steps: tuple[str, ...]


@dataclass(frozen=True)
class Decision:
    level: str
    mechanism: str
    township: str | None                   # resolved place, codes
    village: str | None
    unit: str | None                       # lead unit (归口, 联动)
    co_units: tuple[str, ...]
    mediators: tuple[str, ...]             # lead first; more than one is 多对一
    grid_worker: str | None                # the handler at grid level
    centre: str | None                     # the mediation centre responsible at this level
    room: str | None                       # the county room involved (at county, or guiding a chain case)
    joint_plan: JointPlan | None
    psych_needed: bool
    reasons: tuple[str, ...]
    major: bool = False                    # a major dispute by the `major` rules of mechanism.yaml

    def to_dict(self) -> dict:
        return _plain(asdict(self))


def _plain(value):
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


@dataclass(frozen=True)
class Escalation:
    from_level: str
    level: str
    target: str                            # village / work area / township centre / county room code
    target_name: str
    room: str | None                       # at county: the room guiding the township (连锁)
    reasons: tuple[str, ...]


# --- rules ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    id: str
    when: Mapping
    outcome: str
    reason: str

    def holds(self, facts: Mapping) -> bool:
        return conditions_hold(self.when, facts)


@dataclass(frozen=True)
class Rules:
    mechanism: tuple[Rule, ...]
    level: tuple[Rule, ...]
    assign_mediators: frozenset[str]
    joint_default_lead: str
    joint_co_units: tuple[tuple[Mapping, tuple[str, ...]], ...]
    joint_steps: tuple[str, ...]
    major: tuple[Mapping, ...]
    weights: Mapping[str, float]
    hard_case: tuple[Mapping, ...]
    team_size_hard: int
    max_party_choice: int
    app_section_rooms: Mapping[str, str]

    @classmethod
    def load(cls, folder: Path | str | None = None) -> Rules:
        folder = Path(folder) if folder else RULES_DIR
        mechanism, level, ranking = (
            yaml.safe_load((folder / name).read_text(encoding="utf-8"))
            for name in ("mechanism.yaml", "level.yaml", "ranking.yaml"))
        try:
            rules = cls._from_tables(mechanism, level, ranking)
        except (KeyError, TypeError, AttributeError) as exc:
            raise RulesError(f"rules in {folder} are missing or malformed: {exc!r}") from exc
        for table, outcomes in (("mechanism", rules.mechanism), ("level", rules.level)):
            if not outcomes or outcomes[-1].when:
                raise RulesError(f"{table}.yaml: the last rule must have an empty `when`, so every case gets one")
        unknown = rules.assign_mediators - set(MECHANISMS)
        if unknown:
            raise RulesError(f"mechanism.yaml: assign_mediators names unknown mechanisms {sorted(unknown)}")
        if any("major" in when for when in rules.major):
            raise RulesError("mechanism.yaml: `major` cannot depend on itself")
        missing = set(WEIGHTS) - set(rules.weights)
        if missing:
            raise RulesError(f"ranking.yaml: missing weights {sorted(missing)}")
        return rules

    @classmethod
    def _from_tables(cls, mechanism: dict, level: dict, ranking: dict) -> Rules:
        return cls(
            mechanism=tuple(_rule(r, "mechanism", MECHANISMS) for r in mechanism["rules"]),
            level=tuple(_rule(r, "level", LEVELS) for r in level["rules"]),
            assign_mediators=frozenset(mechanism["assign_mediators"]),
            joint_default_lead=mechanism["joint"]["default_lead"],
            joint_co_units=tuple((_conditions(item["when"], "joint co_units"), tuple(item["units"]))
                                 for item in mechanism["joint"]["co_units"]),
            joint_steps=tuple(mechanism["joint"]["steps"]),
            major=tuple(_conditions(when, "major") for when in mechanism["major"]),
            weights={name: float(value) for name, value in ranking["weights"].items()},
            hard_case=tuple(_conditions(when, "hard_case") for when in ranking["hard_case"]),
            team_size_hard=int(ranking["team_size_hard"]),
            max_party_choice=int(ranking["max_party_choice"]),
            app_section_rooms=dict(ranking.get("app_section_rooms") or {}),
        )

    def problems(self, directory: Directory) -> list[str]:
        """Codes the rules name that the directory does not know (check after a roster change)."""
        units = [self.joint_default_lead] + [code for _, codes in self.joint_co_units for code in codes]
        found = [f"unknown unit {code}" for code in units if directory.unit(code) is None]
        found += [f"app section {section}: unknown room {code}"
                  for section, code in self.app_section_rooms.items() if directory.room(code) is None]
        return found


@lru_cache(maxsize=1)
def default_rules() -> Rules:
    return Rules.load()


def conditions_hold(when: Mapping, facts: Mapping) -> bool:
    for key, expected in when.items():
        if key.endswith("_at_least"):
            value = facts[key.removesuffix("_at_least")]
            if value is None or value < expected:
                return False
        elif key.endswith("_at_most"):
            value = facts[key.removesuffix("_at_most")]
            if value is not None and value > expected:
                return False
        elif isinstance(expected, list):
            if facts[key] not in expected:
                return False
        elif facts[key] != expected:
            return False
    return True


def _conditions(when, where: str) -> dict:
    if not isinstance(when, dict):
        raise RulesError(f"{where}: `when` must be a mapping")
    for key, value in when.items():
        base = key.removesuffix("_at_least").removesuffix("_at_most")
        if base != key:
            if base not in NUMBER_FACTS or not isinstance(value, (int, float)):
                raise RulesError(f"{where}: {key} needs a numeric fact and a number")
        elif key in FLAG_FACTS:
            if not isinstance(value, bool):
                raise RulesError(f"{where}: {key} must be true or false")
        elif key not in VALUE_FACTS:
            raise RulesError(f"{where}: unknown condition {key!r}")
        elif key == "dispute_type" and any(v not in DISPUTE_TYPES for v in _as_list(value)):
            raise RulesError(f"{where}: unknown dispute type in {value!r}")
        elif key == "mechanism" and any(v not in MECHANISMS for v in _as_list(value)):
            raise RulesError(f"{where}: unknown mechanism in {value!r}")
    return dict(when)


def _rule(raw: Mapping, outcome_key: str, allowed: tuple[str, ...]) -> Rule:
    where = f"{outcome_key} rule {raw.get('id')!r}"
    if raw.get(outcome_key) not in allowed:
        raise RulesError(f"{where}: {outcome_key} must be one of {', '.join(allowed)}")
    reason = raw.get("reason", "")
    fields_used = {name for _, name, _, _ in string.Formatter().parse(reason) if name}
    if fields_used - set(TEMPLATE_NAMES):
        raise RulesError(f"{where}: unknown placeholders {sorted(fields_used - set(TEMPLATE_NAMES))}")
    return Rule(id=raw["id"], when=_conditions(raw.get("when") or {}, where), outcome=raw[outcome_key], reason=reason)


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


# --- facts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    township: str | None
    work_area: str | None
    village: str | None
    grid: str | None
    notes: tuple[str, ...]

    def location(self, directory: Directory) -> tuple[float, float] | None:
        return directory.location(self.village or self.township)


def locate(case: CaseFacts, directory: Directory) -> Place:
    """Resolve the case's places; the most precise one wins and implies the others."""
    notes = []
    grid = directory.grid(case.grid)
    if case.grid and grid is None:
        notes.append(f"网格编码{case.grid}不在名录中, 已忽略")
    village = directory.village(grid.village if grid else case.village)
    if case.village and directory.village(case.village) is None:
        notes.append(f"村居编码{case.village}不在名录中, 已忽略")
    elif grid and case.village and case.village != grid.village:
        notes.append(f"网格{grid.code}属于{village.name}, 以网格为准")
    township = directory.township(case.township)
    if case.township and township is None:
        notes.append(f"乡镇(街道){case.township}不在名录中")
    if village and (township is None or township.code != village.township):
        if township is not None:
            notes.append(f"{village.name}属于{directory.township(village.township).name}, 以村居为准")
        township = directory.township(village.township)
    return Place(
        township=township.code if township else None,
        work_area=village.work_area if village else None,
        village=village.code if village else None,
        grid=grid.code if grid and village and grid.village == village.code else None,
        notes=tuple(notes),
    )


def responsible_unit(classification: Classification, directory: Directory) -> Unit | None:
    """The unit answering for the case: the dispute type's owner, or for a complaint that is
    not a dispute (其他), the department of its government-message category."""
    owner = directory.owner_of(classification.dispute_type)
    if classification.dispute_type == "其他":
        by_category = directory.units_for_category(classification.gov_category)
        if by_category:
            return by_category[0]
    return owner


def _facts(case: CaseFacts, classification: Classification, place: Place, directory: Directory,
           rules: Rules) -> dict:
    severity = classification.severity or Severity()
    people = case.people_count if case.people_count is not None else severity.people
    unit = responsible_unit(classification, directory)
    county_centre = directory.county_centre().code
    facts = {
        "dispute_type": classification.dispute_type,
        "gov_category": classification.gov_category,
        "channel": case.channel,
        "app_section": case.app_section,
        "petition_form": case.petition_form,
        "mechanism": None,
        "major": False,
        "urgent": case.urgent,
        "party_dispute": classification.dispute_type != "其他",
        "mass_risk": severity.mass_risk,
        "extreme_risk": severity.extreme_risk,
        "repeat": severity.repeat_complaint or case.repeat_of_party,
        "psych_needed": classification.psych_needed or severity.extreme_risk,
        "township_known": place.township is not None,
        "village_known": place.village is not None,
        "grid_known": place.grid is not None,
        "walkin_at_county": case.channel == "walkin" and case.centre == county_centre,
        "cross_department": bool(directory.owner_of(classification.dispute_type)
                                 and directory.co_handlers_of(classification.dispute_type)),
        "department_owned": unit is not None and unit.kind != "centre",
        "people": people,
        "reported_people": case.people_count,
        "amount": severity.amount_yuan,
        "severity": _severity_words(severity, people),
        "unit_name": unit.name if unit else "",
    }
    facts["major"] = any(conditions_hold(when, facts) for when in rules.major)
    return facts


def _severity_words(severity: Severity, people: int | None) -> str:
    words = []
    if severity.mass_risk:
        words.append("群体性事件风险")
    if severity.extreme_risk:
        words.append("极端行为风险")
    if people:
        words.append(f"涉及{people}人")
    if severity.amount_yuan:
        words.append(f"涉及金额{severity.amount_yuan}元")
    if severity.repeat_complaint:
        words.append("多次反映")
    return "、".join(words) or "无"


def _say(rule: Rule, facts: Mapping, label: str) -> str:
    text = rule.reason.format_map({name: "" if facts.get(name) is None else facts[name] for name in TEMPLATE_NAMES})
    return f"{label} [规则 {rule.id}]: {text}" if text else f"{label} [规则 {rule.id}]"


# --- deciding -------------------------------------------------------------------------------


def decide(case: CaseFacts, classification: Classification, directory: Directory, *,
           rules: Rules | None = None, exclude_mediators: Iterable[str] = (), exclude_units: Iterable[str] = (),
           at_level: str | None = None, room: str | None = None, load: Mapping[str, int] | None = None) -> Decision:
    """Route one case.

    `exclude_mediators`: who returned it (退单) or handled it below; never chosen again.
    `exclude_units`: units that returned it (not theirs); the case goes to the next owner or the supermarket.
    `at_level`: route at this level instead of the level rules' (returned or escalated cases).
    `room`: the county room to prefer (an escalation's room). `load`: open cases per mediator.
    """
    rules = rules or default_rules()
    if at_level is not None and at_level not in LEVELS:
        raise ValueError(f"unknown level {at_level!r}")
    place = locate(case, directory)
    facts = _facts(case, classification, place, directory, rules)
    reasons = list(place.notes)
    exclude_units = set(exclude_units)

    mechanism_rule = next(rule for rule in rules.mechanism if rule.holds(facts))
    mechanism = mechanism_rule.outcome
    facts["mechanism"] = mechanism
    unit, co_units = _units(mechanism, classification, facts, directory, rules, exclude_units)
    if mechanism == "specialised" and unit is None:
        mechanism, facts["mechanism"] = "supermarket", "supermarket"
        owner = responsible_unit(classification, directory)
        why = f"{owner.name}已退回本案" if owner and owner.code in exclude_units else "在名录中没有归口单位"
        reasons.append(f"机制=超市: {classification.dispute_type}{why}, 改为超市对接")
    else:
        reasons.append(_say(mechanism_rule, facts, f"机制={MECHANISM_NAMES[mechanism]}({mechanism})"))

    if at_level is None:
        level_rule = next(rule for rule in rules.level if rule.holds(facts))
        level = level_rule.outcome
        reasons.append(_say(level_rule, facts, f"层级={LEVEL_NAMES[level]}({level})"))
    else:
        level = at_level
        reasons.append(f"层级={LEVEL_NAMES[level]}({level}): 按退单或上报指定的层级重新分派")
    level = _placeable(level, place, reasons)

    centre, chosen_room = _centre_and_room(case, classification, level, mechanism, place, directory, rules, room,
                                           reasons)
    if unit:
        reasons.append(f"牵头单位: {_unit_label(unit, directory)}" + (
            f"; 协办单位: {'、'.join(_unit_label(code, directory) for code in co_units)}" if co_units else ""))
    psych_needed = facts["psych_needed"]
    if psych_needed:
        reasons.append("需要心理疏导: " + ("存在极端行为风险" if facts["extreme_risk"] else "分类结果提示心理需求"))

    grid_worker, mediators = None, ()
    if level == "grid":
        grid_worker = directory.grid(place.grid).grid_worker
        reasons.append(f"由网格员{grid_worker}现场调处")
    elif mechanism in rules.assign_mediators:
        mediators = _choose_team(case, classification, level, place, chosen_room, facts, directory, rules,
                                 exclude_mediators, load, reasons)
    else:
        reasons.append(f"由{directory.unit(unit).name}指派承办人员")

    plan = _joint_plan(unit, co_units, place, directory, rules) if mechanism == "joint" else None
    return Decision(
        level=level, mechanism=mechanism, township=place.township, village=place.village, unit=unit,
        co_units=co_units, mediators=mediators, grid_worker=grid_worker, centre=centre, room=chosen_room,
        joint_plan=plan, psych_needed=psych_needed, reasons=tuple(reasons), major=facts["major"],
    )


def decide_staffed(case: CaseFacts, classification: Classification, directory: Directory, *,
                   rules: Rules | None = None, exclude_mediators: Iterable[str] = (),
                   exclude_units: Iterable[str] = (), at_level: str | None = None, room: str | None = None,
                   load: Mapping[str, int] | None = None) -> Decision:
    """`decide`, but never a decision without someone to hold the case.

    When nobody at the level can take it (all returned it, recuse, or are full), the case moves
    up the chain one level at a time, as an escalation would (连锁: a township's case goes to
    the county room guiding it). At county with nobody left, the county mediation centre holds
    it and assigns it by hand. The history says why at each step."""
    rules = rules or default_rules()
    options = dict(rules=rules, exclude_mediators=tuple(exclude_mediators), exclude_units=tuple(exclude_units),
                   load=load)
    decision = decide(case, classification, directory, at_level=at_level, room=room, **options)
    while not (decision.mediators or decision.unit or decision.grid_worker):
        try:
            step = escalate(decision.level, case, directory)
        except CannotEscalate:
            lead = rules.joint_default_lead
            return replace(decision, unit=lead, reasons=decision.reasons + (
                f"县级暂无可指派的调解员, 由{_unit_label(lead, directory)}人工指派",))
        moved = decide(case, classification, directory, at_level=step.level, room=step.room, **options)
        decision = replace(moved, reasons=decision.reasons + (
            f"{LEVEL_NAMES[decision.level]}暂无可指派的调解员, 上移一级",) + step.reasons + moved.reasons)
    return decision


def _unit_label(code: str, directory: Directory) -> str:
    return f"{directory.unit(code).name}({code})"


def _units(mechanism, classification, facts, directory, rules, exclude=frozenset()
           ) -> tuple[str | None, tuple[str, ...]]:
    if mechanism not in ("specialised", "joint"):
        return None, ()
    unit = responsible_unit(classification, directory)
    if unit is not None and unit.code in exclude:
        unit = None
    if mechanism == "specialised":
        return (unit.code if unit else None), ()
    lead = unit.code if unit else rules.joint_default_lead
    co = [u.code for u in directory.co_handlers_of(classification.dispute_type)]
    for when, codes in rules.joint_co_units:
        if conditions_hold(when, facts):
            co += codes
    return lead, tuple(dict.fromkeys(code for code in co if code != lead and code not in exclude))


def _placeable(level: str, place: Place, reasons: list[str]) -> str:
    """Move up while the level cannot be placed for lack of a place."""
    needs = {"grid": place.grid, "village": place.village, "work_area": place.work_area, "township": place.township}
    start = level
    while level in needs and needs[level] is None:
        level = LEVELS[LEVELS.index(level) + 1]
    if level != start:
        reasons.append(f"层级调整为{LEVEL_NAMES[level]}: 缺少{LEVEL_NAMES[start]}位置信息")
    return level


def _centre_and_room(case, classification, level, mechanism, place, directory, rules, room, reasons):
    if level != "county":
        centre = directory.centre_of_township(place.township)
        guiding = directory.room_guiding(place.township) if mechanism == "chain" else None
        if guiding:
            reasons.append(f"连锁: {centre.name}在县人民调解中心{guiding.name}指导下办理")
        return (centre.code if centre else None), (guiding.code if guiding else None)
    county = directory.county_centre()
    if mechanism not in rules.assign_mediators:
        return county.code, None  # the unit handles it; the centre only supervises
    chosen, why = None, ""
    if room and directory.room(room):
        chosen, why = directory.room(room), "上报指定"
    elif case.app_section in rules.app_section_rooms:
        chosen, why = directory.room(rules.app_section_rooms[case.app_section]), "群众点名"
    elif directory.rooms_for_specialty(classification.dispute_type):
        chosen, why = directory.rooms_for_specialty(classification.dispute_type)[0], "专业对口"
    elif place.township and directory.room_guiding(place.township):
        chosen = directory.room_guiding(place.township)
        why = f"该室指导{directory.township(place.township).name}(连锁)"
    if chosen:
        reasons.append(f"县人民调解中心{chosen.name}承办: {why}")
    return county.code, (chosen.code if chosen else None)


def _joint_plan(lead, co_units, place, directory, rules) -> JointPlan:
    names = [directory.unit(code).name for code in co_units]
    township = directory.township(place.township) if place.township else None
    summary = f"一案一策: 由{directory.unit(lead).name}牵头" + (f", 会同{'、'.join(names)}" if names else "") \
        + "集体会商, 联动调处" + (f"; 属地{township.name}配合稳控" if township else "") + "。"
    return JointPlan(lead_unit=lead, co_units=co_units, township=place.township, summary=summary,
                     steps=rules.joint_steps)


# --- mediators ------------------------------------------------------------------------------


def _pool(level: str, place: Place, room: str | None, directory: Directory) -> list[tuple[Mediator, bool]]:
    """(mediator, in the first part of the pool) for a level."""
    if level == "village":
        area = directory.villages_of_work_area(place.work_area)
        return [(m, v.code == place.village) for v in area for m in directory.mediators(village=v.code)]
    if level == "work_area":
        return [(m, True) for v in directory.villages_of_work_area(place.work_area)
                for m in directory.mediators(village=v.code)]
    if level == "township":
        return [(m, True) for m in directory.mediators(level="township", township=place.township)]
    if level == "county":
        return [(m, m.room == room) for m in directory.mediators(level="county")]
    return []


def refusal(mediator: Mediator, involved_villages: set[str], load: Mapping[str, int],
            exclude: set[str]) -> str | None:
    """Why a mediator cannot take the case, or None. Shared by ranking and party choice."""
    if mediator.id in exclude:
        return "该调解员已退回或办理过本案, 不再指派"
    if not mediator.active:
        return "该调解员暂停接案"
    if involved_villages & set(mediator.recusal_villages):
        return "该调解员与本案所涉村居有利害关系, 须回避"
    open_cases = load.get(mediator.id, 0)
    if open_cases >= mediator.capacity:
        return f"该调解员在办案件{open_cases}件, 已达容量{mediator.capacity}件"
    return None


def _involved(case: CaseFacts, place: Place) -> set[str]:
    return ({place.village} if place.village else set()) | set(case.party_villages)


def _rank(case, dispute_type, level, place, room, directory, rules, exclude, load):
    load = load or {}
    exclude = set(exclude)
    involved = _involved(case, place)
    here = place.location(directory)
    chosen_room = directory.room(room)
    weights = rules.weights
    candidates, refused = [], {}
    for mediator, first_choice in _pool(level, place, room, directory):
        why_not = refusal(mediator, involved, load, exclude)
        if why_not:
            refused[mediator.id] = why_not
            continue
        parts, reasons = [], []
        if dispute_type in mediator.specialties:
            parts.append(("specialty", weights["specialty"]))
            reasons.append(f"擅长{dispute_type}")
        if first_choice:
            parts.append(("locality", weights["locality"]))
            reasons.append({"village": "本村调解员", "work_area": "本片区调解员", "township": "本乡镇调解中心",
                            "county": f"{chosen_room.name if chosen_room else ''}调解员"}[level])
        if chosen_room and chosen_room.lead == mediator.id:
            parts.append(("room_lead", weights["room_lead"]))
            reasons.append(f"{chosen_room.name}负责人")
        if mediator.full_time:
            parts.append(("full_time", weights["full_time"]))
            reasons.append("专职")
        open_cases = load.get(mediator.id, 0)
        parts.append(("spare_capacity", _tidy(weights["spare_capacity"] * (1 - open_cases / mediator.capacity))))
        reasons.append(f"在办{open_cases}/{mediator.capacity}件")
        base = directory.base_of(mediator)
        if here and base:
            km = distance_km(here, base)
            parts.append(("distance", _tidy(-weights["distance_per_km"] * km)))
            reasons.append(f"距离{km:.1f}公里")
        score = _tidy(sum(value for _, value in parts))
        candidates.append(Candidate(mediator.id, score, tuple(parts), tuple(reasons)))
    candidates.sort(key=lambda c: (-c.score, c.mediator))
    return candidates, refused


def _tidy(value: float) -> float:
    return round(value, 3) + 0.0  # + 0.0 turns -0.0 into 0.0 for the reasons' sake


def rank_mediators(case: CaseFacts, dispute_type: str, level: str, directory: Directory, *,
                   load: Mapping[str, int] | None = None, exclude: Iterable[str] = (), room: str | None = None,
                   rules: Rules | None = None) -> list[Candidate]:
    """Eligible mediators for the case at `level`, best first (see rules/ranking.yaml)."""
    return _rank(case, dispute_type, level, locate(case, directory), room, directory, rules or default_rules(),
                 exclude, load)[0]


def _choose_team(case, classification, level, place, room, facts, directory, rules, exclude, load, reasons):
    candidates, refused = _rank(case, classification.dispute_type, level, place, room, directory, rules,
                                exclude, load)
    hard = any(conditions_hold(when, facts) for when in rules.hard_case)
    team = candidates[: rules.team_size_hard if hard else 1]
    for position, candidate in enumerate(team):
        parts = ", ".join(f"{name} {value:+g}" for name, value in candidate.parts)
        role = "主调" if position == 0 else "协调"
        reasons.append(f"{role}调解员 {candidate.mediator} 得分{candidate.score:g} "
                       f"({'、'.join(candidate.reasons)}; {parts})")
    if hard and len(team) > 1:
        reasons.append(f"疑难案件, 多对一: {len(team)}名调解员共同调解")
    if refused:
        shown = "; ".join(f"{mediator_id}: {why}" for mediator_id, why in sorted(refused.items())[:5])
        more = f" 等{len(refused)}人" if len(refused) > 5 else ""
        reasons.append(f"未予考虑{more}: {shown}")
    if not team:
        reasons.append(f"{LEVEL_NAMES[level]}暂无可指派的调解员, 由调解中心人工指派")
    return tuple(candidate.mediator for candidate in team)


# --- escalation and party choice -------------------------------------------------------------


def escalate(current_level: str, case: CaseFacts, directory: Directory) -> Escalation:
    """One level up: grid → village → work_area → township → county; from a township to the
    county room guiding it (连锁). Levels that cannot be placed are skipped, with a reason."""
    if current_level not in LEVELS:
        raise ValueError(f"unknown level {current_level!r}")
    if current_level == "county":
        raise CannotEscalate("县级是最高调解层级, 调解不成的引导当事人通过仲裁、诉讼等途径解决")
    place = locate(case, directory)
    reasons = list(place.notes)
    for level in LEVELS[LEVELS.index(current_level) + 1:]:
        target = _escalation_target(level, place, directory)
        if target is None:
            reasons.append(f"跳过{LEVEL_NAMES[level]}: 缺少该级位置信息")
            continue
        code, name, room = target
        reasons.append(f"{LEVEL_NAMES[current_level]}调解未果, 上报{name}" + (
            f"(该室指导{directory.township(place.township).name}, 连锁)" if room else ""))
        return Escalation(from_level=current_level, level=level, target=code, target_name=name, room=room,
                          reasons=tuple(reasons))
    raise CannotEscalate("无法确定上报目标")


def _escalation_target(level: str, place: Place, directory: Directory):
    if level == "village" and place.village:
        return place.village, f"{directory.village(place.village).name}人民调解委员会", None
    if level == "work_area" and place.work_area:
        return place.work_area, f"{directory.work_area(place.work_area).name}网格化管理服务室", None
    if level == "township" and place.township:
        centre = directory.centre_of_township(place.township)
        return centre.code, centre.name, None
    if level == "county":
        guiding = directory.room_guiding(place.township) if place.township else None
        if guiding:
            return guiding.code, f"县人民调解中心{guiding.name}", guiding.code
        county = directory.county_centre()
        return county.code, county.name, None
    return None


def validate_choice(case: CaseFacts, mediator_ids: Iterable[str], directory: Directory,
                    load: Mapping[str, int] | None = None, *, level: str | None = None,
                    exclude_mediators: Iterable[str] = (), rules: Rules | None = None
                    ) -> tuple[list[str], dict[str, str]]:
    """The parties' pick (点将), 一对一 or 多对一: (accepted in the order given, the first
    being the lead; refused id -> reason in Chinese for the party)."""
    rules = rules or default_rules()
    load = load or {}
    place = locate(case, directory)
    involved = _involved(case, place)
    exclude = set(exclude_mediators)
    accepted: list[str] = []
    refused: dict[str, str] = {}
    for mediator_id in dict.fromkeys(mediator_ids):
        mediator = directory.mediator(mediator_id)
        if mediator is None:
            why = "名录中没有该调解员"
        else:
            why = (_out_of_reach(mediator, place, level, directory)
                   or refusal(mediator, involved, load, exclude))
        if why is None and len(accepted) >= rules.max_party_choice:
            why = f"一案最多选择{rules.max_party_choice}名调解员"
        if why:
            refused[mediator_id] = why
        else:
            accepted.append(mediator_id)
    return accepted, refused


def _out_of_reach(mediator: Mediator, place: Place, level: str | None, directory: Directory) -> str | None:
    if level is not None and LEVELS.index(MEDIATOR_REACH[mediator.level]) < LEVELS.index(level):
        return f"本案已在{LEVEL_NAMES[level]}办理, 请选择{LEVEL_NAMES[level]}或以上的调解员"
    if mediator.level == "county":
        return None
    if place.township is None:
        return "本案属地不明, 请选择县级调解员"
    if mediator.township != place.township:
        return f"该调解员只受理{directory.township(mediator.township).name}的纠纷"
    return None


def staff_refs(decision: Decision, directory: Directory, *, contacts: bool = False) -> dict:
    """The decision's people and units as case_routed's StaffRef dicts.

    At grid level the grid worker is the handler, listed under `mediators` with role
    grid_worker, so mediation always has someone to assign. `supervisors` are who answers
    for the case: the head(s) of its township, then the county supervisors (督办, 问责).
    With `contacts`, each ref carries its phone and email (the wire seals them); a unit's
    are its office phone and its liaison's email."""
    def contact(ref: dict, phone=None, email=None) -> dict:
        if contacts:
            ref.update(phone=phone, email=email)
        return ref

    def unit_ref(code):
        unit = directory.unit(code)
        liaison = next(iter(directory.staff(role="unit_liaison", unit=code)), None)
        return contact({"id": code, "name": unit.name if unit else None, "role": "unit", "level": "county",
                        "township": None}, unit.phone if unit else None, liaison.email if liaison else None)

    people = [contact({"id": m.id, "name": m.name, "role": "mediator", "level": m.level, "township": m.township},
                      m.phone) for m in map(directory.mediator, decision.mediators)]
    if decision.grid_worker:
        worker = directory.grid_worker(decision.grid_worker)
        people.insert(0, contact({"id": worker.id, "name": worker.name, "role": "grid_worker", "level": "grid",
                                  "township": worker.township}, worker.phone))
    supervisors = [contact({"id": s.id, "name": s.name, "role": s.role,
                            "level": "county" if s.role == "county_supervisor" else "township",
                            "township": s.township}, s.phone, s.email)
                   for s in directory.supervisors_of(decision.township)]
    return {
        "unit": unit_ref(decision.unit) if decision.unit else None,
        "co_units": [unit_ref(code) for code in decision.co_units],
        "mediators": people,
        "supervisors": supervisors,
    }


# --- benchmark ------------------------------------------------------------------------------


def bench(cases: int = 2000, seed: int = 7) -> dict:
    """Figures for `make bench`: directory load time and decide() latency on random cases."""
    started = time.perf_counter()
    directory = Directory.from_reference()
    load_ms = (time.perf_counter() - started) * 1000
    rules = default_rules()
    rng = random.Random(seed)
    all_grids = [g for t in directory.townships() for g in directory.grids_of_township(t.code)]
    timings = []
    for number in range(cases):
        grid = rng.choice(all_grids)
        case = CaseFacts(case_no=f"bench-{number}", channel=rng.choice(CHANNELS),
                         township=grid.township, village=grid.village if rng.random() < 0.7 else None,
                         grid=grid.code if rng.random() < 0.3 else None, people_count=rng.choice((1, 2, 3, 6, 12)))
        classification = Classification(dispute_type=rng.choice(DISPUTE_TYPES), gov_category="城乡建设",
                                        psych_needed=rng.random() < 0.1,
                                        severity=Severity(people=case.people_count))
        begin = time.perf_counter()
        decide(case, classification, directory, rules=rules, load={})
        timings.append((time.perf_counter() - begin) * 1000)
    timings.sort()
    return {
        "directory_load_ms": round(load_ms, 1),
        "decide_cases": cases,
        "decide_p50_ms": round(statistics.median(timings), 3),
        "decide_p99_ms": round(timings[int(len(timings) * 0.99) - 1], 3),
        "decide_per_second": round(cases / (sum(timings) / 1000)),
    }
