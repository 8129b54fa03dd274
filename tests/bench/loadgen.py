"""The load generator: hotline submissions over HTTP from worker processes with threads.

Closed loop (`rate=None`): every thread submits as fast as answers come back, to find
the capacity. Open loop (`rate=r`): submission k is due at t0 + k/r whatever happened to
earlier ones, and latency is counted from the moment it was due, so a stalled system
cannot hide its stall by slowing the generator down (no coordinated omission).

Times are `time.monotonic()`, which on Linux is one clock for every process of the machine,
so the observer in the parent can subtract them. Each worker reports its own CPU time so
the report can show the generator was not the bottleneck.
"""
from __future__ import annotations

import multiprocessing
import threading
import time
from dataclasses import dataclass


@dataclass
class Sent:
    order_no: str
    due: float        # when it should have been sent (open loop) or was ready (closed loop)
    sent: float
    answered: float
    status: int
    case_no: str | None
    answer: str | None  # "received" (a new case) or "merged"


def _worker(args) -> tuple[list[Sent], float]:
    base_url, api_key, channel, schedule, threads, t0 = args
    import requests

    results: list[Sent] = []
    lock = threading.Lock()
    position = [0]
    url = f"{base_url}/api/v1/submissions/{channel}"
    headers = {"X-Api-Key": api_key}

    def run():
        session = requests.Session()
        while True:
            with lock:
                if position[0] >= len(schedule):
                    return
                offset, body = schedule[position[0]]
                position[0] += 1
            due = t0 + offset
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sent = time.monotonic()
            try:
                response = session.post(url, json=body, headers=headers, timeout=60)
                status = response.status_code
                data = response.json() if status in (200, 202) else {}
            except Exception:  # noqa: BLE001 - a failed request is counted, not fatal
                status, data = 0, {}
            results.append(Sent(body["order_no"], due, sent, time.monotonic(), status, data.get("case_no"),
                                data.get("status")))

    cpu_before = time.process_time()
    workers = [threading.Thread(target=run, daemon=True) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return results, time.process_time() - cpu_before


def submit(base_url: str, api_key: str, bodies: list[dict], *, rate: float | None = None, processes: int = 2,
           threads: int = 16, channel: str = "hotline") -> tuple[list[Sent], float]:
    """Send every body; returns what happened to each and the generator's CPU seconds."""
    offsets = [(i / rate if rate else 0.0) for i in range(len(bodies))]
    t0 = time.monotonic() + 1.5  # the workers need a moment to start
    jobs = [(base_url, api_key, channel, list(zip(offsets[p::processes], bodies[p::processes])), threads, t0)
            for p in range(processes)]
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        parts = pool.map(_worker, jobs)
    return [s for part, _ in parts for s in part], sum(cpu for _, cpu in parts)
