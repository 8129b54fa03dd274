"""The one HTTP edge: authentication, then RPC to the service that owns the answer.

Each area of the API is a mixin (api_<area>.py); GatewayBase holds the dependencies.
"""
from __future__ import annotations

from services.gateway.api_audit import AuditApi
from services.gateway.api_cases import CasesApi
from services.gateway.api_core import CoreApi
from services.gateway.api_intake import IntakeApi
from services.gateway.api_notify import NotifyApi
from services.gateway.api_psych import PsychApi
from services.gateway.api_reference import ReferenceApi
from services.gateway.api_reports import ReportsApi
from services.gateway.api_routing import RoutingApi
from services.gateway.base import GatewayBase


class GatewayService(CoreApi, IntakeApi, CasesApi, ReportsApi, ReferenceApi, RoutingApi, NotifyApi, PsychApi,
                     AuditApi, GatewayBase):
    name = "gateway"
