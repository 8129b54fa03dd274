"""Offering a case to counsellors, one at a time: consent, the next offer, expiry, unmatched.

The service keeps, per case, the party's consent and the offer history (one
`OfferRecord` per counsellor offered). Whenever something happens (the request, an
answer, an offer's timer) it calls

    candidates = match(profile, pool, now, load=..., exclude=tried_ids(history))
    step = next_step(candidates, history, now, urgent=..., consent=can_offer(...))

and acts on `step.action`:
- "offer": record an offer to `step.counsellor_id` expiring at `step.expires_at`,
  emit `counsellor_offered`, set a timer for the expiry;
- "wait": an offer is still open until `step.expires_at`; nothing to do;
- "assigned": someone accepted; emit `counsellor_assigned` (once);
- "await_consent": no offer may be made yet (`step.reason` says why);
- "unmatched": nobody is left; emit `psych_unmatched` with `step.reason`.
Before acting, record every id in `step.timed_out` as timed out.

Pure domain: times are aware datetimes passed in, so tests move a clock instead of sleeping.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Iterable, Mapping, Sequence

from services.psych.match import RULES_PATH, Candidate, load_rules_document

CONSENT_STATES = ("given", "pending", "not_asked", "refused", "withdrawn")
OFFER_STATUSES = ("pending", "accepted", "declined", "timed_out", "withdrawn")
CONSENT_REFUSALS = {
    "pending": "尚未取得当事人同意",
    "not_asked": "尚未征求当事人同意",
    "refused": "当事人已拒绝心理干预",
    "withdrawn": "当事人已撤回同意",
}


@dataclass(frozen=True)
class OfferRules:
    answer_within_urgent: timedelta
    answer_within_normal: timedelta
    first_offer_within_urgent: timedelta
    first_offer_within_normal: timedelta
    emergency_overrides: frozenset[str]

    @classmethod
    def from_document(cls, document: Mapping) -> "OfferRules":
        answer, first = document["offers"]["answer_within_minutes"], document["offers"]["first_offer_within_seconds"]
        overrides = frozenset(document["consent"]["emergency_overrides"])
        if not overrides <= set(CONSENT_STATES) - {"given"}:
            raise ValueError(f"consent.emergency_overrides must be among {CONSENT_STATES[1:]}")
        return cls(
            answer_within_urgent=timedelta(minutes=answer["urgent"]),
            answer_within_normal=timedelta(minutes=answer["normal"]),
            first_offer_within_urgent=timedelta(seconds=first["urgent"]),
            first_offer_within_normal=timedelta(seconds=first["normal"]),
            emergency_overrides=overrides,
        )


def default_offer_rules() -> OfferRules:
    return _offer_rules(str(RULES_PATH))


@lru_cache(maxsize=8)
def _offer_rules(path: str) -> OfferRules:
    return OfferRules.from_document(load_rules_document(path))


# --- consent ------------------------------------------------------------------

@dataclass(frozen=True)
class ConsentCheck:
    """Whether the case may be offered, on what basis, and the text to record in the audit."""
    allowed: bool
    basis: str | None      # "consent" | "emergency" | None
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


def can_offer(consent_state: str, urgent: bool, emergency_reason: str | None = None, *,
              rules: OfferRules | None = None) -> ConsentCheck:
    """Recorded consent, or an emergency (urgent case + a recorded reason) that overrides it."""
    if consent_state not in CONSENT_STATES:
        raise ValueError(f"consent_state must be one of {CONSENT_STATES}")
    if consent_state == "given":
        return ConsentCheck(True, "consent", "当事人已同意")
    rules = rules or default_offer_rules()
    reason = (emergency_reason or "").strip()
    if urgent and reason and consent_state in rules.emergency_overrides:
        return ConsentCheck(True, "emergency", f"紧急情况（{CONSENT_REFUSALS[consent_state]}）：{reason}")
    if urgent and consent_state in rules.emergency_overrides:
        return ConsentCheck(False, None, f"{CONSENT_REFUSALS[consent_state]}；紧急情况须先记录理由")
    return ConsentCheck(False, None, CONSENT_REFUSALS[consent_state])


# --- timing -------------------------------------------------------------------

def offer_expiry(offered_at: datetime, urgent: bool, rules: OfferRules | None = None) -> datetime:
    """When an unanswered offer times out and the next candidate is offered."""
    rules = rules or default_offer_rules()
    return offered_at + (rules.answer_within_urgent if urgent else rules.answer_within_normal)


def offer_deadline(request_at: datetime, urgent: bool, rules: OfferRules | None = None) -> datetime:
    """The latest time the first offer may go out: one minute after an urgent request by default."""
    rules = rules or default_offer_rules()
    return request_at + (rules.first_offer_within_urgent if urgent else rules.first_offer_within_normal)


def first_offer_late(request_at: datetime, urgent: bool, first_offer_at: datetime | None, now: datetime,
                     rules: OfferRules | None = None) -> bool:
    """True when the first offer missed its deadline (or is still missing and the deadline passed)."""
    deadline = offer_deadline(request_at, urgent, rules)
    return (first_offer_at or now) > deadline


# --- offers -------------------------------------------------------------------

class OfferClosed(ValueError):
    """An answer to an offer that is no longer open (answered, expired or withdrawn)."""


@dataclass(frozen=True)
class OfferRecord:
    counsellor_id: str
    offered_at: datetime
    expires_at: datetime
    status: str = "pending"
    answered_at: datetime | None = None

    def __post_init__(self):
        if self.status not in OFFER_STATUSES:
            raise ValueError(f"status must be one of {OFFER_STATUSES}")

    def is_open(self, now: datetime) -> bool:
        return self.status == "pending" and now < self.expires_at


def record_answer(offer: OfferRecord, accepted: bool, now: datetime) -> OfferRecord:
    """The counsellor's accept or decline; only an open offer can be answered."""
    if not offer.is_open(now):
        state = "expired" if offer.status == "pending" else offer.status
        raise OfferClosed(f"offer to {offer.counsellor_id} is {state}")
    return replace(offer, status="accepted" if accepted else "declined", answered_at=now)


