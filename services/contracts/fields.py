"""Field types shared by the wire schemas."""
from __future__ import annotations

from marshmallow import Schema, ValidationError, fields

from services.common import privacy


class Sealed(fields.String):
    """Personal data on the wire: encrypted on dump, decrypted on load.

    Brokers persist messages to disk, so names, phones and ID numbers travel
    encrypted with the platform's data keys (LANLING_DATA_KEYS).
    """

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return privacy.encrypt(str(value))

    def _deserialize(self, value, attr, data, **kwargs):
        token = super()._deserialize(value, attr, data, **kwargs)
        try:
            return privacy.decrypt(token)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc


class Wire(Schema):
    """Base for every wire schema: consumers ignore fields they do not know (DESIGN §6)."""

    class Meta:
        unknown = "exclude"


class Person(Wire):
    """A party or complainant. Only `id`/`role` are in clear."""

    id = fields.String(allow_none=True)
    role = fields.String(allow_none=True)  # applicant | respondent | third_party | complainant
    name = Sealed(allow_none=True)
    phone = Sealed(allow_none=True)
    id_number = Sealed(allow_none=True)
    user_id = fields.String(allow_none=True)
    email = Sealed(allow_none=True)


class StaffRef(Wire):
    """Someone in the directory who acts on a case (mediator, supervisor, counsellor)."""

    id = fields.String(required=True)
    name = fields.String(allow_none=True)  # staff names are public roster data
    role = fields.String(allow_none=True)
    level = fields.String(allow_none=True)
    township = fields.String(allow_none=True)
    phone = Sealed(allow_none=True)
    email = Sealed(allow_none=True)
