"""Where a text would go, and why: the output of `lanling classify` and `POST /api/v1/classify`.

Both run `explain()` below on the same code the service routes cases with (classify.classify,
then decide.decide_staffed), so they agree on the same inputs. The CLI reads the bundled
reference directory and needs no broker or database; the service uses the directory as stored
(the same data until staff edit the rosters).

Input: one JSON object with `text` (required), and optionally `title`, `channel` (hotline by
default), `township` (code, name or alias), `village` (code), `grid` (code), `people_count`,
`app_section`, `petition_form` and `id` (echoed back, to join outputs to inputs).
Output: `dispute_type`, `gov_category`, `unit` (the responsible unit: the lead of a 归口 or 联动
case, else the unit that owns the dispute type), `co_units`, `mechanism`, `level`,
`psych_needed`, `signals`, `confidence`, `gov_confidence`, `severity`, `major`, `reasons`.
Mediators' current load is not considered (it says where a text goes, not who is free now),
so the ranking lines of `reasons` assume everyone is free.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from functools import lru_cache
from typing import Iterable, Iterator

from services.routing.classify import classify
from services.routing.decide import (
    APP_SECTIONS, CHANNELS, CaseFacts, decide_staffed, default_rules, responsible_unit,
)
from services.routing.directory import Directory

DEFAULT_CHANNEL = "hotline"
TEXT_MAX = 20_000  # the intake channels' content limit
TITLE_MAX = 200
PETITION_FORMS = ("letter", "visit", "online")
STRINGS = {"title": TITLE_MAX, "township": 50, "village": 64, "grid": 64, "id": 64}


class ItemInvalid(ValueError):
    """An input that cannot be explained; `fields` maps each bad field to its reasons."""

    def __init__(self, fields: dict[str, list[str]]):
        self.fields = fields
        super().__init__("; ".join(f"{name}: {', '.join(reasons)}" for name, reasons in fields.items()))


def parse_item(item) -> tuple[CaseFacts, str, str]:
    """(facts, text, title) of one input, or ItemInvalid naming every bad field."""
    if not isinstance(item, dict):
        raise ItemInvalid({"_body": ["must be a JSON object with a `text` field"]})
    problems: dict[str, list[str]] = {}
    text = item.get("text")
    if not isinstance(text, str) or not text.strip():
        problems["text"] = ["required: a non-empty string"]
    elif len(text) > TEXT_MAX:
        problems["text"] = [f"must be at most {TEXT_MAX} characters"]
    for name, limit in STRINGS.items():
        value = item.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            problems[name] = [f"must be a string of at most {limit} characters"]
    choices = {"channel": CHANNELS, "app_section": APP_SECTIONS, "petition_form": PETITION_FORMS}
    for name, allowed in choices.items():
        value = item.get(name)
        if value is not None and value not in allowed:
            problems[name] = [f"must be one of: {', '.join(allowed)}"]
    people = item.get("people_count")
    if people is not None and (isinstance(people, bool) or not isinstance(people, int) or not 1 <= people <= 100_000):
        problems["people_count"] = ["must be a whole number between 1 and 100000"]
    if problems:
        raise ItemInvalid(problems)
    facts = CaseFacts(
        case_no=item.get("id") or "classify", channel=item.get("channel") or DEFAULT_CHANNEL,
        township=item.get("township"), village=item.get("village"), grid=item.get("grid"),
        people_count=people, app_section=item.get("app_section"), petition_form=item.get("petition_form"),
    )
    return facts, text, item.get("title") or ""


def explain(item: dict, directory: Directory) -> dict:
    """Classify one text and decide where it goes, with every signal and reason."""
    facts, text, title = parse_item(item)
    classification = classify(text, title=title, channel=facts.channel, people_count=facts.people_count)
    decision = decide_staffed(facts, classification, directory, load={})
    owner = responsible_unit(classification, directory)
    answer = {"id": item["id"]} if item.get("id") is not None else {}
    answer.update({
        "dispute_type": classification.dispute_type,
        "gov_category": classification.gov_category,
        "unit": decision.unit or (owner.code if owner else None),
        "co_units": list(decision.co_units),
        "mechanism": decision.mechanism,
        "level": decision.level,
        "township": decision.township,
        "psych_needed": decision.psych_needed,
        "signals": list(classification.signals),
        "confidence": classification.confidence,
        "gov_confidence": classification.gov_confidence,
        "severity": asdict(classification.severity),
        "major": decision.major,
        "reasons": list(decision.reasons),
    })
    return answer


@lru_cache(maxsize=1)
def reference_directory() -> Directory:
    return Directory.from_reference()


def classify_lines(lines: Iterable[str], directory: Directory | None = None) -> Iterator[dict]:
    """`lanling classify`: one answer (the CLI prints it as a JSON line) per non-blank JSON line
    in, in order.

    A line that cannot be read gives `{"line": n, "error": "invalid", "fields": {...}}` and the
    run goes on, so one bad record never hides the others."""
    directory = directory or reference_directory()
    default_rules()
    for number, line in enumerate(lines, 1):
        line = line.lstrip("\ufeff")  # a byte-order mark, as Windows editors write
        if not line.strip():
            continue
        try:
            answer = explain(json.loads(line), directory)
        except ValueError as exc:  # invalid JSON or ItemInvalid
            fields = getattr(exc, "fields", {"_body": ["not valid JSON"]})
            answer = {"line": number, "error": "invalid", "fields": fields}
        yield answer
