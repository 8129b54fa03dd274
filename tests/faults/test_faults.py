"""Fault injection: a stream of cases through the gateway and the AMQP ingress while services are
killed, connections cut, the broker and the database restarted, a consumer frozen and the network
made slow and broken; then every accepted case must have reached its end state exactly once.

Knobs (environment): FAULTS_RATE (cases/s, default 3), FAULTS_MIN_CASES (default 1000),
FAULTS_ONLY (comma-separated fault names, for working on one), FAULTS_KEEP=1 keeps the logs.
"""
from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass
from typing import Callable

from tests.faults.audit import IN_FLIGHT_EXCLUDED, Auditor
from tests.faults.conftest import REPORT, Platform, say
from tests.harness import wait_until

RATE = float(os.environ.get("FAULTS_RATE", "3"))
MIN_CASES = int(os.environ.get("FAULTS_MIN_CASES", "1000"))
HEARTBEAT = 5
RECOVERY_TIMEOUT = 120


@dataclass
class Fault:
    name: str
    inject: Callable[[Platform], None]
    restore: Callable[[Platform], None]
    hold: float
    victim: str | None = None  # the service whose own queues or outbox should be busy when it is hit


def _kill(service: str) -> Fault:
    def inject(p: Platform):
        p.system.kill(service, signal.SIGKILL)

    def restore(p: Platform):
        p.system.start(service)

    return Fault(f"kill -9 {service}", inject, restore, hold=2.0, victim=service)


def _signal(service: str, sig: int):
    return lambda p: os.killpg(p.system.processes[service].pid, sig)


def _postgres_down(p: Platform):
    p.postgres.stop("fast")


FAULTS = [
    *[_kill(s) for s in ("intake", "routing", "mediation", "psych", "notify", "gateway")],
    Fault("rabbitmqctl close_all_connections",
          lambda p: p.rabbit.ctl("close_all_connections", "--global", "fault suite"), lambda p: None, hold=0.0),
    Fault(f"SIGSTOP mediation {HEARTBEAT * 4} s (heartbeat {HEARTBEAT} s), then SIGCONT",
          _signal("mediation", signal.SIGSTOP), _signal("mediation", signal.SIGCONT), hold=HEARTBEAT * 4,
          victim="mediation"),
    Fault("slow network: +100 ms per segment through the proxy for 15 s",
          lambda p: p.proxy("slow 100"), lambda p: p.proxy("pass"), hold=15.0),
    Fault(f"broken network: blackhole for {HEARTBEAT * 3} s, then every connection reset",
          lambda p: p.proxy("blackhole"), lambda p: p.proxy("heal"), hold=HEARTBEAT * 3),
    Fault("PostgreSQL restart (stop -m fast, 3 s down, start)", _postgres_down, lambda p: p.postgres.start(), hold=3.0),
    Fault("broker stop_app / start_app", lambda p: p.rabbit.ctl("stop_app"), lambda p: p.rabbit.ctl("start_app"),
          hold=3.0),
]


# -- observing ----------------------------------------------------------------------------------
def in_flight(p: Platform, auditor: Auditor, victim: str | None) -> dict:
    queues = {name: q["ready"] + q["unacked"] for name, q in p.rabbit.queues().items()
              if not name.endswith(".dead") and name not in IN_FLIGHT_EXCLUDED and q["ready"] + q["unacked"]}
    outbox = {s: n for s, n in auditor.outbox_pending().items() if n}
    own = {k: v for k, v in queues.items() if victim and k.startswith(victim + ".")}
    if victim and outbox.get(victim):
        own[f"{victim} outbox"] = outbox[victim]
    return {"queues": queues, "outbox": outbox, "own": own, "total": sum(queues.values()) + sum(outbox.values())}


def wait_in_flight(p: Platform, auditor: Auditor, fault: Fault) -> dict:
    """Messages must be in flight when the fault hits: the victim's own if it can be caught busy."""
    if fault.victim and fault.victim not in ("gateway", "psych"):
        try:
            return wait_until(lambda: (s := in_flight(p, auditor, fault.victim))["own"] and s, 20, interval=0.1,
                              what=f"{fault.victim}'s own queues or outbox non-empty")
        except TimeoutError:
            pass
    return wait_until(lambda: (s := in_flight(p, auditor, fault.victim))["total"] and s, 30, interval=0.1,
                      what="queues or outboxes non-empty")


