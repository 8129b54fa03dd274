"""People's time and choices: quiet hours and opt-outs. Nothing else.

- Quiet hours (default 21:00-08:00 Asia/Shanghai, SMS only): a non-urgent message planned
  inside the window is held until the window ends; urgent messages go at once.
- Opt-out: a person may opt out of one channel or of all; legally required notices go anyway.

Configuration (read by `QuietHours.from_env`, never at import):
    NOTIFY_QUIET_HOURS     "HH:MM-HH:MM" local time, e.g. "21:00-08:00"; equal ends disable it
    NOTIFY_QUIET_CHANNELS  comma-separated channels held at night (default "sms")
    TZ_NAME                the county's time zone (default Asia/Shanghai)
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from typing import Collection
from zoneinfo import ZoneInfo

from services.common import config

ALL_CHANNELS = "*"


@dataclass(frozen=True)
class QuietHours:
    start: time = time(21, 0)
    end: time = time(8, 0)
    tz: ZoneInfo = ZoneInfo("Asia/Shanghai")
    channels: frozenset[str] = frozenset({"sms"})

    @classmethod
    def from_env(cls) -> "QuietHours":
        window = config.get("NOTIFY_QUIET_HOURS") or "21:00-08:00"
        start, end = (time.fromisoformat(part.strip()) for part in window.split("-"))
        channels = config.get("NOTIFY_QUIET_CHANNELS") or "sms"
        return cls(start=start, end=end, tz=ZoneInfo(config.get("TZ_NAME")),
                   channels=frozenset(c.strip() for c in channels.split(",") if c.strip()))

    def window_end(self, now: datetime) -> datetime | None:
        """When the quiet window containing `now` ends, or None if `now` is outside it."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        if self.start == self.end:
            return None
        local = now.astimezone(self.tz)
        clock = local.time()
        if self.start < self.end:
            inside = self.start <= clock < self.end
            end_day = local.date()
        else:   # the window spans midnight
            inside = clock >= self.start or clock < self.end
            end_day = local.date() + timedelta(days=1) if clock >= self.start else local.date()
        if not inside:
            return None
        return datetime.combine(end_day, self.end, tzinfo=self.tz).astimezone(timezone.utc)

    def release_at(self, now: datetime, urgent: bool, channel: str) -> datetime:
        """The earliest moment the message may go (UTC): `now`, or the end of the quiet window."""
        held_until = None if urgent or channel not in self.channels else self.window_end(now)
        return held_until or now.astimezone(timezone.utc)


def release_at(now: datetime, urgent: bool, channel: str, quiet_hours: QuietHours | None = None) -> datetime:
    return (quiet_hours or QuietHours.from_env()).release_at(now, urgent, channel)


def is_opted_out(recipient_id: str, channel: str, opt_outs: Collection[tuple[str, str]]) -> bool:
    """`opt_outs` holds (recipient_id, channel) pairs; channel "*" means every channel."""
    return (recipient_id, channel) in opt_outs or (recipient_id, ALL_CHANNELS) in opt_outs


@dataclass(frozen=True)
class Decision:
    send: bool
    release_at: datetime | None   # when to send (UTC); None when not sending
    reason: str | None            # "opted_out", "quiet_hours" or None


def decide(*, recipient_id: str, channel: str, urgent: bool, legally_required: bool, now: datetime,
           opt_outs: Collection[tuple[str, str]] = (), quiet_hours: QuietHours | None = None) -> Decision:
    """Whether and when one planned message goes. The service records a skipped delivery too,
    so the case history shows that the person opted out."""
    if not legally_required and is_opted_out(recipient_id, channel, opt_outs):
        return Decision(send=False, release_at=None, reason="opted_out")
    hours = quiet_hours or QuietHours.from_env()
    at = hours.release_at(now, urgent, channel)
    return Decision(send=True, release_at=at, reason="quiet_hours" if at > now else None)
