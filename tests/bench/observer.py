"""Watches the broker for each case's assignment without touching the system.

A private, auto-deleted queue of the benchmark's own is bound to `mediation.events`
for `case_assigned` in the system's vhost; each message's correlation_id (the case
number) is stamped with `time.monotonic()` when it arrives.
"""
from __future__ import annotations

import threading
import time

from kombu import Connection, Consumer, Exchange, Queue


class AssignmentObserver:
    def __init__(self, amqp_uri: str, event: str = "case_assigned", exchange: str = "mediation.events"):
        self.amqp_uri = amqp_uri
        self.queue = Queue(f"bench.observer.{event}", exchange=Exchange(exchange, "topic", durable=True, passive=True),
                           routing_key=event, exclusive=True, auto_delete=True, durable=False)
        self.seen: dict[str, float] = {}
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None

    def start(self) -> "AssignmentObserver":
        self._thread.start()
        if not self._ready.wait(15):
            raise RuntimeError(f"the observer could not bind its queue: {self.error!r}")
        return self

    def _on_message(self, message):
        key = message.properties.get("correlation_id")
        if key and key not in self.seen:
            self.seen[key] = time.monotonic()

    def _run(self):
        try:
            with Connection(self.amqp_uri, heartbeat=0) as conn:
                with Consumer(conn.channel(), queues=[self.queue], on_message=self._on_message, no_ack=True,
                              prefetch_count=0):
                    self._ready.set()
                    while not self._stop.is_set():
                        try:
                            conn.drain_events(timeout=0.2)
                        except TimeoutError:
                            pass
        except BaseException as exc:  # noqa: BLE001 - reported by start() or wait()
            self.error = exc
            self._ready.set()

    def wait(self, case_nos, timeout: float) -> int:
        """Wait until every case was seen; returns how many are missing when time ran out."""
        deadline = time.monotonic() + timeout
        wanted = set(case_nos)
        while time.monotonic() < deadline:
            missing = len(wanted - self.seen.keys())
            if not missing:
                return 0
            if self.error:
                raise RuntimeError(f"the observer failed: {self.error!r}")
            time.sleep(0.1)
        return len(wanted - self.seen.keys())

    def stop(self):
        self._stop.set()
        self._thread.join(5)
