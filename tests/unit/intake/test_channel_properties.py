"""Property tests of the six channel input schemas (services/contracts/channels.py) with hypothesis.

Whatever arrives, `load_submission` answers one of two ways: the validated data, or
SubmissionInvalid naming each bad field with reasons (plain strings, never the submitted value).
Never another exception: that would be a 500 at the gateway or a retried, never-accepted
message on the AMQP ingress.
"""
from __future__ import annotations

import json
import unicodedata

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from services.contracts.channels import CHANNELS, SubmissionInvalid, identify, load_submission, reference_field
from tests.unit.intake.conftest import NOW
from tests.unit.intake.test_submissions import valid

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NASTY_TEXT = st.sampled_from([
    "", " ", "\x00", "a\x00b", "\u202eevil", "\ud800", "'; DROP TABLE cases; --", "<script>alert(1)</script>",
    "${jndi:ldap://x/a}", "{{7*7}}", "../../etc/passwd", "%s%s%s%n", "1e309", "NaN", "-0", "９９",
    "１３８００００１００１", "x" * 300, "王" * 20_001, "\r\n", "\t", "🙂" * 10, "null", "true", "[]", "{}",
])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                    st.text(max_size=60), NASTY_TEXT)
JSON = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                     st.dictionaries(st.text(max_size=12), inner, max_size=4)),
                    max_leaves=12)


def fields_of(channel: str) -> list[str]:
    return sorted(CHANNELS[channel]().fields)


def outcome(channel, payload):
    """("ok", data) or ("invalid", fields); any other exception fails the test."""
    try:
        return "ok", load_submission(channel, payload, NOW)
    except SubmissionInvalid as exc:
        assert exc.fields, "an invalid submission must name at least one field"
        for name, reasons in exc.fields.items():
            assert isinstance(name, str) and name
            assert reasons and all(isinstance(r, str) and r for r in reasons)
        return "invalid", exc.fields


@pytest.mark.parametrize("channel", sorted(CHANNELS))
@PROPERTY
@given(payload=JSON)
def test_any_json_value_is_accepted_or_rejected_with_named_fields(channel, payload):
    outcome(channel, payload)


@pytest.mark.parametrize("channel", sorted(CHANNELS))
@PROPERTY
@given(data=st.data(), value=st.one_of(JSON, NASTY_TEXT))
def test_a_bad_value_in_one_field_is_named_and_never_echoed(channel, data, value):
    name = data.draw(st.sampled_from(fields_of(channel)), label="field")
    body = valid(channel, **{name: value})
    kind, result = outcome(channel, body)
    if kind == "invalid":
        assert all(f == name or f.startswith(f"{name}.") for f in result), (name, result)
        if isinstance(value, str) and len(value) >= 6 and value.strip():
            assert all(value not in reason for reasons in result.values() for reason in reasons)
    else:
        for key, text in result.items():
            if isinstance(text, str):  # whatever is accepted is clean text
                assert not any(unicodedata.category(ch) == "Cc" and ch not in "\n\r\t" for ch in text), key
                assert text == text.strip()


@pytest.mark.parametrize("channel", sorted(CHANNELS))
@PROPERTY
@given(data=st.data())
def test_a_missing_required_field_is_named(channel, data):
    schema = CHANNELS[channel]()
    required = sorted(n for n, f in schema.fields.items() if f.required)
    assume(required)
    name = data.draw(st.sampled_from(required))
    body = valid(channel)
    body.pop(name, None)
    kind, result = outcome(channel, body)
    assert kind == "invalid" and name in result


@pytest.mark.parametrize("channel", sorted(CHANNELS))
@PROPERTY
@given(extra=st.dictionaries(st.text(min_size=1, max_size=20), JSON, min_size=1, max_size=4))
def test_unknown_fields_are_listed_by_name_never_rejected(channel, extra):
    known = set(fields_of(channel))
    extra = {k: v for k, v in extra.items() if k not in known}
    assume(extra)
    kind, data = outcome(channel, {**valid(channel), **extra})
    assert kind == "ok"
    assert set(data["unknown_fields"]) == set(extra)
    assert all(json.dumps(v, ensure_ascii=False) not in data["unknown_fields"] for v in extra.values()
               if isinstance(v, str) and len(v) > 20)


@pytest.mark.parametrize("channel", sorted(CHANNELS))
@PROPERTY
@given(order=st.randoms(use_true_random=False))
def test_the_fingerprint_does_not_depend_on_key_order(channel, order):
    body = valid(channel)
    keys = list(body)
    order.shuffle(keys)
    shuffled = {k: body[k] for k in keys}
    assert identify(channel, shuffled) == identify(channel, body)
    assert identify(channel, body)[0] == body[reference_field(channel)].strip()
