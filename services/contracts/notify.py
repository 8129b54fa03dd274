"""Events produced by notify."""
from marshmallow import fields

from services.contracts.fields import Wire


class NotificationOutcome(Wire):
    case_no = fields.String(allow_none=True)
    delivery_id = fields.String(required=True)
    event_type = fields.String(required=True)
    audience = fields.String(required=True)
    recipient = fields.String(required=True)  # masked contact or staff id, never in clear
    channel = fields.String(required=True)
    attempts = fields.Integer(required=True)
    detail = fields.String(allow_none=True)
