"""Notify's message templates (Jinja2, Chinese) and how they are rendered.

One template per (channel, event, audience): `<channel>/<event>.<audience>.j2`. E-mail, app
push and inbox templates start with their subject (title) line, then the body; an SMS
template is all body. Rendering is strict: a missing context value is an error, never an
empty gap in a citizen's message.

The SMS signature (e.g. 【兰陵调解】) is not in the templates: the gateway adds it, and a
citizen's SMS must fit one segment with it, see `sms_fits_one_segment`.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATES_DIR = Path(__file__).parent
NO_SUBJECT_CHANNEL = "sms"
DEFAULT_SMS_SIGNATURE = "【兰陵调解】"
# A single SMS carries 70 UCS-2 code units once any Chinese character is in it.
SMS_SEGMENT_UNITS = 70


@dataclass(frozen=True)
class Rendered:
    subject: str | None
    body: str


@lru_cache(maxsize=None)
def environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR)),
        undefined=StrictUndefined,
        autoescape=False,          # plain text for SMS, push, inbox and text/plain e-mail
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


def render(template: str, context: Mapping[str, Any]) -> Rendered:
    """Render one template; raises jinja2.UndefinedError when the context lacks a value."""
    text = environment().get_template(template).render(context).strip()
    if template.startswith(f"{NO_SUBJECT_CHANNEL}/"):
        return Rendered(subject=None, body=text)
    subject, _, body = text.partition("\n")
    return Rendered(subject=subject.strip(), body=body.strip())


def sms_text(body: str, signature: str = DEFAULT_SMS_SIGNATURE) -> str:
    """The SMS as the phone shows it: signature first, as Chinese carriers require."""
    return body if body.startswith(signature) else f"{signature}{body}"


def sms_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def sms_fits_one_segment(text: str) -> bool:
    """True when `text` (signature included, see `sms_text`) fits a single SMS segment."""
    return sms_units(text) <= SMS_SEGMENT_UNITS
