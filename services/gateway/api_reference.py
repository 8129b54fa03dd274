"""The directory, readable by apps and handsets."""
from __future__ import annotations

from services.common.web import api


class ReferenceApi:
    @api("GET", "/api/v1/reference/townships")
    def townships(self, request):
        self._authenticate(request)
        return self._call("routing", "townships")
