"""Input contracts of the six intake channels (the body of `POST /submissions/{channel}`
and of an AMQP message routed `<channel>.submitted` on `intake.ingress`).

Each schema is close to what its source system sends. The REQUIRED fields are the
contract integrations rely on (issue 3); optional fields may be added freely.

Policy for fields we do not know: EXCLUDE, and report them. Source systems add fields
over time (a new 12345 platform release, a new app version) and must not be rejected
for it; `load_submission` drops them from the validated data and lists their names
(never their values) under `unknown_fields`, so intake can record them with the source.

Limits, all enforced here except the byte size, which the edge checks before parsing:
- a body above `MAX_SUBMISSION_BYTES` is `too_large` (HTTP 413 / dead-lettered);
- `content` at most 20,000 characters, `title` and `summary` at most 200 / 2,000 …;
- strings are stripped and NFC-normalised; control characters, Unicode direction
  overrides and lone surrogates (invalid UTF-8) are rejected;
- timestamps are ISO 8601 with a UTC offset; naive times are rejected. Event times
  (when something was received, published, reported) may lie at most
  `FUTURE_TOLERANCE` after `now` and at most `max_age` (default one year) before it.

Reasons never echo the submitted value, so they can be logged and returned as they are.
"""
from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from datetime import date, datetime, timedelta, timezone
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, pre_load, validate

MAX_SUBMISSION_BYTES = 256 * 1024
CONTENT_MAX = 20_000
TITLE_MAX = 200
SUMMARY_MAX = 2_000
NAME_MAX = 50
ADDRESS_MAX = 200
PLACE_MAX = 50
URL_MAX = 2_000
MAX_ATTACHMENTS = 20
MAX_PARTIES = 50
MAX_PEOPLE = 100_000
FUTURE_TOLERANCE = timedelta(minutes=5)
MAX_AGE = timedelta(days=365)

PARTY_ROLES = ("applicant", "respondent", "third_party")
PETITION_FORMS = ("letter", "visit", "online")
APP_SECTIONS = ("speak", "miao", "ask_gov", "accountability", "advice")
HOTLINE_ORDER_TYPES = ("complaint", "help", "inquiry", "report", "suggestion", "praise")

# Bidi overrides and isolates can make a text display differently from what it says.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_MULTILINE_ALLOWED = frozenset("\n\r\t")
_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}")
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}")
_MOBILE = re.compile(r"1[3-9]\d{9}")
_LANDLINE = re.compile(r"0\d{9,11}")
_PHONE_PUNCTUATION = re.compile(r"[\s\-()（）]")
_ID_NUMBER = re.compile(r"\d{17}[\dX]")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK_DIGITS = "10X98765432"

REQUIRED = "is required"
NULL = "must not be null"


class SubmissionInvalid(Exception):
    """A submission that cannot be accepted; `fields` maps each bad field to its reasons.

    Field names are dotted paths (`parties.0.phone`); `_body` is about the body as a whole.
    """

    def __init__(self, fields: dict[str, list[str]]):
        self.fields = fields
        super().__init__("; ".join(f"{name}: {', '.join(reasons)}" for name, reasons in fields.items()))


# --- field types --------------------------------------------------------------------


