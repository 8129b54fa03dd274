"""The case view: mediation's status and timeline joined with intake's sources."""
from __future__ import annotations

from services.common.web import api
from services.contracts.errors import Forbidden, NotFound
from services.gateway import views


class CasesApi:
    @api("GET", "/api/v1/cases/<case_no>")
    def get_case(self, request, case_no):
        principal = self._authenticate(request)
        intake_view = self._call("intake", "get_case", case_no)
        if not views.may_read_case(principal, intake_view):
            raise Forbidden("you may not read this case")
        try:
            workflow = self._call("mediation", "get_case", case_no)
        except NotFound:
            workflow = None
        return views.case_view(intake_view, workflow)
