"""Events produced by psych."""
from marshmallow import fields

from services.contracts.fields import StaffRef, Wire


class CounsellorOffered(Wire):
    case_no = fields.String(required=True)
    offer_id = fields.String(required=True)
    counsellor = fields.Nested(StaffRef, required=True)
    urgent = fields.Boolean(load_default=False)
    expires_at = fields.AwareDateTime(required=True)
    score = fields.Float(allow_none=True)
    reasons = fields.List(fields.String(), load_default=list)


class CounsellorAssigned(Wire):
    case_no = fields.String(required=True)
    offer_id = fields.String(required=True)
    counsellor = fields.Nested(StaffRef, required=True)
    mediators = fields.List(fields.Nested(StaffRef), load_default=list)


class PsychUnmatched(Wire):
    case_no = fields.String(required=True)
    reason = fields.String(required=True)
    urgent = fields.Boolean(load_default=False)
    coordinator = fields.Nested(StaffRef, allow_none=True)


class PsychSessionRecorded(Wire):
    case_no = fields.String(required=True)
    counsellor_id = fields.String(required=True)
    kind = fields.String(required=True)
    at = fields.AwareDateTime(required=True)
    outcome = fields.String(allow_none=True)  # never the notes
