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


class CaseRouted(Wire):
    case_no = fields.String(required=True)
    attempt = fields.Integer(required=True)  # 1 for the first routing, +1 per return/escalation
    level = fields.String(required=True, validate=validate.OneOf(LEVELS))
    mechanism = fields.String(required=True, validate=validate.OneOf(MECHANISMS))
    township = fields.String(allow_none=True)
    unit = fields.Nested(StaffRef, allow_none=True)
    co_units = fields.List(fields.Nested(StaffRef), load_default=list)
    mediators = fields.List(fields.Nested(StaffRef), load_default=list)  # lead first
    joint_plan = fields.Dict(allow_none=True)
    dispute_type = fields.String(required=True)
    gov_category = fields.String(allow_none=True)
    psych_needed = fields.Boolean(load_default=False)
    severity = fields.Dict(load_default=dict)
    signals = fields.List(fields.String(), load_default=list)
    confidence = fields.Float(allow_none=True)
    reasons = fields.List(fields.String(), required=True)
