"""Lanling's directory in memory: places, centres and rooms, people, units.

Pure data with the lookups routing needs; no I/O except `from_reference`, which reads the
bundled sample data (reference/data/*.json, see reference/README.md).

Records are plain JSON-able dicts whose keys are exactly the fields of the dataclasses
below, lists where the dataclass has tuples. `Directory.from_records` takes one list per
kind (`RECORD_KINDS`), checks every cross-reference and raises `DirectoryError` listing all
problems at once, so the service can build a directory from its database rows the same way
it loads the reference files; `Directory.to_records` gives them back.
"""
from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Iterable, Mapping

from services.routing.domain import DISPUTE_TYPES, GOV_CATEGORIES

REFERENCE_DATA = Path(__file__).resolve().parent / "reference" / "data"
MEDIATOR_LEVELS = ("village", "township", "county")
EARTH_RADIUS_KM = 6371.0


class DirectoryError(ValueError):
    def __init__(self, problems: list[str]):
        self.problems = problems
        shown = "; ".join(problems[:10]) + (f"; … {len(problems) - 10} more" if len(problems) > 10 else "")
        super().__init__(f"inconsistent directory: {shown}")


@dataclass(frozen=True)
class Township:
    code: str
    name: str
    kind: str                     # 街道 | 镇 | 乡
    aliases: tuple[str, ...]
    lat: float
    lon: float


@dataclass(frozen=True)
class WorkArea:
    """A 片区 with its 网格化管理服务室; villages lie within its service radius."""

    code: str
    name: str
    township: str
    lat: float
    lon: float


@dataclass(frozen=True)
class Village:
    code: str
    name: str
    kind: str                     # 村 | 社区
    township: str
    work_area: str
    lat: float
    lon: float


@dataclass(frozen=True)
class Grid:
    code: str
    name: str
    village: str
    township: str
    grid_worker: str


@dataclass(frozen=True)
class Centre:
    code: str
    name: str
    level: str                    # county | township
    township: str | None
    lat: float
    lon: float
    phone: str


@dataclass(frozen=True)
class Room:
    """A room of the county centre; `guides` are the townships it guides (连锁)."""

    code: str
    name: str
    kind: str                     # comprehensive | professional
    centre: str
    specialties: tuple[str, ...]
    guides: tuple[str, ...]
    lead: str | None


@dataclass(frozen=True)
class Mediator:
    id: str
    name: str
    phone: str
    level: str                    # county | township | village
    centre: str | None            # county and township mediators
    room: str | None              # county mediators
    township: str | None          # township and village mediators
    village: str | None           # village mediators
    specialties: tuple[str, ...]
    full_time: bool
    capacity: int                 # open cases they can carry
    recusal_villages: tuple[str, ...]
    background: str
    active: bool


@dataclass(frozen=True)
class Unit:
    """A department or specialised committee. It leads cases of `dispute_types` (归口),
    joins joint cases of `co_handles` (联动), and answers complaints of `gov_categories`."""

    code: str
    name: str
    kind: str                     # centre | committee | department | judicial
    dispute_types: tuple[str, ...]
    co_handles: tuple[str, ...]
    gov_categories: tuple[str, ...]
    phone: str


@dataclass(frozen=True)
class GridWorker:
    """Each grid has one active grid worker; a replaced one stays, inactive, for the record."""

    id: str
    name: str
    phone: str
    grid: str
    village: str
    township: str
    active: bool


@dataclass(frozen=True)
class Staff:
    """Someone who acts on cases without mediating them: a township head (乡镇分管负责人), a
    county supervisor (督办), a centre receptionist (接访受理) or a unit's liaison (signs for its
    归口 cases). Their contacts travel in events (sealed) so reminders and 督办 reach them."""

    id: str
    name: str
    role: str                     # township_head | county_supervisor | receptionist | unit_liaison
    phone: str
    email: str
    centre: str | None            # heads, supervisors, receptionists: the centre they work at
    township: str | None          # heads and township receptionists
    unit: str | None              # liaisons: the unit they sign for
    active: bool


STAFF_ROLES = ("township_head", "county_supervisor", "receptionist", "unit_liaison")

RECORD_TYPES = {
    "townships": Township, "work_areas": WorkArea, "villages": Village, "grids": Grid,
    "centres": Centre, "rooms": Room, "units": Unit, "mediators": Mediator, "grid_workers": GridWorker,
    "staff": Staff,
}
RECORD_KINDS = tuple(RECORD_TYPES)


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance between two (lat, lon) points."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))


