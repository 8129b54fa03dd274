"""Events produced by mediation.

Every event names the people its consumers need (notify turns them into messages):
`assignees` (who holds the case), `supervisors` (township head(s) of the case's
township and county supervisors, from case_routed when routing sent them),
`units` (who is supervised or held to account). Lists are empty when mediation
does not know them; notify then looks them up in its own directory.
"""
from marshmallow import fields

from services.contracts.fields import Person, StaffRef, Wire


class _CaseFacts(Wire):
    """Fields most mediation events share, so a consumer can render a message without a lookup."""

    case_no = fields.String(required=True)
    level = fields.String(allow_none=True)
    mechanism = fields.String(allow_none=True)
    township = fields.String(allow_none=True)
    dispute_type = fields.String(allow_none=True)
    status = fields.String(allow_none=True)
    assignees = fields.List(fields.Nested(StaffRef), load_default=list)
    supervisors = fields.List(fields.Nested(StaffRef), load_default=list)
    unit = fields.Nested(StaffRef, allow_none=True)


class CaseAssigned(_CaseFacts):
    level = fields.String(required=True)
    mechanism = fields.String(required=True)
    assignees = fields.List(fields.Nested(StaffRef), required=True)
    sign_off_deadline = fields.AwareDateTime(allow_none=True)   # None for a redo (重办): already signed for
    handling_deadline = fields.AwareDateTime(required=True)
    deadline = fields.AwareDateTime(allow_none=True)            # the one that applies now
    reason = fields.String(allow_none=True)                     # routed | reassigned | redo | reopened
    limits = fields.Dict(load_default=dict)                     # the limits and the rules behind them
    complainant = fields.Nested(Person, allow_none=True)
    urgent = fields.Boolean(load_default=False)


class CaseAccepted(_CaseFacts):
    accepted_by = fields.Nested(StaffRef, required=True)
    late = fields.Boolean(load_default=False)
    handling_deadline = fields.AwareDateTime(allow_none=True)
    complainant = fields.Nested(Person, allow_none=True)


class AssignmentReturned(_CaseFacts):
    """退单: routing routes the case again, never to anyone in exclude_mediators."""

    returned_by = fields.String(required=True)
    exclude_mediators = fields.List(fields.String(), load_default=list)
    reason = fields.String(required=True)
    attempt = fields.Integer(allow_none=True)                   # the routing attempt being returned


class EscalationRequested(_CaseFacts):
    """调解不成 (failed=True) or 上报: routing routes the case one level up."""

    from_level = fields.String(required=True)
    exclude_mediators = fields.List(fields.String(), load_default=list)
    reason = fields.String(required=True)
    failed = fields.Boolean(load_default=False)
    requested_by = fields.String(allow_none=True)
    attempt = fields.Integer(allow_none=True)


class ReminderDue(_CaseFacts):
    """催办: before a deadline and when it passes."""

    deadline_kind = fields.String(required=True)  # sign_off | handling
    deadline = fields.AwareDateTime(required=True)
    stage = fields.String(required=True)  # before | at


class CaseOverdue(_CaseFacts):
    grade = fields.String(required=True)  # warning | overdue | seriously_overdue
    deadline_kind = fields.String(allow_none=True)
    deadline = fields.AwareDateTime(required=True)


class SupervisionOpened(_CaseFacts):
    """督办: opened by an overdue grade or because the case is major."""

    supervisor = fields.Nested(StaffRef, allow_none=True)      # who supervises (first of supervisors)
    reason = fields.String(required=True)                      # overdue | major
    units = fields.List(fields.Nested(StaffRef), load_default=list)  # who is supervised
    deadline = fields.AwareDateTime(allow_none=True)
    deadline_kind = fields.String(allow_none=True)
    supervision_id = fields.Integer(allow_none=True)


class AccountabilityRecorded(_CaseFacts):
    """问责 against a unit or a mediator."""

    against = fields.Nested(StaffRef, required=True)  # a unit or a mediator
    grade = fields.String(required=True)
    reason = fields.String(required=True)
    units = fields.List(fields.Nested(StaffRef), load_default=list)  # [against], for notify's `unit` audience
    measure = fields.String(allow_none=True)                          # e.g. 通报
    deadline = fields.AwareDateTime(allow_none=True)
    deadline_kind = fields.String(allow_none=True)
    accountability_id = fields.Integer(allow_none=True)


class CaseResolved(_CaseFacts):
    """The reply each source is owed (intake), and the citizen's message with the rating link (notify)."""

    outcome = fields.String(required=True)  # resolved | resolved_on_site
    summary = fields.String(allow_none=True)  # the reply owed to each source (masked)
    resolved_at = fields.AwareDateTime(required=True)
    mediator = fields.Nested(StaffRef, allow_none=True)
    complainant = fields.Nested(Person, allow_none=True)
    rating_token = fields.String(allow_none=True)
    rating_url = fields.String(allow_none=True)  # short (<= 30 chars with a short LANLING_PUBLIC_URL)
    judicial_confirmation = fields.Boolean(load_default=False)
    redo_count = fields.Integer(load_default=0)


class EvaluationRequested(_CaseFacts):
    """A reminder to rate, sent when no rating came within the configured days after case_resolved."""

    rating_token = fields.String(required=True)
    rating_url = fields.String(required=True)
    complainant = fields.Nested(Person, allow_none=True)


class CaseEvaluated(_CaseFacts):
    rating = fields.String(required=True)  # 满意 | 基本满意 | 不满意
    comment = fields.String(allow_none=True)
    review = fields.Boolean(load_default=False)  # 不满意: a review opens (redo or dismiss_rating)


class CaseClosed(_CaseFacts):
    outcome = fields.String(required=True)  # resolved | resolved_on_site | referred
    summary = fields.String(allow_none=True)
    closed_at = fields.AwareDateTime(required=True)
    complainant = fields.Nested(Person, allow_none=True)
    rating = fields.String(allow_none=True)
    referral_target = fields.String(allow_none=True)  # arbitration | litigation | administrative_review
    reason = fields.String(allow_none=True)           # e.g. rating_unreasonable, no_rating


class ExtensionRequested(_CaseFacts):
    """延期 asked for; approver_role (township_head or county_supervisor) decides."""

    requested_by = fields.Nested(StaffRef, allow_none=True)
    reason = fields.String(required=True)
    handling_deadline = fields.AwareDateTime(required=True)
    extension = fields.String(required=True)          # e.g. "7 working days"
    approver_role = fields.String(required=True)


class ExtensionDecided(_CaseFacts):
    approved = fields.Boolean(required=True)
    decided_by = fields.Nested(StaffRef, allow_none=True)
    reason = fields.String(allow_none=True)
    handling_deadline = fields.AwareDateTime(required=True)
    deadline = fields.AwareDateTime(allow_none=True)


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
