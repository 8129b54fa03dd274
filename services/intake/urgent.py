"""Detect an emergency in progress in a complaint text (violence, fire, a threat of
suicide or of an extreme act), so intake marks the case urgent and emits `case_urgent`.

The rules, and how they are applied, are in rules/urgent.yaml; a county edits that file,
not this one. Precision comes first: past events, negations, hypotheticals and hearsay
do not fire.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

RULES_PATH = Path(__file__).with_name("rules") / "urgent.yaml"
_SENTENCE_END = re.compile(r"[。！？!?；;…\n]+")
_CLAUSE_END = re.compile(r"[，,、：:（）()\s]+")


@dataclass(frozen=True)
class Category:
    name: str
    label: str
    mode: str                       # "threat" or "ongoing"
    trigger: re.Pattern
    immediate: re.Pattern | None
    exclusion: re.Pattern | None
    blocked_by: re.Pattern | None


@dataclass(frozen=True)
class Rules:
    categories: tuple[Category, ...]
    negation_window: int
    negation: re.Pattern
    past: re.Pattern
    not_here: re.Pattern
    completed: re.Pattern
    counterfactual: re.Pattern
    hypothetical: re.Pattern
    immediacy: re.Pattern

    def label(self, category: str) -> str:
        return next(c.label for c in self.categories if c.name == category)


def _alternation(terms=(), patterns=()) -> re.Pattern | None:
    # Longest first, so 喝了农药 wins over 喝药 and the reported term is the most specific.
    parts = [re.escape(t) for t in sorted(terms, key=len, reverse=True)] + list(patterns)
    return re.compile("|".join(f"(?:{p})" for p in parts)) if parts else None


@lru_cache(maxsize=None)
def load_rules(path: Path = RULES_PATH) -> Rules:
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    cues = raw["cues"]
    categories = tuple(
        Category(
            name=name,
            label=spec["label"],
            mode=spec["mode"],
            trigger=_alternation(spec.get("terms", []), spec.get("patterns", []) + spec.get("immediate_patterns", [])),
            immediate=_alternation(patterns=spec.get("immediate_patterns", ())),
            exclusion=_alternation(patterns=spec.get("exclusions", ())),
            blocked_by=_alternation(spec.get("blocked_by", ())),
        )
        for name, spec in raw["categories"].items()
    )
    for category in categories:
        if category.mode not in ("threat", "ongoing"):
            raise ValueError(f"{path}: category {category.name} has unknown mode {category.mode!r}")
    return Rules(
        categories=categories,
        negation_window=raw["negation_window"],
        negation=_alternation(cues["negation"]),
        past=_alternation(cues["past"], cues.get("past_patterns", ())),
        not_here=_alternation(cues["not_here"]),
        completed=_alternation(cues["completed"]),
        counterfactual=_alternation(cues["counterfactual"]),
        hypothetical=_alternation(cues["hypothetical"]),
        immediacy=_alternation(cues["immediacy"], cues.get("immediacy_patterns", ())),
    )


def detect_emergency(text: str | None, rules: Rules | None = None) -> list[str]:
    """Signals of an emergency in progress, as "<category>: <matched text>", in text order.

    An empty list means nothing urgent was found.
    """
    if not text:
        return []
    rules = rules or load_rules()
    signals: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        if not sentence.strip() or rules.not_here.search(sentence):
            continue
        for category in rules.categories:
            for match in category.trigger.finditer(sentence):
                if _fires(rules, category, sentence, match):
                    signal = f"{category.name}: {match.group()}"
                    if signal not in signals:
                        signals.append(signal)
    return signals


def _fires(rules: Rules, category: Category, sentence: str, match: re.Match) -> bool:
    start, end = match.span()
    if category.exclusion and any(
        e.start() < end and start < e.end() for e in category.exclusion.finditer(sentence)
    ):
        return False
    if category.blocked_by and category.blocked_by.search(sentence):
        return False
    clause_start = _clause_start(sentence, start)
    before = sentence[clause_start:start]
    if any(m.end() >= len(before) - rules.negation_window for m in rules.negation.finditer(before)):
        return False
    if rules.past.search(before) or sentence[end:end + 1] == "过":
        return False
    if rules.completed.search(sentence) or rules.counterfactual.search(sentence, 0, start):
        return False
    if category.mode == "threat":
        return True
    if rules.hypothetical.search(sentence, 0, start):
        return False
    return bool(
        (category.immediate and category.immediate.match(sentence, start))
        or rules.immediacy.search(sentence)
    )


def _clause_start(sentence: str, position: int) -> int:
    boundaries = [m.end() for m in _CLAUSE_END.finditer(sentence, 0, position)]
    return boundaries[-1] if boundaries else 0
