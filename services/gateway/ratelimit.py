"""Counting failed attempts (a citizen lookup with a wrong case number or phone) per key in a
sliding window, to block guessing. Pure and in memory: each gateway process counts its own,
so with N gateway replicas behind a balancer a guesser gets at most N times the limit."""
from __future__ import annotations

import math
import threading
from collections import OrderedDict, deque
from datetime import datetime, timedelta


class MissLimiter:
    def __init__(self, max_misses: int, window: timedelta, max_keys: int = 100_000):
        self.max_misses = max_misses
        self.window = window
        self.max_keys = max_keys
        self._misses: OrderedDict[str, deque[datetime]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, key: str, now: datetime) -> deque | None:
        times = self._misses.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._misses[key]
            return None
        return times

    def retry_after(self, keys, now: datetime) -> int | None:
        """Seconds until every key may try again, or None when none is blocked."""
        wait = 0.0
        with self._lock:
            for key in keys:
                times = self._recent(key, now)
                if times is not None and len(times) >= self.max_misses:
                    # blocked until enough of its misses have left the window
                    free_at = times[len(times) - self.max_misses] + self.window
                    wait = max(wait, (free_at - now).total_seconds())
        return max(1, math.ceil(wait)) if wait > 0 else None

    def miss(self, keys, now: datetime) -> None:
        with self._lock:
            for key in keys:
                times = self._recent(key, now)
                if times is None:
                    times = self._misses[key] = deque()
                times.append(now)
                self._misses.move_to_end(key)
            while len(self._misses) > self.max_keys:
                self._misses.popitem(last=False)

    def reset(self) -> None:
        with self._lock:
            self._misses.clear()