class Answers:
    """The load generator's answers file, read incrementally."""

    def __init__(self, p: Platform):
        self.path = p.load_out
        self.offset = 0
        self.accepted: list[dict] = []
        self.http = self.amqp = 0

    def refresh(self) -> "Answers":
        if not self.path.exists():
            return self
        with open(self.path, encoding="utf-8") as f:
            f.seek(self.offset)
            data = f.read()
        complete = data[:data.rfind("\n") + 1]
        self.offset += len(complete.encode("utf-8"))
        for line in complete.splitlines():
            record = json.loads(line)
            if record["kind"] == "accepted":
                self.accepted.append(record)
                if record["way"] == "http":
                    self.http += 1
                else:
                    self.amqp += 1
        return self

    def counters(self) -> dict:
        self.refresh()
        return {"http_answers": self.http, "amqp_answers": self.amqp}

    def new_cases(self) -> list[str]:
        return sorted({a["case_no"] for a in self.accepted if a["status"] == "received"})


def progress(auditor: Auditor, answers: Answers) -> dict | None:
    try:
        return {**auditor.progress(), **answers.counters()}
    except Exception:  # noqa: BLE001 - the database is coming back
        return None


def run_fault(p: Platform, auditor: Auditor, answers: Answers, fault: Fault) -> dict:
    snapshot = wait_in_flight(p, auditor, fault)
    say(f"{fault.name}: in flight {snapshot['total']} (own {snapshot['own'] or '-'})")
    began = time.monotonic()
    fault.inject(p)
    injected = time.monotonic()
    if fault.hold:
        time.sleep(fault.hold)  # the fault's duration, not a wait for something to happen
    fault.restore(p)
    ended = time.monotonic()
    at_end = wait_until(lambda: progress(auditor, answers), 60, interval=0.2, what="the databases answering")
    before = answers.refresh().new_cases()

    def moved():
        now = progress(auditor, answers)
        return now is not None and all(now[k] > at_end[k] for k in at_end)

    result = {"fault": fault.name, "in_flight_at_injection": snapshot["total"],
              "victim_in_flight": sum(snapshot["own"].values()), "inject_s": round(injected - began, 1),
              "down_s": round(ended - began, 1)}
    try:
        wait_until(moved, RECOVERY_TIMEOUT, interval=0.2, what=f"progress at every stage after {fault.name}")
        result["recovery_s"] = round(time.monotonic() - ended, 1)
        wait_until(lambda: auditor.not_yet_assigned(before) == 0, RECOVERY_TIMEOUT, interval=0.25,
                   what=f"the cases accepted before the end of {fault.name} assigned")
        result["caught_up_s"] = round(time.monotonic() - ended, 1)
    except TimeoutError as exc:
        result["error"] = str(exc)
    say(f"{fault.name}: progress again after {result.get('recovery_s')} s, backlog assigned after "
        f"{result.get('caught_up_s')} s{'; ' + result['error'] if 'error' in result else ''}")
    return result


def drain(p: Platform, auditor: Auditor, timeout: float = 240) -> float:
    """Until nothing is queued, unacknowledged, unpublished or unsent, three times in a row."""
    began = time.monotonic()
    quiet = [0]

    def settled():
        state = in_flight(p, auditor, None)
        busy = state["total"] + auditor.notify_unsettled()
        quiet[0] = quiet[0] + 1 if busy == 0 else 0
        return quiet[0] >= 3

    wait_until(settled, timeout, interval=1.0, what="queues, outboxes and deliveries drained")
    return time.monotonic() - began


