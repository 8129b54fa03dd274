"""The HTTP edge's error mapping: client errors keep their 4xx, a database or broker that is
down is a 503 with Retry-After (also when the error comes back over RPC), a bug stays a 500,
and error fields are always flat `{field: [reasons]}`."""
from __future__ import annotations

import json

import pytest
from nameko.exceptions import RemoteError
from sqlalchemy.exc import DataError, OperationalError

from services.common.broker import PublishError
from services.common.web import ApiEntrypoint, flat_fields
from services.contracts.errors import Invalid


def answer(exc):
    entrypoint = ApiEntrypoint("GET", "/x")
    entrypoint.method_name = "x"
    response = entrypoint.response_from_exception(exc)
    return response.status_code, json.loads(response.get_data()), response.headers


@pytest.mark.parametrize("exc", [
    OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly")),
    RemoteError("OperationalError", "could not connect to server"),
    RemoteError("PublishError", "3 confirms not received in time"),
    ConnectionResetError("reset by peer"),
    PublishError("publish failed"),
])
def test_a_database_or_broker_that_is_down_is_a_503(exc):
    status, body, headers = answer(exc)
    assert status == 503 and body["error"] == "unavailable" and headers["Retry-After"] == "5"


@pytest.mark.parametrize("exc", [
    DataError("SELECT", {}, Exception("bigint out of range")),
    RemoteError("KeyError", "'township'"),
    ValueError("a bug"),
])
def test_a_bug_stays_a_500(exc):
    assert answer(exc)[0] == 500


def test_a_client_error_keeps_its_status_and_flat_fields():
    status, body, _ = answer(Invalid("bad", {"parties": {0: {"phone": ["must be a phone number"]}}}))
    assert status == 400
    assert body == {"error": "invalid", "message": "bad", "fields": {"parties.0.phone": ["must be a phone number"]}}


def test_flat_fields_handles_every_shape_validators_produce():
    assert flat_fields({"a": "x", "b": ["y", {"c": ["z"]}], "d": {"_schema": ["w"]}}) == {
        "a": ["x"], "b": ["y"], "b.c": ["z"], "d._schema": ["w"]}
    assert flat_fields(None) == {} and flat_fields("oops") == {"_body": ["oops"]}


def test_text_no_store_can_hold_is_found_in_values_keys_and_nesting():
    from services.contracts.channels import unsafe_text

    assert unsafe_text({"a": "fine", "b": ["ok", {"c": "好"}]}) == {}
    assert unsafe_text({"a": "x\x00y", "b": ["ok", "\ud800"], "k\x00": 1}) == {
        "a": ["must not contain NUL characters"],
        "b.1": ["must be valid UTF-8 text (a lone surrogate)"],
        "_body": ["must not contain NUL characters"],
    }