class Directory:
    """Immutable once built; build a new one when rosters change."""

    def __init__(self, **entities: Iterable):
        duplicates = []
        for kind in RECORD_KINDS:
            items = list(entities.get(kind, ()))
            table = {_key(item): item for item in items}
            if len(table) != len(items):
                duplicates.append(f"{kind}: {len(items) - len(table)} duplicate code(s) or id(s)")
            setattr(self, f"_{kind}", table)
        self._check(duplicates)
        self._index()

    # --- building -------------------------------------------------------------------------

    @classmethod
    def from_records(cls, records: Mapping[str, Iterable[Mapping]]) -> Directory:
        unknown = set(records) - set(RECORD_KINDS) - {"accounts", "manifest"}
        problems = [f"unknown record kind {kind!r}" for kind in sorted(unknown)]
        entities = {}
        for kind, record_type in RECORD_TYPES.items():
            entities[kind] = []
            for position, record in enumerate(records.get(kind, ())):
                try:
                    entities[kind].append(_from_record(record_type, record))
                except (TypeError, ValueError) as exc:
                    problems.append(f"{kind}[{position}]: {exc}")
        if problems:
            raise DirectoryError(problems)
        return cls(**entities)

    @classmethod
    def from_reference(cls, path: Path | str | None = None) -> Directory:
        """The bundled sample directory (or the same files in another folder)."""
        folder = Path(path) if path else REFERENCE_DATA
        return cls.from_records({
            kind: json.loads((folder / f"{kind}.json").read_text(encoding="utf-8")) for kind in RECORD_KINDS
        })

    def to_records(self) -> dict[str, list[dict]]:
        return {kind: [_to_record(item) for item in getattr(self, f"_{kind}").values()] for kind in RECORD_KINDS}

    def record(self, kind: str, key: str) -> dict | None:
        """One entity as its plain record, or None."""
        item = getattr(self, f"_{kind}").get(key)
        return None if item is None else _to_record(item)

    def with_records(self, changes: Mapping[str, Iterable[Mapping]]) -> Directory:
        """A new directory with these records added or replaced (by code or id), checked as a
        whole; raises DirectoryError. Cheap: unchanged entities are shared, not rebuilt."""
        problems, tables = [], {kind: dict(getattr(self, f"_{kind}")) for kind in RECORD_KINDS}
        for kind, records in changes.items():
            if kind not in RECORD_TYPES:
                problems.append(f"unknown record kind {kind!r}")
                continue
            for record in records:
                try:
                    item = _from_record(RECORD_TYPES[kind], record)
                except (TypeError, ValueError) as exc:
                    problems.append(f"{kind} {record.get('id') or record.get('code')}: {exc}")
                    continue
                tables[kind][_key(item)] = item
        if problems:
            raise DirectoryError(problems)
        return Directory(**{kind: table.values() for kind, table in tables.items()})

    def _check(self, problems: list[str]) -> None:

        def refer(kind: str, owner: str, field: str, value, target: str, optional=False):
            if value is None and optional:
                return
            if value not in getattr(self, f"_{target}"):
                problems.append(f"{kind} {owner}: {field} {value!r} is not a known {target[:-1]}")

        problems += [f"no {kind}" for kind in RECORD_KINDS if not getattr(self, f"_{kind}")]
        if sum(centre.level == "county" for centre in self._centres.values()) != 1:
            problems.append("there must be exactly one county centre")
        for area in self._work_areas.values():
            refer("work area", area.code, "township", area.township, "townships")
        for village in self._villages.values():
            refer("village", village.code, "township", village.township, "townships")
            refer("village", village.code, "work_area", village.work_area, "work_areas")
            area = self._work_areas.get(village.work_area)
            if area and area.township != village.township:
                problems.append(f"village {village.code}: its work area lies in another township")
        for grid in self._grids.values():
            refer("grid", grid.code, "village", grid.village, "villages")
            refer("grid", grid.code, "grid_worker", grid.grid_worker, "grid_workers")
            village = self._villages.get(grid.village)
            if village and village.township != grid.township:
                problems.append(f"grid {grid.code}: township differs from its village's")
            worker = self._grid_workers.get(grid.grid_worker)
            if worker and not worker.active:
                problems.append(f"grid {grid.code}: its grid worker {worker.id} is inactive")
        for worker in self._grid_workers.values():
            refer("grid worker", worker.id, "grid", worker.grid, "grids")
            grid = self._grids.get(worker.grid)
            if grid and worker.active and grid.grid_worker != worker.id:
                problems.append(f"grid worker {worker.id}: active, but grid {grid.code} has {grid.grid_worker}")
            if grid and (worker.village, worker.township) != (grid.village, grid.township):
                problems.append(f"grid worker {worker.id}: village or township differs from grid {grid.code}'s")
        for person in self._staff.values():
            problems += self._staff_problems(person, refer)
        for centre in self._centres.values():
            refer("centre", centre.code, "township", centre.township, "townships", optional=centre.level == "county")
        for room in self._rooms.values():
            refer("room", room.code, "centre", room.centre, "centres")
            refer("room", room.code, "lead", room.lead, "mediators", optional=True)
            for township in room.guides:
                refer("room", room.code, "guides", township, "townships")
            problems += [f"room {room.code}: unknown specialty {t!r}"
                         for t in room.specialties if t not in DISPUTE_TYPES]
        for unit in self._units.values():
            problems += [f"unit {unit.code}: unknown dispute type {t!r}"
                         for t in unit.dispute_types + unit.co_handles if t not in DISPUTE_TYPES]
            problems += [f"unit {unit.code}: unknown gov category {c!r}"
                         for c in unit.gov_categories if c not in GOV_CATEGORIES]
        for mediator in self._mediators.values():
            problems += self._mediator_problems(mediator, refer)
        for dispute_type in DISPUTE_TYPES:
            owners = [u.code for u in self._units.values() if dispute_type in u.dispute_types]
            if len(owners) > 1:
                problems.append(f"dispute type {dispute_type}: owned by several units {owners}")
        if problems:
            raise DirectoryError(problems)

    def _mediator_problems(self, mediator: Mediator, refer) -> list[str]:
        problems = []
        if mediator.level not in MEDIATOR_LEVELS:
            problems.append(f"mediator {mediator.id}: unknown level {mediator.level!r}")
        if mediator.capacity < 0:
            problems.append(f"mediator {mediator.id}: negative capacity")
        required = {"county": ("centre", "room"), "township": ("centre", "township"),
                    "village": ("township", "village")}.get(mediator.level, ())
        targets = {"centre": "centres", "room": "rooms", "township": "townships", "village": "villages"}
        for field in required:
            refer("mediator", mediator.id, field, getattr(mediator, field), targets[field])
        for village in mediator.recusal_villages:
            refer("mediator", mediator.id, "recusal_villages", village, "villages")
        problems += [f"mediator {mediator.id}: unknown specialty {t!r}"
                     for t in mediator.specialties if t not in DISPUTE_TYPES]
        return problems

    def _staff_problems(self, person: Staff, refer) -> list[str]:
        problems = []
        if person.role not in STAFF_ROLES:
            return [f"staff {person.id}: unknown role {person.role!r}"]
        required = {"township_head": ("centre", "township"), "county_supervisor": ("centre",),
                    "receptionist": ("centre",), "unit_liaison": ("unit",)}[person.role]
        targets = {"centre": "centres", "township": "townships", "unit": "units"}
        for field in targets:
            refer("staff", person.id, field, getattr(person, field), targets[field], optional=field not in required)
        centre = self._centres.get(person.centre)
        if centre and centre.township != person.township:
            problems.append(f"staff {person.id}: township differs from centre {centre.code}'s")
        if person.role == "county_supervisor" and centre and centre.level != "county":
            problems.append(f"staff {person.id}: a county supervisor works at the county centre")
        return problems

    def _index(self) -> None:
        self._staff_by = defaultdict(list)
        for person in self._staff.values():
            for key in {person.township, person.unit, None}:
                self._staff_by[person.role, key].append(person)
        self._township_names = {}
        for township in self._townships.values():
            for name in (township.code, township.name, *township.aliases):
                self._township_names[name] = township
        self._by_parent = defaultdict(list)
        for area in self._work_areas.values():
            self._by_parent["work_areas", area.township].append(area)
        for village in self._villages.values():
            self._by_parent["villages", village.township].append(village)
            self._by_parent["villages", village.work_area].append(village)
        for grid in self._grids.values():
            self._by_parent["grids", grid.township].append(grid)
            self._by_parent["grids", grid.village].append(grid)
        for mediator in self._mediators.values():
            for parent in {mediator.room, mediator.township, mediator.village, mediator.level} - {None}:
                self._by_parent["mediators", parent].append(mediator)
        self._guiding_room = {township: room for room in self._rooms.values() for township in room.guides}
        self._owners = defaultdict(list)
        self._co_handlers = defaultdict(list)
        self._category_units = defaultdict(list)
        for unit in self._units.values():
            for dispute_type in unit.dispute_types:
                self._owners[dispute_type].append(unit)
            for dispute_type in unit.co_handles:
                self._co_handlers[dispute_type].append(unit)
            for category in unit.gov_categories:
                self._category_units[category].append(unit)

    # --- places ---------------------------------------------------------------------------

    def township(self, code_or_name: str | None) -> Township | None:
        """By code, official name or alias (卞庄 -> 卞庄街道)."""
        return self._township_names.get((code_or_name or "").strip())

    def townships(self) -> list[Township]:
        return list(self._townships.values())

    def work_area(self, code: str | None) -> WorkArea | None:
        return self._work_areas.get(code)

    def work_areas_of_township(self, township_code: str) -> list[WorkArea]:
        return list(self._by_parent.get(("work_areas", township_code), ()))

    def work_area_of_village(self, village_code: str) -> WorkArea | None:
        village = self._villages.get(village_code)
        return self._work_areas.get(village.work_area) if village else None

    def village(self, code: str | None) -> Village | None:
        return self._villages.get(code)

    def villages(self) -> list[Village]:
        return list(self._villages.values())

    def villages_of_township(self, township_code: str) -> list[Village]:
        return list(self._by_parent.get(("villages", township_code), ()))

    def villages_of_work_area(self, work_area_code: str) -> list[Village]:
        return list(self._by_parent.get(("villages", work_area_code), ()))

    def find_villages(self, name: str, township: str | None = None) -> list[Village]:
        """Villages called `name` (with or without the 村 / 社区 suffix), optionally in one township."""
        wanted = (name or "").strip()
        home = self.township(township) if township else None
        return [
            village for village in self._villages.values()
            if wanted in (village.name, village.name.removesuffix("村"), village.name.removesuffix("社区"))
            and (home is None or village.township == home.code)
        ]

    def grid(self, code: str | None) -> Grid | None:
        return self._grids.get(code)

    def grids_of_township(self, township_code: str) -> list[Grid]:
        return list(self._by_parent.get(("grids", township_code), ()))

    def grids_of_village(self, village_code: str) -> list[Grid]:
        return list(self._by_parent.get(("grids", village_code), ()))

    def village_of_grid(self, grid_code: str) -> Village | None:
        grid = self._grids.get(grid_code)
        return self._villages.get(grid.village) if grid else None

    def location(self, code: str | None) -> tuple[float, float] | None:
        """(lat, lon) of a township, work area, village, grid (its village) or centre."""
        if code in self._grids:
            code = self._grids[code].village
        for table in (self._villages, self._work_areas, self._townships, self._centres):
            if code in table:
                return table[code].lat, table[code].lon
        return None

    # --- centres and rooms ----------------------------------------------------------------

    def centre(self, code: str | None) -> Centre | None:
        return self._centres.get(code)

    def centres(self) -> list[Centre]:
        return list(self._centres.values())

    def county_centre(self) -> Centre:
        return next(c for c in self._centres.values() if c.level == "county")

    def centre_of_township(self, township_code: str) -> Centre | None:
        return next((c for c in self._centres.values() if c.township == township_code), None)

    def room(self, code: str | None) -> Room | None:
        return self._rooms.get(code)

    def rooms(self) -> list[Room]:
        return list(self._rooms.values())

    def room_guiding(self, township_code: str) -> Room | None:
        return self._guiding_room.get(township_code)

    def rooms_for_specialty(self, dispute_type: str) -> list[Room]:
        return [room for room in self._rooms.values() if dispute_type in room.specialties]

    # --- units ----------------------------------------------------------------------------

    def unit(self, code: str | None) -> Unit | None:
        return self._units.get(code)

    def units(self) -> list[Unit]:
        return list(self._units.values())

    def units_owning(self, dispute_type: str) -> list[Unit]:
        """The lead unit of a dispute type first, then its co-handlers (for 联动)."""
        return self._owners.get(dispute_type, []) + self._co_handlers.get(dispute_type, [])

    def owner_of(self, dispute_type: str) -> Unit | None:
        owners = self._owners.get(dispute_type)
        return owners[0] if owners else None

    def co_handlers_of(self, dispute_type: str) -> list[Unit]:
        return list(self._co_handlers.get(dispute_type, []))

    def units_for_category(self, gov_category: str) -> list[Unit]:
        return list(self._category_units.get(gov_category, []))

    # --- people ---------------------------------------------------------------------------

    def mediator(self, mediator_id: str | None) -> Mediator | None:
        return self._mediators.get(mediator_id)

    def mediators(self, *, level: str | None = None, township: str | None = None, village: str | None = None,
                  room: str | None = None, specialty: str | None = None, active_only: bool = True) -> list[Mediator]:
        """The roster, filtered; every filter given must hold. A township filter keeps that
        township's own and village mediators (a county mediator serves every township)."""
        if township is not None:
            found = self.township(township)
            township = found.code if found else township
        narrowest = next((key for key in (village, room, township, level) if key is not None), None)
        pool = self._by_parent.get(("mediators", narrowest), ()) if narrowest else self._mediators.values()
        return [
            m for m in pool
            if (level is None or m.level == level)
            and (township is None or m.township == township)
            and (village is None or m.village == village)
            and (room is None or m.room == room)
            and (specialty is None or specialty in m.specialties)
            and (m.active or not active_only)
        ]

    def grid_worker(self, worker_id: str | None) -> GridWorker | None:
        return self._grid_workers.get(worker_id)

    def grid_workers(self) -> list[GridWorker]:
        return list(self._grid_workers.values())

    def grid_worker_of_grid(self, grid_code: str) -> GridWorker | None:
        grid = self._grids.get(grid_code)
        return self._grid_workers.get(grid.grid_worker) if grid else None

    def staff_member(self, staff_id: str | None) -> Staff | None:
        return self._staff.get(staff_id)

    def staff(self, *, role: str | None = None, township: str | None = None, unit: str | None = None,
              active_only: bool = True) -> list[Staff]:
        """Staff records, filtered; every filter given must hold."""
        pool = self._staff_by.get((role, township or unit), ()) if role else self._staff.values()
        return [
            person for person in pool
            if (role is None or person.role == role)
            and (township is None or person.township == township)
            and (unit is None or person.unit == unit)
            and (person.active or not active_only)
        ]

    def supervisors_of(self, township_code: str | None) -> list[Staff]:
        """Who answers for a case in a township: its head(s), then the county supervisors (督办)."""
        heads = self.staff(role="township_head", township=township_code) if township_code else []
        return heads + self.staff(role="county_supervisor")

    def person(self, person_id: str | None) -> Mediator | GridWorker | Staff | None:
        """A mediator, grid worker or staff member by id."""
        return self._mediators.get(person_id) or self._grid_workers.get(person_id) or self._staff.get(person_id)

    def base_of(self, mediator: Mediator) -> tuple[float, float] | None:
        """Where a mediator works from: their village, else their centre."""
        return self.location(mediator.village) if mediator.village else self.location(mediator.centre)

    # --- what intake needs ----------------------------------------------------------------

    def places_snapshot(self) -> dict:
        """Everything intake validates places against, JSON-able, with a content digest."""
        places = {
            "townships": [{"code": t.code, "name": t.name, "kind": t.kind, "aliases": list(t.aliases)}
                          for t in self._townships.values()],
            "work_areas": [{"code": a.code, "name": a.name, "township": a.township}
                           for a in self._work_areas.values()],
            "villages": [{"code": v.code, "name": v.name, "kind": v.kind, "township": v.township,
                          "work_area": v.work_area} for v in self._villages.values()],
            "grids": [{"code": g.code, "name": g.name, "village": g.village, "township": g.township,
                       "grid_worker": g.grid_worker} for g in self._grids.values()],
        }
        canonical = json.dumps(places, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        return {"digest": hashlib.sha256(canonical.encode("utf-8")).hexdigest(), **places}


def _key(item) -> str:
    return item.id if hasattr(item, "id") else item.code


def _from_record(record_type: type, record: Mapping):
    names = {f.name for f in fields(record_type)}
    if not isinstance(record, Mapping):
        raise TypeError("must be an object")
    unknown, missing = set(record) - names, names - set(record)
    if unknown or missing:
        raise ValueError(", ".join([f"unknown field {n!r}" for n in sorted(unknown)]
                                   + [f"missing field {n!r}" for n in sorted(missing)]))
    return record_type(**{key: tuple(value) if isinstance(value, list) else value for key, value in record.items()})


def _to_record(item) -> dict:
    return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(item).items()}
