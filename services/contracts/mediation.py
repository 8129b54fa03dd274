"""Events produced by mediation."""
from marshmallow import fields

from services.contracts.fields import Person, StaffRef, Wire


class CaseAssigned(Wire):
    case_no = fields.String(required=True)
    level = fields.String(required=True)
    mechanism = fields.String(required=True)
    township = fields.String(allow_none=True)
    dispute_type = fields.String(allow_none=True)
    unit = fields.Nested(StaffRef, allow_none=True)
    assignees = fields.List(fields.Nested(StaffRef), required=True)
    sign_off_deadline = fields.AwareDateTime(required=True)
    handling_deadline = fields.AwareDateTime(required=True)
    complainant = fields.Nested(Person, allow_none=True)


class CaseAccepted(Wire):
    case_no = fields.String(required=True)
    accepted_by = fields.Nested(StaffRef, required=True)
    late = fields.Boolean(load_default=False)
    handling_deadline = fields.AwareDateTime(allow_none=True)
    complainant = fields.Nested(Person, allow_none=True)


class AssignmentReturned(Wire):
    case_no = fields.String(required=True)
    returned_by = fields.String(required=True)
    exclude_mediators = fields.List(fields.String(), load_default=list)
    reason = fields.String(required=True)


class EscalationRequested(Wire):
    case_no = fields.String(required=True)
    from_level = fields.String(required=True)
    exclude_mediators = fields.List(fields.String(), load_default=list)
    reason = fields.String(required=True)


class ReminderDue(Wire):
    case_no = fields.String(required=True)
    deadline_kind = fields.String(required=True)  # sign_off | handling
    deadline = fields.AwareDateTime(required=True)
    stage = fields.String(required=True)  # before | at
    assignees = fields.List(fields.Nested(StaffRef), load_default=list)


class CaseOverdue(Wire):
    case_no = fields.String(required=True)
    grade = fields.String(required=True)  # warning | overdue | seriously_overdue
    deadline = fields.AwareDateTime(required=True)
    assignees = fields.List(fields.Nested(StaffRef), load_default=list)
    supervisors = fields.List(fields.Nested(StaffRef), load_default=list)
    unit = fields.Nested(StaffRef, allow_none=True)


class SupervisionOpened(Wire):
    case_no = fields.String(required=True)
    supervisor = fields.Nested(StaffRef, allow_none=True)
    reason = fields.String(required=True)
    unit = fields.Nested(StaffRef, allow_none=True)
    assignees = fields.List(fields.Nested(StaffRef), load_default=list)


class AccountabilityRecorded(Wire):
    case_no = fields.String(required=True)
    against = fields.Nested(StaffRef, required=True)  # a unit or a mediator
    grade = fields.String(required=True)
    reason = fields.String(required=True)
    supervisors = fields.List(fields.Nested(StaffRef), load_default=list)


class CaseResolved(Wire):
    case_no = fields.String(required=True)
    outcome = fields.String(required=True)  # resolved | resolved_on_site | referred
    summary = fields.String(allow_none=True)  # the reply owed to each source
    resolved_at = fields.AwareDateTime(required=True)
    mediator = fields.Nested(StaffRef, allow_none=True)
    complainant = fields.Nested(Person, allow_none=True)
    rating_token = fields.String(allow_none=True)


class EvaluationRequested(Wire):
    case_no = fields.String(required=True)
    rating_token = fields.String(required=True)
    complainant = fields.Nested(Person, allow_none=True)


class CaseEvaluated(Wire):
    case_no = fields.String(required=True)
    rating = fields.String(required=True)  # 满意 | 基本满意 | 不满意
    comment = fields.String(allow_none=True)
    assignees = fields.List(fields.Nested(StaffRef), load_default=list)


class CaseClosed(Wire):
    case_no = fields.String(required=True)
    outcome = fields.String(required=True)
    summary = fields.String(allow_none=True)
    closed_at = fields.AwareDateTime(required=True)
    complainant = fields.Nested(Person, allow_none=True)


class PsychPreferences(Wire):
    """The party's wishes about the counsellor, when stated."""
    gender = fields.String(allow_none=True)  # female | male
    age_min = fields.Integer(allow_none=True)
    age_max = fields.Integer(allow_none=True)


class PsychRequested(Wire):
    case_no = fields.String(required=True)
    urgent = fields.Boolean(load_default=False)
    reason = fields.String(required=True)
    dispute_type = fields.String(allow_none=True)
    township = fields.String(allow_none=True)
    village = fields.String(allow_none=True)
    risk_signals = fields.List(fields.String(), load_default=list)
    consent = fields.String(required=True)  # given | refused | unknown
    emergency_reason = fields.String(allow_none=True)
    parties = fields.List(fields.Nested(Person), load_default=list)
    party_hashes = fields.List(fields.String(), load_default=list)  # privacy.keyed_hash of phones / ID numbers
    preferences = fields.Nested(PsychPreferences, allow_none=True)
    requested_by = fields.String(allow_none=True)  # the staff member who asked, if not routing
