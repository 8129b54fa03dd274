"""The full flow: the real processes, hotline submissions through the gateway, assignments observed.

Capacity: a closed-loop burst; cases/s = new cases / (last assignment - first submission),
so a backlog left in any queue when the submissions end is still counted against it.
Latency: open-loop arrivals at a third of that capacity; submission due -> case_assigned.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.bench import loadgen
from tests.bench.common import amqp_uri, environ_has, management_url, percentile, postgres_database, processes, say
from tests.bench.observer import AssignmentObserver
from tests.bench.texts import Orders
from tests.harness import LANLING, System


@dataclass
class RunningSystem:
    system: System
    observer: AssignmentObserver
    orders: Orders
    databases: object | None = None
    notes: dict = field(default_factory=dict)

    def cpu(self) -> tuple[dict[str, float], tuple[float, float]]:
        return cpu_by_process(self.system, self.databases), machine_cpu()

    def stop(self):
        self.observer.stop()
        self.system.stop()
        if self.databases is not None:
            self.databases.drop()


def start(workdir: Path, *, postgres: bool, scale: dict[str, int] | None = None, env: dict | None = None,
          databases=None, label: str = "flow") -> RunningSystem:
    """`lanling run` with the given replicas, on fresh PostgreSQL databases or SQLite files."""
    from tests.conftest import Databases

    workdir.mkdir(parents=True, exist_ok=True)
    if postgres and databases is None:
        databases = Databases(workdir, True)
    system = System(workdir, db_urls=databases.urls if databases else None, env=env)
    specs = [f"{name}={count}" for name, count in (scale or {}).items() if count != 1]
    names = {s.split("=")[0] for s in specs}
    specs += [n for n in ("intake", "routing", "mediation", "psych", "notify", "gateway") if n not in names]
    system._spawn("lanling-run", [LANLING, "run", *specs])
    began = time.monotonic()
    system.wait_healthy(timeout=240)
    say(f"{label}: system healthy after {time.monotonic() - began:.0f}s ({'PostgreSQL' if postgres else 'SQLite'}"
        f"{', ' + ' '.join(specs) if scale else ''})")
    observer = AssignmentObserver(amqp_uri(system.vhost)).start()
    # growth runs share databases: each run's callers must be new people, or they all merge (并单)
    run_id = system.vhost[-8:]
    return RunningSystem(system, observer, Orders(run_id=run_id, seed=int(run_id, 16)), databases)


def _burst(rs: RunningSystem, bodies: list[dict], *, rate: float | None, timeout: float, threads: int = 16):
    started = time.monotonic()
    sent, cpu = loadgen.submit(rs.system.base_url, rs.system.api_key, bodies, rate=rate, threads=threads)
    submitted = time.monotonic()
    errors = [s for s in sent if s.status not in (200, 202)]
    new = [s for s in sent if s.answer == "received"]
    missing = rs.observer.wait([s.case_no for s in new], timeout)
    return sent, new, errors, missing, cpu, started, submitted


def capacity(rs: RunningSystem, n: int, *, label: str, threads: int = 16) -> dict:
    """Closed loop: n submissions as fast as the gateway answers, until all are assigned."""
    bodies = rs.orders.batch(n)
    cpu_before, machine_before = rs.cpu()
    sent, new, errors, missing, cpu, started, submitted = _burst(rs, bodies, rate=None, timeout=max(120, n / 5),
                                                                 threads=threads)
    cpu_after, machine_after = rs.cpu()
    if not new:
        raise RuntimeError(f"{label}: no submission was accepted; {errors[:1]}\n{rs.system.log_tail()}")
    first = min(s.sent for s in sent)
    last = max(rs.observer.seen.get(s.case_no, 0.0) for s in new)
    last_answer = max(s.answered for s in sent)
    result = {
        "submissions": n,
        "new_cases": len(new),
        "merged": sum(1 for s in sent if s.answer == "merged"),
        "errors": len(errors),
        "not_assigned": missing,
        "cases_per_s": len(new) / (last - first) if missing < len(new) else 0.0,
        "accepted_per_s": len(sent) / (last_answer - first),
        "submit_p50_ms": percentile([(s.answered - s.sent) * 1000 for s in sent], 50),
        "loadgen_cpu_share": cpu / ((last - first) * 2),  # of the machine's two cores
    }
    ours = {name: seconds * 1000 / max(1, len(new)) for name, seconds in cpu_share(cpu_before, cpu_after, 1).items()}
    busy = machine_after[0] - machine_before[0]
    wall = (machine_after[1] - machine_before[1]) / 2
    result["cpu_ms_per_case"] = round(sum(ours.values()), 1)
    result["cpu_ms_per_case_by_process"] = {k: round(v, 1) for k, v in ours.items()}
    # what everything else on the machine (other jobs, and RabbitMQ) used meanwhile, in cores
    result["other_cores_busy"] = round((busy - sum(ours.values()) * len(new) / 1000 - cpu) / wall, 2)
    say(f"{label}: {result['new_cases']} cases assigned at {result['cases_per_s']:.1f}/s "
        f"(gateway accepted {result['accepted_per_s']:.0f}/s, submit p50 {result['submit_p50_ms']:.0f} ms, "
        f"errors {len(errors)}, unassigned {missing}, load generator {result['loadgen_cpu_share']:.0%} of the CPU; "
        f"{result['cpu_ms_per_case']:.0f} CPU ms per case; other load {result['other_cores_busy']:.2f} cores)")
    say(f"{label}: CPU ms per case by process {result['cpu_ms_per_case_by_process']}")
    return result


def latency(rs: RunningSystem, rate: float, seconds: float, *, label: str) -> dict:
    """Open loop at a fixed rate: latency from when each submission was due to its assignment."""
    n = max(50, int(rate * seconds))
    bodies = rs.orders.batch(n)
    sent, new, errors, missing, cpu, started, submitted = _burst(rs, bodies, rate=rate, timeout=120,
                                                                 threads=max(16, int(rate / 4)))
    samples = [(rs.observer.seen[s.case_no] - s.due) * 1000 for s in new if s.case_no in rs.observer.seen]
    late = [(s.sent - s.due) * 1000 for s in sent]
    result = {
        "rate_per_s": rate,
        "submissions": n,
        "errors": len(errors),
        "not_assigned": missing,
        "p50_ms": percentile(samples, 50),
        "p95_ms": percentile(samples, 95),
        "p99_ms": percentile(samples, 99),
        "max_ms": max(samples) if samples else float("nan"),
        "submit_p99_ms": percentile([(s.answered - s.sent) * 1000 for s in sent], 99),
        "generator_lag_p99_ms": percentile(late, 99),
    }
    say(f"{label}: at {rate:.1f}/s latency p50 {result['p50_ms']:.0f} ms, p95 {result['p95_ms']:.0f} ms, "
        f"p99 {result['p99_ms']:.0f} ms (generator lag p99 {result['generator_lag_p99_ms']:.0f} ms)")
    return result


def warm_up(rs: RunningSystem, n: int = 60, *, label: str) -> float:
    """A first batch, so caches, JITs and connections are warm; returns its rough rate."""
    result = capacity(rs, n, label=f"{label} warm-up", threads=8)
    return result["cases_per_s"]


def queue_rates(vhost: str) -> dict[str, dict]:
    """Per-queue depth and rates from the management API, to find the slowest service."""
    response = requests.get(f"{management_url()}/api/queues/{requests.utils.quote(vhost, safe='')}", timeout=10)
    response.raise_for_status()
    out = {}
    for q in response.json():
        stats = q.get("message_stats", {})
        out[q["name"]] = {
            "messages": q.get("messages", 0),
            "ack_rate": stats.get("ack_details", {}).get("rate", 0.0),
            "publish_rate": stats.get("publish_details", {}).get("rate", 0.0),
            "acked": stats.get("ack", 0),
        }
    return out


def cpu_by_process(system: System, databases=None) -> dict[str, float]:
    """CPU seconds so far of each process of this system, by label.

    Our processes are those whose environment has this system's LANLING_VAR; PostgreSQL's
    backends are counted when they serve one of this system's databases. RabbitMQ is one
    process shared by everything on the machine, so it is not counted here.
    """
    marker = f"LANLING_VAR={system.env['LANLING_VAR']}".encode()
    db_names = [url.rsplit("/", 1)[1] for url in (databases.urls.values() if databases else [])]
    totals: dict[str, float] = {}
    for pid, args, cpu in processes():
        name = postgres_database(args, db_names)
        if name is not None:
            label = "postgres:" + name.split("_")[2]
        elif args[0] != "/bin/sh" and environ_has(pid, marker):  # not honcho's shell wrappers: they only wait
            label = args[-1] if "services.common.runner" in args else "lanling-run"  # honcho, reading logs
        else:
            continue
        totals[f"{label}#{pid}"] = cpu
    return totals


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / tick, sum(fields[:8]) / tick


def cpu_share(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """Each service's share of one core over an interval, replicas added up."""
    shares: dict[str, float] = {}
    for label, value in after.items():
        name = label.split("#")[0]
        shares[name] = shares.get(name, 0.0) + (value - before.get(label, 0.0)) / seconds
    return dict(sorted(shares.items(), key=lambda kv: -kv[1]))
