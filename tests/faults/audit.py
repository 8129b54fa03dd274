"""Counting what happened, from each service's own database, the notify sinks and the broker.

Nothing here trusts the services' own view: every accepted submission (an answer a client
received) is followed through intake, routing, mediation and notify by querying their tables.

- lost: an accepted submission with no source in intake, a case never routed or never assigned,
  an event in a producer's outbox that a consumer's inbox never recorded, a delivery not sent,
  a sent SMS missing from the SMS sink, a dead-lettered message, an AMQP submission the broker
  confirmed but never answered;
- duplicated effects: a case routed twice, a timeline entry written twice for one event, two
  deliveries for one (event, recipient, channel) — i.e. the same case event emitted twice under two
  ids — a second once-per-case event in an outbox, an answer that names another case for the same
  reference.
"""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

from sqlalchemy import create_engine, text

from services.contracts.catalogue import CATALOGUE

# the events a case has once at most in this stream (no staff act on the cases meanwhile)
ONCE_PER_CASE = {"intake": ("case_received",), "routing": ("case_routed",), "mediation": ("case_assigned",)}
# where the automatic flow leaves a case: assigned to a mediator, or resolved on site by a grid worker
END_STATES = ("assigned", "resolved_on_site")
IN_FLIGHT_EXCLUDED = ("ingress.faultsrc.results",)


def engine(url: str):
    return create_engine(url.replace("postgresql://", "postgresql+psycopg2://"), pool_size=2, max_overflow=2,
                         pool_pre_ping=True)


