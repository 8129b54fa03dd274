"""Logging: one line per record, personal data masked before anything is written."""
from __future__ import annotations

import logging
import os

from services.common.privacy import mask_text


class MaskingFormatter(logging.Formatter):
    def format(self, record):
        return mask_text(super().format(record))


class QuietRedelivery(logging.Filter):
    """A redelivered event that was already handled is normal (DESIGN §4.4): one line, no traceback."""

    def filter(self, record):
        from services.common.db import AlreadyHandled

        if record.exc_info and isinstance(record.exc_info[1], AlreadyHandled):
            record.msg, record.args, record.exc_info, record.levelno, record.levelname = (
                "ignored a redelivered event %s (already handled)", (record.exc_info[1],), None, logging.INFO, "INFO")
        return True


class QuietClientErrors(logging.Filter):
    """A 4xx is the client's mistake, answered with its reason: no traceback per bad request
    (a fuzzer sends thousands, and formatting them cost more than answering)."""

    def filter(self, record):
        if not record.exc_info:
            return True
        from werkzeug.exceptions import HTTPException

        from services.contracts.errors import ServiceError

        exc = record.exc_info[1]
        if isinstance(exc, ServiceError):
            return exc.status >= 500
        if isinstance(exc, HTTPException):
            return (exc.code or 500) >= 500
        return type(exc).__name__ != "RateLimited"


def configure(service: str = "lanling", level: str | None = None) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(MaskingFormatter(f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level or os.environ.get("LOG_LEVEL", "INFO"))
    logging.getLogger("nameko.containers").addFilter(QuietRedelivery())
    logging.getLogger("nameko.containers").addFilter(QuietClientErrors())
    for noisy in ("kombu", "amqp", "nameko.containers", "nameko.messaging", "eventlet.wsgi", "nameko.web.server"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
