"""Events produced by psych, and the bodies of its staff API (`/api/v1/psych/...`)."""
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from services.contracts.fields import StaffRef, Wire

# The vocabularies of services/psych (offers.CONSENT_STATES, sessions.SESSION_KINDS/OUTCOMES);
# a unit test keeps them equal.
CONSENT_STATES = ("given", "pending", "not_asked", "refused", "withdrawn")
SESSION_KINDS = ("first", "follow_up", "crisis")
OUTCOMES = ("stabilised", "referred_to_hospital", "referred_to_other_service", "declined_by_party",
            "closed_no_need", "lost_contact")
GENDERS = ("female", "male")


class CounsellorOffered(Wire):
    case_no = fields.String(required=True)
    offer_id = fields.String(required=True)
    counsellor = fields.Nested(StaffRef, required=True)
    urgent = fields.Boolean(load_default=False)
    expires_at = fields.AwareDateTime(required=True)
    score = fields.Float(allow_none=True)
    reasons = fields.List(fields.String(), load_default=list)
    township = fields.String(allow_none=True)  # the case's township code
    need = fields.String(allow_none=True)  # the category of need (dispute type, risk labels), never notes
    basis = fields.String(allow_none=True)  # consent | emergency | coordinator
    attempt = fields.Integer(load_default=1)  # 1 for the first counsellor offered this round


class CounsellorAssigned(Wire):
    case_no = fields.String(required=True)
    offer_id = fields.String(required=True)
    counsellor = fields.Nested(StaffRef, required=True)
    mediators = fields.List(fields.Nested(StaffRef), load_default=list)
    urgent = fields.Boolean(load_default=False)
    accepted_at = fields.AwareDateTime(allow_none=True)


class PsychUnmatched(Wire):
    case_no = fields.String(required=True)
    reason = fields.String(required=True)
    urgent = fields.Boolean(load_default=False)
    coordinator = fields.Nested(StaffRef, allow_none=True)  # the county psych coordinator, with contacts
    coordinators = fields.List(fields.Nested(StaffRef), load_default=list)  # all of them, first = coordinator
    township = fields.String(allow_none=True)
    need = fields.String(allow_none=True)
    tried = fields.Integer(load_default=0)  # counsellors offered this round before giving up


class PsychSessionRecorded(Wire):
    case_no = fields.String(required=True)
    counsellor_id = fields.String(required=True)
    kind = fields.String(required=True)  # first | follow_up | crisis | closure (an outcome without a session)
    at = fields.AwareDateTime(required=True)
    outcome = fields.String(allow_none=True)  # never the notes
    session_id = fields.String(allow_none=True)
    next_follow_up = fields.AwareDateTime(allow_none=True)


# -- API bodies (validated by psych; unknown fields are an error, so a typo is not ignored) --
class _Body(Schema):
    class Meta:
        unknown = RAISE


def _text(limit: int, **kwargs):
    return fields.String(validate=validate.Length(1, limit, error=f"1-{limit} characters"), **kwargs)


class Preferences(_Body):
    gender = fields.String(allow_none=True, validate=validate.OneOf(GENDERS))
    age_min = fields.Integer(allow_none=True, strict=True, validate=validate.Range(16, 100))
    age_max = fields.Integer(allow_none=True, strict=True, validate=validate.Range(16, 100))

    @validates_schema
    def band(self, data, **kwargs):
        low, high = data.get("age_min"), data.get("age_max")
        if low is not None and high is not None and low > high:
            raise ValidationError("must not exceed age_max", "age_min")


class PartyKey(_Body):
    """A party, only to check conflicts: hashed at once, never stored or returned."""
    phone = fields.String(allow_none=True)
    id_number = fields.String(allow_none=True)


class MatchInput(_Body):
    dispute_type = _text(40, load_default="其他")
    township = _text(50, required=True)  # code or name
    village = _text(40, allow_none=True)
    risk_signals = fields.List(fields.String(), load_default=list)
    urgent = fields.Boolean(load_default=False)
    preferences = fields.Nested(Preferences, load_default=dict)
    parties = fields.List(fields.Nested(PartyKey), load_default=list)
    previous_counsellor_ids = fields.List(fields.String(), load_default=list)
    case_no = _text(32, allow_none=True)
    at = fields.AwareDateTime(allow_none=True)  # match as of this time (default: now)
    limit = fields.Integer(load_default=10, strict=True, validate=validate.Range(1, 50))


class ConsentInput(_Body):
    state = fields.String(required=True, validate=validate.OneOf(CONSENT_STATES))
    note = _text(300, allow_none=True)
    # An emergency: the case is treated as urgent and may be offered before consent, with this reason.
    emergency_reason = _text(300, allow_none=True)
    preferences = fields.Nested(Preferences, allow_none=True)


class OfferAnswerInput(_Body):
    reason = _text(300, allow_none=True)


class CoordinatorOfferInput(_Body):
    counsellor_id = _text(32, allow_none=True)  # none: match again, from the top
    reason = _text(300, allow_none=True)


class SessionInput(_Body):
    kind = fields.String(required=True, validate=validate.OneOf(SESSION_KINDS))
    notes = fields.String(required=True, validate=validate.Length(1, 20_000, error="1-20000 characters"))
    at = fields.AwareDateTime(allow_none=True)  # default: now
    next_follow_up = fields.AwareDateTime(allow_none=True)  # default: by kind, rules/matching.yaml
    outcome = fields.String(allow_none=True, validate=validate.OneOf(OUTCOMES))


class OutcomeInput(_Body):
    outcome = fields.String(required=True, validate=validate.OneOf(OUTCOMES))
    note = _text(300, allow_none=True)
