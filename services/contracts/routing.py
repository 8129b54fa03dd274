"""Events produced by routing."""
from marshmallow import fields, validate

from services.contracts.fields import StaffRef, Wire

LEVELS = ("grid", "village", "work_area", "township", "county")
MECHANISMS = ("supermarket", "specialised", "joint", "chain")


class DirectoryUpdated(Wire):
    """A snapshot of the places intake validates against, with a monotonic version."""

    version = fields.Integer(required=True)
    places = fields.Dict(required=True)  # {"townships": [...], "villages": [...], "grids": [...]}
    changed = fields.List(fields.String(), load_default=list)  # what changed, for the log


TRIGGERS = ("received", "returned", "escalated", "party_choice")


class PreviousAttempt(Wire):
    """An earlier routing of the same case and how it ended (the history an escalation carries)."""
    attempt = fields.Integer(required=True)
    trigger = fields.String(required=True)
    level = fields.String(required=True)
    mechanism = fields.String(required=True)
    unit = fields.String(allow_none=True)
    mediators = fields.List(fields.String(), load_default=list)  # ids, lead first
    routed_at = fields.AwareDateTime(required=True)
    outcome = fields.String(allow_none=True)  # returned | escalated | reassigned | resolved | closed
    outcome_reason = fields.String(allow_none=True)  # as mediation sent it (masked)
    ended_at = fields.AwareDateTime(allow_none=True)


class CaseRouted(Wire):
    """Where a case goes and who holds it, with the reasons (they go into the case history).

    Sent for a new case (trigger `received`, attempt 1) and again, attempt + 1, after a return
    (退单), an escalation (上报) or the parties' own choice of mediators (点将). Holders: the
    `mediators` (lead first; at grid level the grid worker), else the `unit` (归口). Contacts in
    StaffRefs (phone, email) are sealed on the wire."""
    case_no = fields.String(required=True)
    attempt = fields.Integer(required=True)  # 1 for the first routing, +1 per return/escalation/choice
    trigger = fields.String(load_default="received", validate=validate.OneOf(TRIGGERS))
    level = fields.String(required=True, validate=validate.OneOf(LEVELS))
    mechanism = fields.String(required=True, validate=validate.OneOf(MECHANISMS))
    township = fields.String(allow_none=True)
    village = fields.String(allow_none=True)
    centre = fields.String(allow_none=True)  # the mediation centre answering at this level
    room = fields.String(allow_none=True)  # the county room handling or guiding it (连锁)
    unit = fields.Nested(StaffRef, allow_none=True)
    co_units = fields.List(fields.Nested(StaffRef), load_default=list)
    mediator = fields.Nested(StaffRef, allow_none=True)  # the lead, = mediators[0]
    mediators = fields.List(fields.Nested(StaffRef), load_default=list)  # lead first
    supervisors = fields.List(fields.Nested(StaffRef), load_default=list)  # township head(s), county supervisors
    escalated_from = fields.String(allow_none=True)  # the level it failed at, for trigger escalated
    chosen_by = fields.String(allow_none=True)  # for party_choice: citizen | staff id
    resolved_on_site = fields.Boolean(load_default=False)  # a grid report already settled: record only
    history = fields.List(fields.Nested(PreviousAttempt), load_default=list)
    joint_plan = fields.Dict(allow_none=True)
    dispute_type = fields.String(required=True)
    gov_category = fields.String(allow_none=True)
    psych_needed = fields.Boolean(load_default=False)
    severity = fields.Dict(load_default=dict)
    signals = fields.List(fields.String(), load_default=list)
    confidence = fields.Float(allow_none=True)
    reasons = fields.List(fields.String(), required=True)