class Text(fields.String):
    """A stripped, NFC-normalised string without control characters, of bounded length."""

    default_error_messages = {
        "invalid": "must be a string",
        "invalid_utf8": "must be valid UTF-8",
        "required": REQUIRED,
        "null": NULL,
        "blank": "must not be blank",
        "too_long": "must be at most {max} characters",
        "control": "must not contain control characters",
        "surrogate": "must be valid UTF-8 text (it contains a lone surrogate)",
    }

    def __init__(self, max_length: int, *, multiline: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.max_length = max_length
        self.multiline = multiline

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise self.make_error("surrogate") from None
        text = unicodedata.normalize("NFC", text).strip()
        allowed = _MULTILINE_ALLOWED if self.multiline else frozenset()
        if any(_is_control(ch) and ch not in allowed for ch in text):
            raise self.make_error("control")
        if not text:
            raise self.make_error("blank")
        if len(text) > self.max_length:
            raise self.make_error("too_long", max=self.max_length)
        return text


def unsafe_text(value: Any, path: str = "") -> dict[str, list[str]]:
    """Strings (keys too) no store can hold: NUL characters (PostgreSQL refuses them) and lone
    surrogates (not encodable as UTF-8). Checked at every edge before anything else looks at
    the data, for fields no schema covers (query strings, unknown fields, free-form bodies)."""
    problems: dict[str, list[str]] = {}

    def check(text: str, where: str) -> None:
        if "\x00" in text:
            problems.setdefault(where or "_body", []).append("must not contain NUL characters")
        else:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                problems.setdefault(where or "_body", []).append("must be valid UTF-8 text (a lone surrogate)")

    def walk(node: Any, where: str, depth: int) -> None:
        if isinstance(node, str):
            check(node, where)
        elif isinstance(node, dict):
            for key, item in node.items():
                key = str(key)
                name = f"{where}.{key}" if where else key
                shown = name if "\x00" not in key and _encodable(key) else (where or "_body")
                check(key, shown)
                walk(item, shown, depth + 1)
        elif isinstance(node, (list, tuple)):
            for index, item in enumerate(node):
                walk(item, f"{where}.{index}" if where else str(index), depth + 1)

    walk(value, path, 0)
    return problems


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _is_control(ch: str) -> bool:
    return unicodedata.category(ch) == "Cc" or ch in _BIDI_CONTROLS


class Pattern(Text):
    """A short identifier matching a regular expression; `reason` says what is expected."""

    def __init__(self, pattern: re.Pattern, reason: str, max_length: int = 64, **kwargs):
        super().__init__(max_length, **kwargs)
        self.pattern = pattern
        self.error_messages["pattern"] = reason

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not self.pattern.fullmatch(text):
            raise self.make_error("pattern")
        return text


class Phone(Text):
    """A mainland mobile (13812345678) or a landline with its area code (0539-1234567).

    Accepts spaces, hyphens, brackets and a +86 / 0086 prefix; loads the normalised form:
    11 digits for a mobile, `area-number` for a landline.
    """

    default_error_messages = {
        "phone": "must be a mobile number (11 digits starting 13-19) or a landline with "
        "its area code, e.g. 0539-1234567",
    }

    def __init__(self, **kwargs):
        super().__init__(32, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        digits = _PHONE_PUNCTUATION.sub("", unicodedata.normalize("NFKC", text))
        for prefix in ("+86", "0086"):
            if digits.startswith(prefix):
                digits = digits[len(prefix):]
        if _MOBILE.fullmatch(digits):
            return digits
        if _LANDLINE.fullmatch(digits):
            # Beijing (010) and the 02x cities have 3-digit area codes; all others 4.
            split = 3 if digits[1] in "12" else 4
            if 7 <= len(digits) - split <= 8:
                return f"{digits[:split]}-{digits[split:]}"
        raise self.make_error("phone")


class IdNumber(Text):
    """An 18-character resident ID number with a valid birth date and check digit."""

    default_error_messages = {
        "format": "must be an 18-character resident ID number (17 digits and a digit or X)",
        "birth_date": "contains an impossible birth date",
        "checksum": "has a wrong check digit",
    }

    def __init__(self, **kwargs):
        super().__init__(18, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        number = super()._deserialize(value, attr, data, **kwargs).upper()
        if not _ID_NUMBER.fullmatch(number):
            raise self.make_error("format")
        try:
            born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
        except ValueError:
            raise self.make_error("birth_date") from None
        if born.year < 1900 or born > date.today():
            raise self.make_error("birth_date")
        total = sum(int(digit) * weight for digit, weight in zip(number[:17], _ID_WEIGHTS))
        if _ID_CHECK_DIGITS[total % 11] != number[17]:
            raise self.make_error("checksum")
        return number


class StrictBoolean(fields.Boolean):
    """A JSON true/false: "yes", 1 or "true" are rejected, so a typo cannot close a case."""

    default_error_messages = {"invalid": "must be true or false", "required": REQUIRED, "null": NULL}

    def _deserialize(self, value, attr, data, **kwargs) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class Count(fields.Integer):
    default_error_messages = {"invalid": "must be a whole number", "required": REQUIRED, "null": NULL}

    def __init__(self, low: int = 1, high: int = MAX_PEOPLE, **kwargs):
        super().__init__(
            strict=True,
            validate=validate.Range(low, high, error=f"must be between {low} and {high}"),
            **kwargs,
        )

    def _deserialize(self, value, attr, data, **kwargs) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


def timestamp(*, event_time: bool = True, **kwargs) -> fields.AwareDateTime:
    """ISO 8601 with a UTC offset. `event_time` fields are checked against `now` and max age."""
    return fields.AwareDateTime(
        format="iso",
        metadata={"event_time": event_time},
        error_messages={
            "invalid": "must be an ISO 8601 date-time with a UTC offset, e.g. 2024-05-01T09:30:00+08:00",
            "invalid_awareness": "must include a UTC offset such as +08:00 (naive times are ambiguous)",
            "required": REQUIRED,
            "null": NULL,
        },
        **kwargs,
    )


def one_of(choices: tuple[str, ...], **kwargs) -> Text:
    return Text(
        40, validate=validate.OneOf(choices, error=f"must be one of: {', '.join(choices)}"), **kwargs
    )


def url(**kwargs) -> Text:
    return Text(
        URL_MAX,
        validate=validate.URL(schemes={"http", "https"}, error="must be an http(s) URL"),
        **kwargs,
    )


def reference(**kwargs) -> Pattern:
    return Pattern(_REFERENCE, "must be 1-64 letters, digits or . _ : / - (starting with a letter or digit)", **kwargs)


def code(**kwargs) -> Pattern:
    return Pattern(_CODE, "must be 1-40 letters, digits or . _ - (starting with a letter or digit)", 40, **kwargs)


def attachments() -> fields.List:
    return fields.List(
        url(),
        validate=validate.Length(max=MAX_ATTACHMENTS, error=f"must list at most {MAX_ATTACHMENTS} URLs"),
        error_messages={"invalid": "must be a list of URLs", "null": NULL},
    )


def content() -> Text:
    return Text(CONTENT_MAX, multiline=True, required=True)


def township(**kwargs) -> Text:
    """A township name or code from the directory; resolving it is intake's job (canonical.py)."""
    return Text(PLACE_MAX, **kwargs)


# --- schemas ------------------------------------------------------------------------


class BaseSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    @pre_load
    def drop_null_optionals(self, data, **kwargs):
        """Many systems send null for an absent optional field; treat it as absent."""
        if not isinstance(data, dict):
            return data
        return {
            key: value
            for key, value in data.items()
            if value is not None or (key in self.fields and self.fields[key].required)
        }


class PartySchema(BaseSchema):
    role = one_of(PARTY_ROLES, required=True)
    name = Text(NAME_MAX, required=True)
    phone = Phone()
    id_number = IdNumber()


def parties() -> fields.List:
    return fields.List(
        fields.Nested(PartySchema),
        validate=validate.Length(max=MAX_PARTIES, error=f"must list at most {MAX_PARTIES} parties"),
        error_messages={"invalid": "must be a list of parties", "null": NULL},
    )


class LocatedSchema(BaseSchema):
    """Optional fields every channel may send."""

    title = Text(TITLE_MAX)
    village = Text(PLACE_MAX)
    address = Text(ADDRESS_MAX)
    parties = parties()
    people_count = Count()
    attachments = attachments()


class HotlineSubmission(LocatedSchema):
    """A 12345 work order (工单) handed over by the hotline platform."""

    order_no = reference(required=True)
    caller_name = Text(NAME_MAX, required=True)
    caller_phone = Phone(required=True)
    received_at = timestamp(required=True)
    content = content()
    township = township(required=True)
    order_type = one_of(HOTLINE_ORDER_TYPES)         # 投诉/求助/咨询/举报/建议/表扬
    category = Text(100)                              # the platform's own 诉求分类
    callback_phone = Phone()                          # when the caller wants a call-back elsewhere
    wants_callback = StrictBoolean()                  # 是否需要回访; the platform assumes true
    reply_deadline = timestamp(event_time=False)      # 办理时限 set by the platform


class PetitionSubmission(LocatedSchema):
    """A 信访件 from the petition system."""

    petition_no = reference(required=True)
    petitioner_name = Text(NAME_MAX, required=True)
    petitioner_phone = Phone(required=True)
    form = one_of(PETITION_FORMS, required=True)
    received_at = timestamp(required=True)
    content = content()
    township = township(required=True)
    id_number = IdNumber()
    is_repeat = StrictBoolean()                       # the petition office flags 重复信访
    registering_office = Text(100)


class OpinionSubmission(BaseSchema):
    """A 舆情线索: a public post or news item the monitoring system picked up."""

    lead_id = reference(required=True)
    source_platform = Text(50, required=True)
    url = url(required=True)
    published_at = timestamp(required=True)
    title = Text(TITLE_MAX, required=True)
    summary = Text(SUMMARY_MAX, multiline=True, required=True)
    township = township()
    village = Text(PLACE_MAX)
    address = Text(ADDRESS_MAX)
    heat = fields.Float(
        allow_nan=False,
        validate=validate.Range(0, None, error="must not be negative"),
        error_messages={"invalid": "must be a number", "null": NULL},
    )
    content = Text(CONTENT_MAX, multiline=True)       # the full text, when captured
    author = Text(100)                                # a screen name, not a verified identity
    attachments = attachments()


class AppSubmission(LocatedSchema):
    """A post in one of the 兰陵首发 app sections that open a case."""

    post_id = reference(required=True)
    user_id = reference(required=True)
    phone = Phone(required=True)
    section = one_of(APP_SECTIONS, required=True)
    content = content()
    township = township(required=True)
    real_name = Text(NAME_MAX)
    posted_at = timestamp()
    wants_mediator = Text(NAME_MAX)                   # 老苗调解 / 点将: the mediator asked for


class GridSubmission(BaseSchema):
    """A grid worker's report from the handheld terminal."""

    report_no = reference(required=True)
    grid_code = code(required=True)
    worker_id = code(required=True)
    content = content()
    resolved_on_site = StrictBoolean(required=True)
    parties = parties()
    reported_at = timestamp()
    title = Text(TITLE_MAX)
    address = Text(ADDRESS_MAX)
    people_count = Count()
    outcome = Text(SUMMARY_MAX, multiline=True)       # what was agreed when resolved on site
    attachments = attachments()


class WalkinSubmission(LocatedSchema):
    """A visit registered at a mediation centre's front desk."""

    visit_no = reference(required=True)
    centre = code(required=True)
    receptionist_id = code(required=True)
    visitor_name = Text(NAME_MAX, required=True)
    visitor_phone = Phone(required=True)
    content = content()
    township = township(required=True)
    id_number = IdNumber()
    visited_at = timestamp()


CHANNELS: dict[str, type[BaseSchema]] = {
    "hotline": HotlineSubmission,
    "petition": PetitionSubmission,
    "opinion": OpinionSubmission,
    "app": AppSubmission,
    "grid": GridSubmission,
    "walkin": WalkinSubmission,
}

_REFERENCE_FIELDS = {
    "hotline": "order_no",
    "petition": "petition_no",
    "opinion": "lead_id",
    "app": "post_id",
    "grid": "report_no",
    "walkin": "visit_no",
}


_SCHEMA_INSTANCES: dict[str, BaseSchema] = {}


def schema_for(channel: str) -> BaseSchema:
    """The channel's schema. Instances are kept: building one copies every field, which costs
    more than loading a submission, and loading does not change a schema."""
    if channel not in CHANNELS:
        shown = channel[:40] if isinstance(channel, str) else type(channel).__name__
        raise SubmissionInvalid(
            {"channel": [f"unknown channel {shown!r}; expected one of: {', '.join(sorted(CHANNELS))}"]}
        )
    schema = _SCHEMA_INSTANCES.get(channel)
    if schema is None:
        schema = _SCHEMA_INSTANCES[channel] = CHANNELS[channel]()
    return schema


def reference_field(channel: str) -> str:
    """The field that identifies a submission in its source system (idempotency key)."""
    schema_for(channel)
    return _REFERENCE_FIELDS[channel]


def load_submission(
    channel: str,
    payload: Any,
    now: datetime,
    *,
    max_age: timedelta = MAX_AGE,
    future_tolerance: timedelta = FUTURE_TOLERANCE,
) -> dict:
    """Validate one submission; return its fields plus `unknown_fields` (sorted names).

    Raises SubmissionInvalid with every bad field and one reason each.
    """
    schema = schema_for(channel)
    data = _load(schema, payload)
    errors = _event_time_errors(schema, data, now, max_age, future_tolerance)
    if errors:
        raise SubmissionInvalid(errors)
    data["unknown_fields"] = _unknown_fields(schema, payload)
    return data


def body_fingerprint(channel: str, payload: Any) -> str:
    """A hash of what the body means, to tell a resend (200) from a changed body (409).

    Stable under key order, JSON whitespace, surrounding spaces, phone formatting, the
    offset a time is written in, explicit nulls and fields this contract does not know.
    Independent of `now`, so a resend long after is still recognised. Raises
    SubmissionInvalid if the body does not have the channel's shape.
    """
    return identify(channel, payload)[1]


def identify(channel: str, payload: Any) -> tuple[str, str]:
    """(reference, body fingerprint) of a submission, checked for shape but not for dates.

    Intake looks a submission up by these first, so a resend of an accepted submission is
    recognised (200, the first answer) even after its dates have aged past `max_age`.
    Raises SubmissionInvalid if the body does not have the channel's shape.
    """
    data = _load(schema_for(channel), payload)
    canonical = json.dumps(
        {"channel": channel, "body": data},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
        default=_utc_iso,
    )
    return data[_REFERENCE_FIELDS[channel]], hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _load(schema: BaseSchema, payload: Any) -> dict:
    if not isinstance(payload, dict):
        raise SubmissionInvalid({"_body": ["must be a JSON object"]})
    try:
        return schema.load(payload)
    except ValidationError as exc:
        raise SubmissionInvalid(_flatten(exc.messages)) from None


def _utc_iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat()
    raise TypeError(f"cannot fingerprint {type(value).__name__}")


def _event_time_errors(
    schema: BaseSchema, data: dict, now: datetime, max_age: timedelta, future_tolerance: timedelta
) -> dict[str, list[str]]:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    errors = {}
    for name, field in schema.fields.items():
        value = data.get(name)
        if value is None or not field.metadata.get("event_time"):
            continue
        if value > now + future_tolerance:
            minutes = int(future_tolerance.total_seconds() // 60)
            errors[name] = [f"must not be more than {minutes} minutes in the future"]
        elif value < now - max_age:
            errors[name] = [f"must not be more than {max_age.days} days old"]
    return errors


def _flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's nested errors -> {"parties.0.phone": ["reason"]}."""
    if isinstance(messages, list):
        return {prefix or "_body": [_reason(m) for m in messages]}
    flat: dict[str, list[str]] = {}
    for key, value in messages.items():
        if key == "_schema":  # about the object itself: named by its own path
            flat.update(_flatten(value, prefix or "_body"))
        else:
            flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def _reason(message: Any) -> str:
    # marshmallow's own wording for the few cases our fields do not cover.
    return {"Invalid input type.": "must be an object"}.get(str(message), str(message))


def _unknown_fields(schema: Schema, payload: dict, prefix: str = "") -> list[str]:
    unknown = []
    for key, value in payload.items():
        field = schema.fields.get(key)
        if field is None:
            unknown.append(f"{prefix}{key}")
        elif isinstance(field, fields.List) and isinstance(field.inner, fields.Nested):
            for index, item in enumerate(value or []):
                if isinstance(item, dict):
                    unknown += _unknown_fields(field.inner.schema, item, f"{prefix}{key}.{index}.")
    return sorted(unknown)
