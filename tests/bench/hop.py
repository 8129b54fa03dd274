"""One event hop through the project's reliability core, on PostgreSQL.

A toy producer (named intake) commits `case_received` events one transaction each
from concurrent green threads, through `uow.emit` (outbox) and its relay; a toy
consumer (named routing) in its own process handles them with `@handle` and
`db.handling` (inbox + one effect row). Throughput = events / (last effect committed
- first emit), both sides running at once, as in the flow.

The measuring runs in `tests.bench.hop_worker` processes: they need eventlet's monkey
patch, which the rest of the benchmark must not have.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys


def run(events: int = 3000) -> dict:
    """In child processes with eventlet: fresh vhost and PostgreSQL databases, then measure."""
    out = subprocess.run([sys.executable, "-m", "tests.bench.hop_worker", "measure", str(events)],
                         capture_output=True, text=True, timeout=600, env=os.environ)
    if out.returncode != 0:
        raise RuntimeError(f"event hop failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
