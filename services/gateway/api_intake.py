"""Submissions from source systems: one door for every channel."""
from __future__ import annotations

from services.common.web import api
from services.contracts.errors import Forbidden, NotFound
from services.contracts.intake import CHANNELS
from services.gateway.base import read_json


class IntakeApi:
    @api("POST", "/api/v1/submissions/<channel>")
    def submit(self, request, channel):
        principal = self._authenticate(request)
        if channel not in CHANNELS:
            raise NotFound(f"unknown channel {channel!r}", {"channel": [f"one of {', '.join(CHANNELS)}"]})
        if not principal.may_submit(channel):
            raise Forbidden(f"{principal.id} may not submit on channel {channel!r}")
        payload = read_json(request)
        answer = self._call("intake", "submit", channel, payload, principal.id)
        created = answer.pop("created")
        return (202 if created else 200), answer
