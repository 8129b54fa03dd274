"""Staff edits of the directory, because a county's people change (pure: no I/O).

`plan_edit` turns one request — create, update or deactivate a mediator, grid worker, unit or
staff member — into the records to store, after checking the input, who may make the edit, and
that the directory stays consistent as a whole (`Directory.with_records`). handlers.py stores
the records, bumps the directory version, writes the audit row and emits `directory_updated`.

Who may edit (besides the operator):
- a county supervisor: everything;
- a township head: the township and village mediators and the grid workers of their own
  township (never county mediators, units or staff).

Choices:
- New people get their ids here, in the reference data's patterns (README of reference/):
  a village mediator `MV-<village>-<seat>`, township `MT-<nnn>-<seat>`, county
  `MC-<room>-<seat>`; staff `TH-<nnn>`, `CS-<n>`, `RC-<centre>-<desk>`, `UL-<unit>-<n>`;
  a suffix `-2`, `-3` … when the natural id is taken.
- Nobody is deleted: routing decisions and accounts refer to them. A mediator or staff member
  is deactivated (with a reason) and may be reactivated by an update.
- A grid always has exactly one active grid worker: a new grid worker for a grid replaces the
  current one, who is deactivated; a grid worker cannot be deactivated on their own.
- Units are created and updated, not deactivated (rules and past cases name them).
- An edit that changes nothing changes nothing (no new version, no event), so a retried
  request is harmless.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from services.common.privacy import mask_phone
from services.contracts.channels import Phone, StrictBoolean, Text
from services.contracts.errors import Conflict, Forbidden, Invalid, NotFound
from services.routing.directory import (
    MEDIATOR_LEVELS, STAFF_ROLES, Directory, DirectoryError, GridWorker, Mediator, Staff, Unit,
)
from services.routing.domain import DISPUTE_TYPES, GOV_CATEGORIES

EDITABLE = ("mediators", "grid_workers", "units", "staff")
ACTIONS = ("create", "update", "deactivate")
CAPACITY = {"county": (10, 5), "township": (8, 4), "village": (5, 3)}  # as the reference data
UNIT_KINDS = ("centre", "committee", "department", "judicial")
EDITORS = ("operator", "county_supervisor")
SCOPED_EDITORS = ("township_head",)
_UNIT_CODE = re.compile(r"U-[A-Z0-9][A-Z0-9-]{0,40}")
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,190}\.[A-Za-z]{2,}")


# --- input schemas -----------------------------------------------------------------------------


def _types(allowed, name):
    return fields.List(Text(20, validate=validate.OneOf(allowed, error=f"unknown {name}")),
                       validate=validate.Length(max=len(allowed)))


class _Edit(Schema):
    class Meta:
        unknown = RAISE


class MediatorInput(_Edit):
    name = Text(50)
    phone = Phone()
    level = Text(20, validate=validate.OneOf(MEDIATOR_LEVELS))
    township = Text(50, allow_none=True)
    village = Text(64, allow_none=True)
    room = Text(64, allow_none=True)
    specialties = _types(DISPUTE_TYPES, "dispute type")
    full_time = StrictBoolean()
    capacity = fields.Integer(strict=True, validate=validate.Range(0, 100))
    recusal_villages = fields.List(Text(64), validate=validate.Length(max=50))
    background = Text(100, allow_none=True)
    active = StrictBoolean()


class GridWorkerInput(_Edit):
    name = Text(50)
    phone = Phone()
    grid = Text(64)


class UnitInput(_Edit):
    code = Text(44, validate=validate.Regexp(_UNIT_CODE, error="must look like U-NAME (capitals, digits, -)"))
    name = Text(100)
    kind = Text(20, validate=validate.OneOf(UNIT_KINDS))
    dispute_types = _types(DISPUTE_TYPES, "dispute type")
    co_handles = _types(DISPUTE_TYPES, "dispute type")
    gov_categories = _types(GOV_CATEGORIES, "gov category")
    phone = Phone()


class StaffInput(_Edit):
    name = Text(50)
    role = Text(32, validate=validate.OneOf(STAFF_ROLES))
    phone = Phone()
    email = Text(254, validate=validate.Regexp(_EMAIL, error="must be an email address"))
    township = Text(50, allow_none=True)
    centre = Text(64, allow_none=True)
    unit = Text(44, allow_none=True)
    active = StrictBoolean()


SCHEMAS = {"mediators": MediatorInput, "grid_workers": GridWorkerInput, "units": UnitInput, "staff": StaffInput}
REQUIRED = {
    "mediators": ("name", "phone", "level", "specialties"),
    "grid_workers": ("name", "phone", "grid"),
    "units": ("code", "name", "kind"),
    "staff": ("name", "role", "phone", "email"),
}
# What an update may not change: ids, and what would silently move a grid worker's grid.
FIXED = {"mediators": (), "grid_workers": ("grid",), "units": ("code",), "staff": ("role",)}


@dataclass
class Edit:
    """The outcome of a planned edit: records to store, and what to tell the caller."""

    kind: str
    key: str
    action: str
    changes: dict[str, list[dict]]                 # kind -> records added or replaced
    before: dict | None
    after: dict
    accounts: list[dict] = field(default_factory=list)  # gateway identities to create or update
    warnings: list[str] = field(default_factory=list)
    changed: bool = True                           # False when every record is already so


def plan_edit(directory: Directory, actor: dict, kind: str, action: str, key: str | None, data: dict | None,
              reason: str | None = None) -> tuple[Edit, Directory]:
    """Check and apply one edit to `directory`: (the edit, the new directory). Raises Invalid,
    Forbidden, NotFound or Conflict (services.contracts.errors) with the fields at fault."""
    if kind not in EDITABLE:
        raise NotFound(f"no editable directory kind {kind!r}", {"kind": [f"one of {', '.join(EDITABLE)}"]})
    if action not in ACTIONS:
        raise Invalid(f"unknown action {action!r}", {"action": [f"one of {', '.join(ACTIONS)}"]})
    if actor.get("role") not in EDITORS + SCOPED_EDITORS:
        raise Forbidden("只有县级督办人员或乡镇(街道)负责人可以维护名录")
    data = dict(data or {})
    before = None if action == "create" else directory.record(kind, key or "")
    if action != "create" and before is None:
        raise NotFound(f"no {kind[:-1].replace('_', ' ')} {key!r} in the directory")
    if action == "deactivate":
        if kind in ("units", "grid_workers"):
            raise Conflict(_NOT_DEACTIVATABLE[kind])
        if not (reason or "").strip():
            raise Invalid("a reason is required to deactivate someone", {"reason": ["required"]})
        data = {"active": False}
    values = _load(kind, data, partial=action != "create")
    fixed = [name for name in FIXED[kind] if action == "update" and name in values and values[name] != before[name]]
    if fixed:
        raise Invalid("these fields cannot be changed by an update", {name: ["cannot be changed"] for name in fixed})
    builder = {"mediators": _mediator, "grid_workers": _grid_worker, "units": _unit, "staff": _staff}[kind]
    edit = builder(directory, action, before, values)
    _check_scope(actor, edit)
    try:
        changed = directory.with_records(edit.changes)
    except DirectoryError as exc:
        raise Invalid("the directory would become inconsistent", {"directory": exc.problems}) from exc
    edit.changed = any(directory.record(kind_, record.get("id") or record["code"]) != record
                       for kind_, records in edit.changes.items() for record in records)
    edit.warnings += _warnings(changed, edit) if edit.changed else []
    return edit, changed


_NOT_DEACTIVATABLE = {
    "units": "单位不能停用: 规则和已办案件引用它; 请修改其承办的纠纷类型",
    "grid_workers": "每个网格必须有一名在岗网格员: 请为该网格新增接替的网格员, 原网格员自动停用",
}


def _load(kind: str, data: dict, *, partial: bool) -> dict:
    try:
        values = SCHEMAS[kind]().load(data, partial=partial)
    except ValidationError as exc:
        raise Invalid("the edit is not valid", _flatten(exc.messages)) from exc
    if not partial:
        missing = [name for name in REQUIRED[kind] if name not in values]
        if missing:
            raise Invalid("required fields are missing", {name: ["is required"] for name in missing})
    return values


def _flatten(messages, prefix="") -> dict[str, list[str]]:
    flat = {}
    for name, value in messages.items():
        path = f"{prefix}{name}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{path}."))
        else:
            flat[path] = [str(item) for item in value]
    return flat


def _township_code(directory: Directory, value: str | None) -> str | None:
    if value is None:
        return None
    township = directory.township(value)
    if township is None:
        raise Invalid("unknown township", {"township": ["not a township code, name or alias of the directory"]})
    return township.code


def _free_id(taken, natural: str) -> str:
    if not taken(natural):
        return natural
    number = 2
    while taken(f"{natural}-{number}"):
        number += 1
    return f"{natural}-{number}"


def _next_seat(directory: Directory, prefix: str) -> str:
    seats = [int(person.id[len(prefix):]) for person in directory.mediators(active_only=False)
             if person.id.startswith(prefix) and person.id[len(prefix):].isdigit()]
    return f"{prefix}{max(seats, default=0) + 1}"


def _tail(code: str) -> str:
    """A township, village or grid code without the county prefix (371324-005-012 -> 005-012)."""
    return code.split("-", 1)[1] if "-" in code else code


def _mediator(directory: Directory, action: str, before: dict | None, values: dict) -> Edit:
    record = dict(before or {"recusal_villages": [], "background": "", "active": True, "room": None,
                             "village": None, "township": None, "centre": None})
    record.update(values)
    if "township" in values:
        record["township"] = _township_code(directory, values["township"])
    level = record["level"]
    if level == "village":
        village = directory.village(record.get("village"))
        if village is None:
            raise Invalid("a village mediator needs a known village", {"village": ["unknown or missing village code"]})
        record.update(township=village.township, centre=None, room=None)
    elif level == "township":
        if record.get("township") is None:
            raise Invalid("a township mediator needs a township", {"township": ["required for level township"]})
        record.update(village=None, room=None, centre=directory.centre_of_township(record["township"]).code)
    else:
        room = directory.room(record.get("room"))
        if room is None:
            raise Invalid("a county mediator needs a room of the county centre", {"room": ["unknown or missing room"]})
        record.update(village=None, township=None, centre=room.centre)
    if action == "create":
        full_time = record.setdefault("full_time", True)
        record.setdefault("capacity", CAPACITY[level][0 if full_time else 1])
        if level == "village":
            prefix = f"MV-{_tail(record['village'])}-"
        elif level == "township":
            prefix = f"MT-{_tail(record['township'])}-"
        else:
            prefix = f"MC-{record['room'].rsplit('-', 1)[-1]}-"
        record["id"] = _next_seat(directory, prefix)
    record["background"] = record.get("background") or ""
    record["specialties"] = sorted(set(record["specialties"]), key=DISPUTE_TYPES.index)
    record["recusal_villages"] = sorted(set(record["recusal_villages"]))
    record = _ordered(Mediator, record)
    return Edit("mediators", record["id"], action, {"mediators": [record]}, before, record,
                accounts=[_account("mediator", record["id"].lower(), record["id"], record["township"], record)])


def _grid_worker(directory: Directory, action: str, before: dict | None, values: dict) -> Edit:
    if action == "update":
        record = _ordered(GridWorker, {**before, **values})
        return Edit("grid_workers", record["id"], action, {"grid_workers": [record]}, before, record,
                    accounts=[_account("grid_worker", record["id"].lower(), record["id"], record["township"], record)])
    grid = directory.grid(values["grid"])
    if grid is None:
        raise Invalid("unknown grid", {"grid": ["not a grid code of the directory"]})
    worker_id = _free_id(lambda candidate: directory.grid_worker(candidate) is not None, "GW-" + _tail(grid.code))
    record = _ordered(GridWorker, {"id": worker_id, "name": values["name"], "phone": values["phone"], "grid": grid.code,
                                   "village": grid.village, "township": grid.township, "active": True})
    grid_record = {**directory.record("grids", grid.code), "grid_worker": worker_id}
    changes = {"grid_workers": [record], "grids": [grid_record]}
    accounts = [_account("grid_worker", worker_id.lower(), worker_id, grid.township, record)]
    warnings = []
    previous = directory.grid_worker(grid.grid_worker)
    if previous is not None:
        retired = {**directory.record("grid_workers", previous.id), "active": False}
        changes["grid_workers"].append(retired)
        accounts.append(_account("grid_worker", previous.id.lower(), previous.id, previous.township, retired))
        warnings.append(f"{previous.id} {previous.name} 已停用, 由 {worker_id} 接替网格 {grid.code}")
    return Edit("grid_workers", worker_id, action, changes, None, record, accounts=accounts, warnings=warnings)


def _unit(directory: Directory, action: str, before: dict | None, values: dict) -> Edit:
    if action == "create" and directory.unit(values["code"]) is not None:
        raise Conflict(f"unit {values['code']} already exists: update it instead", {"code": ["already exists"]})
    record = dict(before or {"dispute_types": [], "co_handles": [], "gov_categories": [], "phone": ""})
    record.update(values)
    for name in ("dispute_types", "co_handles"):
        record[name] = sorted(set(record[name]), key=DISPUTE_TYPES.index)
    record["gov_categories"] = sorted(set(record["gov_categories"]), key=GOV_CATEGORIES.index)
    for dispute_type in record["dispute_types"]:
        owner = directory.owner_of(dispute_type)
        if owner is not None and owner.code != record["code"]:
            raise Conflict(f"{dispute_type} is already owned by {owner.name} ({owner.code}); each dispute type has "
                           "one lead unit: take it from that unit first",
                           {"dispute_types": [f"{dispute_type}: owned by {owner.code}"]})
    record = _ordered(Unit, record)
    return Edit("units", record["code"], action, {"units": [record]}, before, record)


def _staff(directory: Directory, action: str, before: dict | None, values: dict) -> Edit:
    record = dict(before or {"township": None, "centre": None, "unit": None, "active": True})
    record.update(values)
    if "township" in values:
        record["township"] = _township_code(directory, values["township"])
    role = record["role"]
    if role == "township_head":
        if record["township"] is None:
            raise Invalid("a township head needs a township", {"township": ["required for a township head"]})
        record.update(centre=directory.centre_of_township(record["township"]).code, unit=None)
    elif role == "county_supervisor":
        record.update(centre=directory.county_centre().code, township=None, unit=None)
    elif role == "receptionist":
        centre = directory.centre(record.get("centre"))
        if centre is None:
            raise Invalid("a receptionist needs a centre", {"centre": ["unknown or missing centre code"]})
        record.update(township=centre.township, unit=None)
    else:
        if directory.unit(record.get("unit")) is None:
            raise Invalid("a unit liaison needs a unit", {"unit": ["unknown or missing unit code"]})
        record.update(township=None, centre=None)
    if action == "create":
        record["id"] = _free_id(lambda candidate: directory.staff_member(candidate) is not None, _natural_staff_id(
            directory, record))
    record = _ordered(Staff, record)
    directory_id = record["unit"] if role == "unit_liaison" else record["id"]
    return Edit("staff", record["id"], action, {"staff": [record]}, before, record,
                accounts=[_account(role, username_of(record), directory_id, record["township"], record)])


def _natural_staff_id(directory: Directory, record: dict) -> str:
    role = record["role"]
    if role == "township_head":
        return "TH-" + _tail(record["township"])
    if role == "receptionist":
        suffix = "COUNTY" if record["township"] is None else _tail(record["township"])
        desks = len(directory.staff(role="receptionist", township=record["township"], active_only=False))
        return f"RC-{suffix}-{desks + 1}"
    if role == "county_supervisor":
        return f"CS-{len(directory.staff(role='county_supervisor', active_only=False)) + 1}"
    liaisons = len(directory.staff(role="unit_liaison", unit=record["unit"], active_only=False))
    return f"UL-{record['unit'][2:]}-{liaisons + 1}"


def username_of(person: dict) -> str:
    """The gateway username of a staff record: head-001, supervisor-1, reception-county-1,
    reception-005-1, liaison-medical-committee (a second liaison: liaison-medical-committee-2)."""
    role, identifier = person["role"], person["id"]
    prefix = {"township_head": "head-", "county_supervisor": "supervisor-", "receptionist": "reception-",
              "unit_liaison": "liaison-"}[role]
    name = identifier[3:].lower()
    return prefix + (name.removesuffix("-1") if role == "unit_liaison" else name)


def _account(role: str, username: str, directory_id: str, township: str | None, record: dict) -> dict:
    return {"username": username, "role": role, "directory_id": directory_id, "township": township,
            "display_name": record["name"], "active": record.get("active", True)}


def _ordered(record_type, record: dict) -> dict:
    """The record with exactly the dataclass's fields, in their order (as the reference files)."""
    names = [f.name for f in dataclass_fields(record_type)]
    missing = [name for name in names if name not in record]
    if missing:
        raise Invalid("required fields are missing", {name: ["is required"] for name in missing})
    return {name: record[name] for name in names}


