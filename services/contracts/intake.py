"""Events produced by intake."""
from marshmallow import fields, validate

from services.contracts.fields import Person, Sealed, Wire

CHANNELS = ("hotline", "petition", "opinion", "app", "grid", "walkin")


class Source(Wire):
    """One report of a dispute, from one channel, with what that source is owed."""

    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    reference = fields.String(required=True)
    source_user = fields.String(allow_none=True)
    received_at = fields.AwareDateTime(required=True)
    complainant = fields.Nested(Person, allow_none=True)
    obligations = fields.List(fields.Dict(), load_default=list)


class CaseReceived(Wire):
    case_no = fields.String(required=True)
    accepted_at = fields.AwareDateTime(required=True)
    source = fields.Nested(Source, required=True)
    title = fields.String(allow_none=True)
    content = fields.String(required=True)
    township = fields.String(allow_none=True)
    village = fields.String(allow_none=True)
    grid_code = fields.String(allow_none=True)
    centre = fields.String(allow_none=True)  # walk-ins: the centre whose desk took it
    address = Sealed(allow_none=True)
    parties = fields.List(fields.Nested(Person), load_default=list)
    people_count = fields.Integer(allow_none=True)
    petition_form = fields.String(allow_none=True)
    app_section = fields.String(allow_none=True)
    urgent = fields.Boolean(load_default=False)
    urgent_signals = fields.List(fields.String(), load_default=list)
    resolved_on_site = fields.Boolean(load_default=False)
    repeat_of_party = fields.Boolean(load_default=False)


class CaseMerged(Wire):
    case_no = fields.String(required=True)
    source = fields.Nested(Source, required=True)
    score = fields.Float(required=True)
    matched = fields.Dict(load_default=dict)  # field -> masked value or similarity
    reasons = fields.List(fields.String(), load_default=list)


class CaseUnmerged(Wire):
    case_no = fields.String(required=True)
    reference = fields.String(required=True)
    channel = fields.String(required=True)
    new_case_no = fields.String(required=True)
    reason = fields.String(required=True)
    actor = fields.String(allow_none=True)


class CaseUrgent(Wire):
    case_no = fields.String(required=True)
    township = fields.String(allow_none=True)
    signals = fields.List(fields.String(), required=True)
    summary = fields.String(allow_none=True)  # masked excerpt for on-duty staff
    complainant = fields.Nested(Person, allow_none=True)
    detected_at = fields.AwareDateTime(required=True)
