"""The event catalogue of DESIGN §2: every event, its one producer, its consumers.

The broker topology is derived from this table (services/common/topology.py), so an
event can only be published once every consumer queue listed here is declared.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from services.contracts import intake, mediation, notify, psych, routing


@dataclass(frozen=True)
class EventSpec:
    name: str
    producer: str
    schema: type
    consumers: tuple[str, ...]
    version: int = 1
    upcasters: dict[int, Callable[[dict], dict]] = field(default_factory=dict)


CATALOGUE = (
    EventSpec("case_received", "intake", intake.CaseReceived, ("routing", "mediation", "notify")),
    EventSpec("case_merged", "intake", intake.CaseMerged, ("mediation", "notify")),
    EventSpec("case_unmerged", "intake", intake.CaseUnmerged, ("mediation",)),
    EventSpec("case_urgent", "intake", intake.CaseUrgent, ("mediation", "notify", "psych")),
    EventSpec("directory_updated", "routing", routing.DirectoryUpdated, ("intake", "notify")),
    EventSpec("case_routed", "routing", routing.CaseRouted, ("mediation",)),
    EventSpec("case_assigned", "mediation", mediation.CaseAssigned, ("notify",)),
    EventSpec("case_accepted", "mediation", mediation.CaseAccepted, ("notify",)),
    EventSpec("assignment_returned", "mediation", mediation.AssignmentReturned, ("routing",)),
    EventSpec("escalation_requested", "mediation", mediation.EscalationRequested, ("routing",)),
    EventSpec("reminder_due", "mediation", mediation.ReminderDue, ("notify",)),
    EventSpec("case_overdue", "mediation", mediation.CaseOverdue, ("notify",)),
    EventSpec("supervision_opened", "mediation", mediation.SupervisionOpened, ("notify",)),
    EventSpec("accountability_recorded", "mediation", mediation.AccountabilityRecorded, ("notify",)),
    EventSpec("case_resolved", "mediation", mediation.CaseResolved, ("notify", "intake", "routing")),
    EventSpec("evaluation_requested", "mediation", mediation.EvaluationRequested, ("notify",)),
    EventSpec("case_evaluated", "mediation", mediation.CaseEvaluated, ("notify",)),
    EventSpec("case_closed", "mediation", mediation.CaseClosed, ("notify", "intake", "routing")),
    EventSpec("extension_requested", "mediation", mediation.ExtensionRequested, ("notify",)),
    EventSpec("extension_decided", "mediation", mediation.ExtensionDecided, ("notify",)),
    EventSpec("psych_requested", "mediation", mediation.PsychRequested, ("psych",)),
    EventSpec("counsellor_offered", "psych", psych.CounsellorOffered, ("notify", "mediation")),
    EventSpec("counsellor_assigned", "psych", psych.CounsellorAssigned, ("notify", "mediation")),
    EventSpec("psych_unmatched", "psych", psych.PsychUnmatched, ("notify", "mediation")),
    EventSpec("psych_session_recorded", "psych", psych.PsychSessionRecorded, ("mediation",)),
    EventSpec("notification_sent", "notify", notify.NotificationOutcome, ("mediation",)),
    EventSpec("notification_failed", "notify", notify.NotificationOutcome, ("mediation",)),
)

EVENTS = {s.name: s for s in CATALOGUE}


def spec(event_type: str) -> EventSpec:
    return EVENTS[event_type]


def produced_by(service: str) -> list[EventSpec]:
    return [s for s in CATALOGUE if s.producer == service]


def consumed_by(service: str) -> list[EventSpec]:
    return [s for s in CATALOGUE if service in s.consumers]