# -- the suite ----------------------------------------------------------------------------------
def test_every_accepted_case_reaches_its_end_state_exactly_once_through_faults(platform: Platform):
    began = time.monotonic()
    only = [x.strip() for x in os.environ.get("FAULTS_ONLY", "").split(",") if x.strip()]
    faults = [f for f in FAULTS if not only or any(o in f.name for o in only)]
    auditor = Auditor(platform.db_urls)
    answers = Answers(platform)
    platform.start_load(RATE)
    wait_until(lambda: (progress(auditor, answers) or {}).get("notify_sent", 0) > 20, 120, interval=0.5,
               what="the stream flowing end to end")
    say(f"stream flowing at {RATE}/s: {progress(auditor, answers)}")

    results = []
    try:
        for fault in faults:
            results.append(run_fault(platform, auditor, answers, fault))
            platform_alive(platform)
        wait_until(lambda: len(answers.refresh().accepted) >= MIN_CASES, MIN_CASES / RATE * 2 + 60, interval=1.0,
                   what=f"{MIN_CASES} accepted submissions")
    finally:
        load = platform.stop_load()
    drained_s = drain(platform, auditor)
    report = auditor.audit(platform.answers(), platform.rabbit.queues(), platform.system.workdir / "var" / "notify")
    report.update({
        "submitted": load["submitted"],
        "http_retries": load["http_retries"], "amqp_republished": load["amqp_republished"],
        "http_statuses": load["http_statuses"],
        "faults_injected": len(results),
        "faults": results,
        "final_drain_s": round(drained_s, 1),
        "suite_s": round(time.monotonic() - began, 1),
    })
    auditor.dispose()
    print_report(report)
    failed = [r for r in results if "error" in r]
    assert not failed, f"faults the flow did not recover from: {failed}\n{platform.system.log_tail(30)}"
    assert report["lost"] == 0, f"lost: {report['lost_counts']} {report['lost_detail']}"
    assert report["duplicated"] == 0, f"duplicated: {report['duplicated_counts']} {report['duplicated_detail']}"
    assert report["accepted"] >= MIN_CASES
    # through every fault the gateway answers 2xx or 503 (or the connection fails), never a 500
    assert not [s for s in report["http_statuses"] if s.startswith("5") and s != "503"], report["http_statuses"]
    assert report["completed"] == report["cases"]
    assert all(r["in_flight_at_injection"] > 0 for r in results)


def platform_alive(p: Platform) -> None:
    for label, proc in p.system.processes.items():
        if proc.poll() is not None:
            raise AssertionError(f"{label} exited with {proc.returncode}\n{p.system.log_tail(40)}")


def print_report(report: dict) -> None:
    lines = [
        "",
        "fault suite",
        f"  submitted        {report['submitted']} (gateway / AMQP ingress); accepted {report['accepted']} "
        f"{report['accepted_by_way']}, {report['answers_merged']} merged into an open case",
        f"  channels         {report['accepted_by_channel']}",
        f"  cases            {report['cases']}: completed {report['completed']}, end states {report['end_states']}",
        f"  deliveries       {report['deliveries']} {report['deliveries_by_channel']}; SMS sink {report['sms_unique_keys']} "
        f"keys in {report['sms_sink_lines']} lines",
        f"  events audited   {report['events_audited']} (every one in every consumer's inbox)",
        f"  lost             {report['lost']} {report['lost_counts'] or ''}",
        f"  duplicated       {report['duplicated']} {report['duplicated_counts'] or ''}",
        f"  client retries   HTTP {report['http_retries']} (statuses seen {report['http_statuses']}; 0: no answer), "
        f"AMQP republished {report['amqp_republished']}",
        f"  faults           {report['faults_injected']}:",
    ]
    for r in report["faults"]:
        lines.append(f"    {r['fault']:<62} in flight {r['in_flight_at_injection']:>4}  "
                     f"progress after {r.get('recovery_s', '-'):>5} s  backlog assigned after {r.get('caught_up_s', '-'):>5} s"
                     f"{'  ERROR ' + r['error'] if 'error' in r else ''}")
    lines.append(f"  final drain      {report['final_drain_s']} s; suite {report['suite_s']} s")
    summary = {k: v for k, v in report.items() if not k.endswith("_detail")}
    lines.append("FAULTS_JSON " + json.dumps(summary, ensure_ascii=False))
    REPORT[:] = lines
    path = os.environ.get("FAULTS_REPORT")
    if path:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(report, f, ensure_ascii=False, indent=1)
