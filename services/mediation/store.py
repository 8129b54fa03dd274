"""CaseState to and from its stored JSON form."""
from __future__ import annotations

from dataclasses import asdict, fields
from datetime import datetime

from services.mediation.lifecycle import CaseState, ExtensionRequest

_DATETIMES = {f.name for f in fields(CaseState) if "datetime" in str(f.type)}
_TUPLES = {f.name for f in fields(CaseState) if "tuple" in str(f.type)}


def to_json(value):
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    return value


def dump_state(state: CaseState) -> dict:
    return to_json(asdict(state))


def load_state(data: dict) -> CaseState:
    values = dict(data)
    for name in _DATETIMES:
        if values.get(name):
            values[name] = datetime.fromisoformat(values[name])
    for name in _TUPLES:
        values[name] = tuple(values.get(name) or ())
    pending = values.get("pending_extension")
    if pending:
        values["pending_extension"] = ExtensionRequest(
            pending["requested_by"], datetime.fromisoformat(pending["requested_at"]), pending["reason"])
    return CaseState(**values)