def _check_scope(actor: dict, edit: Edit) -> None:
    if actor.get("role") in EDITORS:
        return
    townships = {record.get("township") for records in edit.changes.values() for record in records}
    if edit.before:
        townships.add(edit.before.get("township"))
    own = actor.get("township")
    if edit.kind not in ("mediators", "grid_workers") or townships != {own} or own is None \
            or (edit.kind == "mediators" and "county" in (edit.after["level"], (edit.before or {}).get("level"))):
        raise Forbidden("乡镇(街道)负责人只能维护本乡镇(街道)的乡镇、村居调解员和网格员")


def _warnings(directory: Directory, edit: Edit) -> list[str]:
    if edit.kind != "mediators" or edit.after["active"]:
        return []
    found = []
    village = edit.after.get("village")
    if village and not directory.mediators(village=village):
        found.append(f"{directory.village(village).name}已没有在岗的村居调解员 (每个村居应至少1名)")
    township = edit.after.get("township")
    if edit.after["level"] == "township":
        staff = directory.mediators(level="township", township=township)
        if len(staff) < 6 or sum(m.full_time for m in staff) < 3:
            found.append(f"{directory.township(township).name}调解中心在岗调解员{len(staff)}名, "
                         f"其中专职{sum(m.full_time for m in staff)}名 (标准: 不少于6名, 专职不少于3名)")
    return found


# --- views ---------------------------------------------------------------------------------------


def masked(kind: str, record: dict) -> dict:
    """A record as staff see it through the API: personal phones and emails masked."""
    view = dict(record)
    if kind != "units" and view.get("phone"):
        view["phone"] = mask_phone(view["phone"])
    if view.get("email"):
        local, _, domain = view["email"].partition("@")
        view["email"] = f"{local[:1]}***@{domain}"
    return view
