"""An injectable clock: services ask it for the time, tests move it instead of sleeping.

- `SystemClock`: the real time, in UTC.
- `ManualClock`: set and advanced by in-process tests.
- `FileOffsetClock`: the real time plus an offset in seconds read from a file, so a test
  can move time for real processes it started (LANLING_CLOCK_FILE).
"""
from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Asia/Shanghai")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class SystemClock:
    def now(self) -> datetime:
        return utcnow()


class ManualClock:
    def __init__(self, start: datetime | None = None):
        self._now = start or utcnow()

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when

    def advance(self, delta: timedelta) -> None:
        self._now += delta


class FileOffsetClock:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def offset(self) -> timedelta:
        try:
            return timedelta(seconds=float(self.path.read_text().strip() or 0))
        except FileNotFoundError:
            return timedelta(0)

    def now(self) -> datetime:
        return utcnow() + self.offset()

    def advance(self, delta: timedelta) -> None:
        self.path.write_text(str((self.offset() + delta).total_seconds()))


def clock_from_env():
    path = os.environ.get("LANLING_CLOCK_FILE")
    return FileOffsetClock(path) if path else SystemClock()


def local(when: datetime) -> datetime:
    """A UTC instant shown in the county's time zone (with its +08:00 offset)."""
    return when.astimezone(LOCAL_TZ)