def tried_ids(history: Iterable[OfferRecord]) -> frozenset[str]:
    """Everyone already offered this case; pass it to match(exclude=...)."""
    return frozenset(offer.counsellor_id for offer in history)


@dataclass(frozen=True)
class Step:
    action: str                            # offer | wait | assigned | await_consent | unmatched
    counsellor_id: str | None = None
    offered_at: datetime | None = None
    expires_at: datetime | None = None
    reason: str | None = None              # for await_consent and unmatched; the consent basis for offer
    candidate: Candidate | None = None     # for offer: its score and reasons go into counsellor_offered
    timed_out: tuple[str, ...] = ()        # open offers that expired: record them as timed_out


def next_step(candidates: Sequence[Candidate], history: Sequence[OfferRecord], now: datetime, *, urgent: bool,
              consent: ConsentCheck, no_match_reason: str | None = None,
              rules: OfferRules | None = None) -> Step:
    """What to do now for one case, given its ranked candidates and its offer history.

    `no_match_reason` (e.g. match.explain_no_match) explains an empty candidate list.
    """
    accepted = [o for o in history if o.status == "accepted"]
    if accepted:
        return Step("assigned", counsellor_id=accepted[0].counsellor_id)
    open_offers = [o for o in history if o.is_open(now)]
    if open_offers:
        return Step("wait", counsellor_id=open_offers[0].counsellor_id, expires_at=open_offers[0].expires_at)
    timed_out = tuple(o.counsellor_id for o in history if o.status == "pending")
    if not consent:
        return Step("await_consent", reason=consent.reason, timed_out=timed_out)
    tried = tried_ids(history)
    for candidate in candidates:
        if candidate.counsellor_id not in tried:
            return Step("offer", counsellor_id=candidate.counsellor_id, offered_at=now,
                        expires_at=offer_expiry(now, urgent, rules), reason=consent.reason,
                        candidate=candidate, timed_out=timed_out)
    return Step("unmatched", reason=_unmatched_reason(history, no_match_reason), timed_out=timed_out)


def _unmatched_reason(history: Sequence[OfferRecord], no_match_reason: str | None) -> str:
    if not history:
        return no_match_reason or "没有符合条件的心理咨询师"
    declined = sum(o.status == "declined" for o in history)
    unanswered = sum(o.status in ("pending", "timed_out") for o in history)
    withdrawn = sum(o.status == "withdrawn" for o in history)
    details = "、".join(f"{label} {n} 人" for label, n in
                        (("拒绝", declined), ("超时未答复", unanswered), ("撤回", withdrawn)) if n)
    return f"已依次邀请 {len(history)} 名心理咨询师（{details}）；{no_match_reason or '没有其他符合条件的人选'}"
