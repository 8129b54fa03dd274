"""Read models of the directory for the gateway: the reference lists and the published roster.

Pure functions over a Directory (and the mediators' load); each answers a JSON list of objects.
People's phones are never in them; staff contacts are masked.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict

from services.contracts.errors import Invalid
from services.routing import roster
from services.routing.directory import MEDIATOR_LEVELS, Directory
from services.routing.domain import DISPUTE_TYPES

# The roster as a township centre posts it: its own mediators, the villages', then the county's experts.
ROSTER_ORDER = ("township", "village", "county")


def _township_filter(directory: Directory, township: str | None) -> str | None:
    if township in (None, ""):
        return None
    found = directory.township(township)
    if found is None:
        raise Invalid("unknown township", {"township": ["not a township code, name or alias"]})
    return found.code


def townships_view(directory: Directory) -> list[dict]:
    def code(item):
        return item.code if item else None

    return [{"code": t.code, "name": t.name, "kind": t.kind, "aliases": list(t.aliases),
             "centre": code(directory.centre_of_township(t.code)), "guided_by": code(directory.room_guiding(t.code)),
             "lat": t.lat, "lon": t.lon}
            for t in directory.townships()]


def villages_view(directory: Directory, township: str | None = None) -> list[dict]:
    code = _township_filter(directory, township)
    villages = directory.villages_of_township(code) if code else directory.villages()
    return [{"code": v.code, "name": v.name, "kind": v.kind, "township": v.township, "work_area": v.work_area}
            for v in villages]


def grids_view(directory: Directory, township: str | None = None, village: str | None = None) -> list[dict]:
    code = _township_filter(directory, township)
    if village:
        if directory.village(village) is None:
            raise Invalid("unknown village", {"village": ["not a village code of the directory"]})
        grids = directory.grids_of_village(village)
    else:
        grids = directory.grids_of_township(code) if code else [
            grid for t in directory.townships() for grid in directory.grids_of_township(t.code)]
    out = []
    for grid in grids:
        if code and grid.township != code:
            continue
        worker = directory.grid_worker(grid.grid_worker)
        out.append({"code": grid.code, "name": grid.name, "village": grid.village,
                    "village_name": directory.village(grid.village).name, "township": grid.township,
                    "grid_worker": grid.grid_worker, "grid_worker_name": worker.name if worker else None})
    return out


def centres_view(directory: Directory) -> list[dict]:
    rooms = defaultdict(list)
    for room in directory.rooms():
        rooms[room.centre].append({"code": room.code, "name": room.name, "kind": room.kind,
                                   "specialties": list(room.specialties), "guides": list(room.guides),
                                   "lead": room.lead})
    return [{"code": c.code, "name": c.name, "level": c.level, "township": c.township, "phone": c.phone,
             "rooms": rooms.get(c.code, [])} for c in directory.centres()]


def units_view(directory: Directory) -> list[dict]:
    return [{"code": u.code, "name": u.name, "kind": u.kind, "dispute_types": list(u.dispute_types),
             "co_handles": list(u.co_handles), "gov_categories": list(u.gov_categories), "phone": u.phone}
            for u in directory.units()]


def roster_view(directory: Directory, load: dict[str, int], *, specialty: str | None = None,
                level: str | None = None, township: str | None = None, village: str | None = None,
                available: bool | None = None) -> list[dict]:
    """The published roster (超市): who mediates what, where, and whether they can take a case
    now. No phones: parties choose here and reach a mediator through the centre."""
    problems = {}
    if specialty and specialty not in DISPUTE_TYPES:
        problems["specialty"] = [f"one of: {', '.join(DISPUTE_TYPES)}"]
    if level and level not in MEDIATOR_LEVELS:
        problems["level"] = [f"one of: {', '.join(MEDIATOR_LEVELS)}"]
    if village and directory.village(village) is None:
        problems["village"] = ["not a village code of the directory"]
    if problems:
        raise Invalid("invalid roster filter", problems)
    code = _township_filter(directory, township)
    found = directory.mediators(specialty=specialty or None, level=level or None, township=code,
                                village=village or None)
    if code and not level and not village:  # a township's roster also shows the county mediators serving it
        found += directory.mediators(specialty=specialty or None, level="county")
    views = [mediator_view(directory, m, load) for m in found]
    if available is not None:
        views = [view for view in views if view["available"] == available]
    return sorted(views, key=lambda v: (ROSTER_ORDER.index(v["level"]), v["id"]))


def mediator_view(directory: Directory, mediator, load: dict[str, int]) -> dict:
    open_cases = load.get(mediator.id, 0)
    township = directory.township(mediator.township)
    village = directory.village(mediator.village)
    room = directory.room(mediator.room)
    centre = directory.centre(mediator.centre)
    return {"id": mediator.id, "name": mediator.name, "level": mediator.level,
            "township": mediator.township, "township_name": township.name if township else None,
            "village": mediator.village, "village_name": village.name if village else None,
            "centre": mediator.centre, "centre_name": centre.name if centre else None,
            "room": mediator.room, "room_name": room.name if room else None,
            "specialties": list(mediator.specialties), "full_time": mediator.full_time,
            "background": mediator.background, "capacity": mediator.capacity, "open_cases": open_cases,
            "available": mediator.active and open_cases < mediator.capacity, "active": mediator.active}


def staff_view(directory: Directory, *, role: str | None = None, township: str | None = None) -> list[dict]:
    code = _township_filter(directory, township)
    return [roster.masked("staff", asdict(person)) for person in directory.staff(role=role or None, township=code)]
