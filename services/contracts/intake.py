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
    callback_phone = Sealed(allow_none=True)  # 12345: when the caller wants the call-back elsewhere
    obligations = fields.List(fields.Dict(), load_default=list)  # [{kind, label, to, due_at, basis}]


class CaseReceived(Wire):
    case_no = fields.String(required=True)
    accepted_at = fields.AwareDateTime(required=True)
    source = fields.Nested(Source, required=True)
    title = fields.String(allow_none=True)
    content = fields.String(required=True)
    township = fields.String(allow_none=True)
    village = fields.String(allow_none=True)  # directory code, when the directory knows it
    village_name = fields.String(allow_none=True)  # the village as the source wrote it
    grid_code = fields.String(allow_none=True)
    centre = fields.String(allow_none=True)  # walk-ins: the centre whose desk took it
    grid_worker = fields.String(allow_none=True)  # grid reports: the reporting worker's id
    wants_mediator = fields.String(allow_none=True)  # app 老苗调解 / 点将: the mediator the citizen asked for
    onsite_outcome = fields.String(allow_none=True)  # grid reports resolved on site: what was agreed
    details = fields.Dict(load_default=dict)  # channel facts for the record (platform, url, heat, category …)
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
    """并单: a new report attached to an open case; mediation records why in the history."""

    case_no = fields.String(required=True)
    source = fields.Nested(Source, required=True)
    score = fields.Float(required=True)
    matched = fields.Dict(load_default=dict)  # field -> masked value or similarity
    reasons = fields.List(fields.String(), load_default=list)
    similarity = fields.Float(allow_none=True)  # of the texts
    required = fields.Float(allow_none=True)  # the similarity the evidence called for
    title = fields.String(allow_none=True)  # the new report's title (names and numbers masked)
    urgent = fields.Boolean(load_default=False)
    sources = fields.Integer(allow_none=True)  # how many sources the case has now
    merged_at = fields.AwareDateTime(allow_none=True)


class CaseUnmerged(Wire):
    case_no = fields.String(required=True)
    reference = fields.String(required=True)
    channel = fields.String(required=True)
    new_case_no = fields.String(required=True)
    reason = fields.String(required=True)
    actor = fields.String(allow_none=True)
    at = fields.AwareDateTime(allow_none=True)


class CaseUrgent(Wire):
    case_no = fields.String(required=True)
    township = fields.String(allow_none=True)
    signals = fields.List(fields.String(), required=True)
    summary = fields.String(allow_none=True)  # masked excerpt for on-duty staff
    complainant = fields.Nested(Person, allow_none=True)
    detected_at = fields.AwareDateTime(required=True)