class Auditor:
    def __init__(self, db_urls: dict[str, str]):
        self.engines = {service: engine(url) for service, url in db_urls.items()}

    def rows(self, service: str, sql: str, **params):
        with self.engines[service].connect() as conn:
            return conn.execute(text(sql), params).all()

    def scalar(self, service: str, sql: str, **params):
        with self.engines[service].connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def dispose(self):
        for e in self.engines.values():
            e.dispose()

    # -- live figures while the stream runs ------------------------------------------------------
    def outbox_pending(self) -> dict[str, int]:
        return {s: self.scalar(s, "SELECT count(*) FROM outbox WHERE published_at IS NULL") for s in self.engines}

    def progress(self) -> dict[str, int]:
        return {
            "intake_cases": self.scalar("intake", "SELECT count(*) FROM sources"),
            "routing_decisions": self.scalar("routing", "SELECT count(*) FROM routing_decisions"),
            "mediation_assigned": self.scalar("mediation", "SELECT count(*) FROM timeline WHERE event = 'case_routed'"),
            "notify_sent": self.scalar("notify", "SELECT count(*) FROM deliveries WHERE status = 'sent'"),
        }

    def not_yet_assigned(self, case_nos: list[str]) -> int:
        if not case_nos:
            return 0
        done = self.scalar("mediation", "SELECT count(*) FROM cases WHERE case_no = ANY(:c) AND status <> 'received'",
                           c=case_nos)
        return len(case_nos) - done

    def notify_unsettled(self) -> int:
        return self.scalar("notify", "SELECT count(*) FROM deliveries WHERE status IN ('pending', 'sending')")

    # -- the final count ----------------------------------------------------------------------
    def audit(self, answers: list[dict], queues: dict[str, dict], sink_dir: Path) -> dict:
        lost: dict[str, list] = defaultdict(list)
        dup: dict[str, list] = defaultdict(list)
        accepted = [a for a in answers if a["kind"] == "accepted"]
        for a in answers:
            if a["kind"] == "rejected":
                lost["rejected_submission"].append(a)
            elif a["kind"] == "unanswered":
                lost["amqp_confirmed_never_answered"].append(a["message_id"])

        # one answer per reference, and every answer for a reference names the same case
        by_ref: dict[tuple, set] = defaultdict(set)
        for a in accepted:
            by_ref[(a["channel"], a["reference"])].add(a["case_no"])
        for ref, cases in by_ref.items():
            if len(cases) > 1:
                dup["one_reference_two_cases"].append([ref, sorted(cases)])

        # intake: each accepted reference is a source of the case it was answered with
        sources = {(ch, ref): case for ch, ref, case in self.rows("intake", "SELECT channel, reference, case_no FROM sources")}
        for ref, cases in by_ref.items():
            stored = sources.get(ref)
            if stored is None:
                lost["intake_source_missing"].append(ref)
            elif stored not in cases:
                dup["intake_source_in_another_case"].append([ref, stored, sorted(cases)])
        case_nos = sorted({sources[r] for r in by_ref if r in sources})
        intake_cases = {c for (c,) in self.rows("intake", "SELECT case_no FROM cases")}
        unanswered_cases = intake_cases - set(case_nos)  # created, yet no client heard of it
        if unanswered_cases:
            lost["intake_case_no_client_heard_of"].extend(sorted(unanswered_cases))

        # routing: each case routed exactly once
        decisions = Counter(c for (c,) in self.rows("routing", "SELECT case_no FROM routing_decisions"))
        for case_no in case_nos:
            n = decisions.get(case_no, 0)
            if n == 0:
                lost["not_routed"].append(case_no)
            elif n > 1:
                dup["routed_twice"].append([case_no, n])

        # mediation: each case in an end state, its timeline written once per event
        status = dict(self.rows("mediation", "SELECT case_no, status FROM cases"))
        for case_no in case_nos:
            if case_no not in status:
                lost["mediation_case_missing"].append(case_no)
            elif status[case_no] not in END_STATES:
                lost["not_assigned"].append([case_no, status[case_no]])
        # an emergency is raised once per urgent report: a repeat that merges raises it again
        urgent_reports = Counter(c for (c,) in self.rows("intake", "SELECT case_no FROM sources WHERE urgent"))
        urgent_events = Counter(c for (c,) in self.rows(
            "intake", "SELECT correlation_id FROM outbox WHERE routing_key = 'case_urgent'"))
        for case_no, n in urgent_events.items():
            if n > urgent_reports.get(case_no, 0):
                dup["case_urgent_beyond_its_reports"].append([case_no, n, urgent_reports.get(case_no, 0)])
        allowed = {"case_urgent": urgent_events}
        for case_no, event, n in self.rows(
                "mediation", "SELECT case_no, event, count(*) FROM timeline WHERE event IN "
                "('case_received', 'case_routed', 'case_urgent', 'resolve_on_site', 'assign') "
                "GROUP BY case_no, event HAVING count(*) > 1"):
            if n > allowed.get(event, {}).get(case_no, 1):
                dup["timeline_twice"].append([case_no, event, n])

        # outboxes: once-per-case events emitted once; every event reached every consumer's inbox
        consumers = {spec.name: spec.consumers for spec in CATALOGUE}
        inboxes = {s: {(c, m) for c, m in self.rows(s, "SELECT consumer, message_id FROM inbox")}
                   for s in self.engines if s != "gateway"}
        events_total = 0
        for producer in ("intake", "routing", "mediation", "psych", "notify"):
            rows = self.rows(producer, "SELECT message_id, routing_key, correlation_id, exchange, published_at "
                                       "FROM outbox")
            per_case = Counter()
            for message_id, event, case_no, exchange, published_at in rows:
                if exchange != f"{producer}.events":
                    continue  # results and feedback for outside systems
                events_total += 1
                if published_at is None:
                    lost["outbox_never_published"].append([producer, event, message_id])
                if event in ONCE_PER_CASE.get(producer, ()):
                    per_case[(event, case_no)] += 1
                for consumer in consumers.get(event, ()):
                    if (f"{consumer}.{event}", message_id) not in inboxes[consumer]:
                        lost["event_not_handled"].append([producer, event, consumer, case_no])
            for (event, case_no), n in per_case.items():
                if n > 1:
                    dup["event_emitted_twice"].append([producer, event, case_no, n])

        # notify: one delivery per (case event, recipient, channel), all sent; the SMS sink has each
        deliveries = self.rows("notify", "SELECT key, event_id, event_type, case_no, recipient_id, channel, status "
                                         "FROM deliveries")
        per_target = Counter((d.case_no, d.event_type, d.recipient_id, d.channel) for d in deliveries
                             if d.event_type in ("case_received", "case_assigned", "case_urgent"))
        for target, n in per_target.items():
            if n > allowed.get(target[1], {}).get(target[0], 1):
                dup["delivery_twice"].append([*target, n])
        for d in deliveries:
            if d.status not in ("sent", "skipped"):
                lost["delivery_not_sent"].append([d.key, d.status])
        assigned_notified = {d.case_no for d in deliveries if d.event_type == "case_assigned"}
        for case_no in case_nos:
            if status.get(case_no) == "assigned" and case_no not in assigned_notified:
                lost["assignment_not_notified"].append(case_no)
        sms_lines = _sink_lines(sink_dir / "sms.jsonl")
        sms_keys = Counter(line.get("idempotency_key") or line.get("key") for line in sms_lines)
        sms_sent = {d.key for d in deliveries if d.channel == "sms" and d.status == "sent"}
        for key in sms_sent - set(sms_keys):
            lost["sms_not_in_sink"].append(key)
        for key, n in sms_keys.items():
            if n > 1:  # the sink, like a real gateway, keeps one message per idempotency key
                dup["sms_twice_in_sink"].append([key, n])

        # the broker: nothing dead-lettered, nothing left behind
        for name, q in queues.items():
            if name in IN_FLIGHT_EXCLUDED:
                continue
            if q["ready"] or q["unacked"]:
                (lost["dead_lettered"] if name.endswith(".dead") else lost["left_in_queue"]).append(
                    [name, q["ready"] + q["unacked"]])

        completed = [c for c in case_nos if decisions.get(c) == 1 and status.get(c) in END_STATES
                     and (status.get(c) != "assigned" or c in assigned_notified)]
        return {
            "accepted": len(by_ref),
            "accepted_by_way": dict(Counter(a["way"] for a in _first_answers(accepted))),
            "accepted_by_channel": dict(Counter(a["channel"] for a in _first_answers(accepted))),
            "answers_merged": sum(1 for a in _first_answers(accepted) if a["status"] == "merged"),
            "cases": len(case_nos),
            "completed": len(completed),
            "end_states": dict(Counter(status.get(c, "missing") for c in case_nos)),
            "events_audited": events_total,
            "deliveries": len(deliveries),
            "deliveries_by_channel": dict(Counter(d.channel for d in deliveries)),
            "sms_sink_lines": len(sms_lines),
            "sms_unique_keys": len(sms_keys),
            "lost": sum(len(v) for v in lost.values()),
            "duplicated": sum(len(v) for v in dup.values()),
            "lost_detail": {k: v[:10] for k, v in lost.items()},
            "lost_counts": {k: len(v) for k, v in lost.items()},
            "duplicated_detail": {k: v[:10] for k, v in dup.items()},
            "duplicated_counts": {k: len(v) for k, v in dup.items()},
        }


def _first_answers(accepted: list[dict]) -> list[dict]:
    seen, out = set(), []
    for a in accepted:
        key = (a["channel"], a["reference"])
        if key not in seen:
            seen.add(key)
            out.append(a)
    return out


def _sink_lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    lines = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        if raw.strip():
            try:
                lines.append(json.loads(raw))
            except ValueError:
                lines.append({"key": f"unparsable:{raw[:40]}"})
    return lines
