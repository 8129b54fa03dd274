"""RPC between services: remote errors keep their type; calls have a timeout.

nameko's in-service `RpcProxy` waits forever (DESIGN §4.8): the gateway calls
through `call_with_timeout` so a silent service becomes a 503, not a hung request.
"""
from __future__ import annotations

import eventlet
from nameko.exceptions import UnknownService, deserialize_to_instance

from services.common.web import Unavailable
from services.contracts.errors import REMOTE_ERRORS

for _error in REMOTE_ERRORS:
    deserialize_to_instance(_error)


def call_with_timeout(proxy, service: str, method: str, *args, timeout: float, **kwargs):
    try:
        with eventlet.Timeout(timeout, Unavailable(f"{service} did not answer within {timeout:g} s")):
            return getattr(proxy, method)(*args, **kwargs)
    except UnknownService as exc:
        raise Unavailable(f"{service} is not running") from exc
