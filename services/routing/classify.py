"""Classify a citizen's complaint: dispute type, government category, severity and psych need.

Every piece of knowledge lives in YAML tables under ``rules/`` so a county can change it
without touching code (see ``rules/README.md``):

- ``scoring.yaml``        tier weights, title bonus, thresholds, negation, masks
- ``dispute_types.yaml``  words per dispute type, combinations, precedence between types
- ``gov_categories.yaml`` words per government category, combinations, prior from dispute type
- ``severity.yaml``       money and people parsing, group / repeat / extreme cues, psych cues

How a text is read: it is normalised (traditional to simplified Chinese, full-width to ASCII,
lower case), then a single Aho-Corasick pass finds every word of every table. A word inside a
longer listed word of the same table does not count on its own ("医疗事故" hides "事故"), a word
followed by a place word only says where something is ("医院西面的路"), and a few listed words are
ignored right after a negator ("没有打架"). Scores are summed per class; the best
class wins, ties going to the class listed first in the YAML. Every rule that fired is written to
``Classification.signals`` so a mediator can see why.
"""
from __future__ import annotations

import functools
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, NamedTuple

import ahocorasick
import opencc
import yaml

from services.routing.domain import DISPUTE_TYPES, GOV_CATEGORIES, Classification, Severity

RULES_DIR = Path(__file__).with_name("rules")
_DEFAULT_RULES = str(RULES_DIR.resolve())
OTHER = "其他"
TIERS = ("strong", "medium", "weak")
CUE_TIERS = {"strong": 2, "weak": 1}
SEVERITY_CUES = ("mass_risk", "repeat_complaint", "extreme_risk", "psych_needed")
# "不断上访", "不停地堵路": 不 starts these words without negating what follows
NOT_NEGATORS = ("不断", "不停", "不得不", "不止", "不少", "不仅", "不光", "不管", "不久", "不时")
CLAUSE_BREAKS = frozenset("，。,.!！?？;；：:\n、…~～ ")
_INVISIBLE = re.compile(r"[\u200b-\u200f\u2060\ufeff]")
_SPACE_BETWEEN_HAN = re.compile(r"(?<=[\u4e00-\u9fff])\s+(?=[\u4e00-\u9fff])")


# ---------------------------------------------------------------------------------------------
# Rules: loading and validation
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Combo:
    label: str
    weight: float
    groups: tuple[tuple[str, ...], ...]
    within: int | None          # all groups inside this many characters, or anywhere when None


@dataclass(frozen=True)
class Precedence:
    winner: str
    loser: str
    factor: float
    min_ratio: float
    cues: tuple[str, ...]
    unless: tuple[str, ...] = ()     # none of these may be present ("工程款": a contractor's debt, not wages)


@dataclass(frozen=True)
class WordTable:
    """Keywords of one dimension: word -> [(label, weight)], plus its combos and label order."""
    words: Mapping[str, tuple[tuple[str, float], ...]]
    combos: tuple[Combo, ...]
    labels: tuple[str, ...]          # YAML order: earlier wins a tie
    combo_terms: Mapping[str, tuple[tuple[int, int], ...]]   # word -> (combo index, group index)


@dataclass(frozen=True)
class CueTable:
    points: Mapping[str, int]
    threshold: int


@dataclass(frozen=True)
class Rules:
    scoring: Mapping
    dispute: WordTable
    gov: WordTable
    precedence: tuple[Precedence, ...]
    dispute_minimum: Mapping[str, float]     # a type scoring less than this is not chosen
    gov_priors: Mapping[str, Mapping[str, float]]
    cues: Mapping[str, CueTable]
    severity: Mapping
    masks: frozenset[str]
    negatable: frozenset[str]
    negators: tuple[str, ...]        # longest first
    negation_window: int
    locatives: tuple[str, ...]       # words after a noun that make it a place, not a topic (longest first)
    locative_length: int
    automaton: ahocorasick.Automaton


@functools.lru_cache(maxsize=1)
def _converter() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def normalize(text: str) -> str:
    """The form both rules and texts are compared in: simplified, half-width, lower case."""
    text = unicodedata.normalize("NFKC", text)
    text = _INVISIBLE.sub("", text)
    text = _SPACE_BETWEEN_HAN.sub("", text)
    return _converter().convert(text).lower()


def load_rules(path: str | Path | None = None, *, reload: bool = False) -> Rules:
    """Load and check the rule tables from a directory (default: the bundled ``rules/``).

    Cached per directory; ``reload=True`` reads the files again (after a county edited them).
    """
    directory = str(Path(path).resolve()) if path else _DEFAULT_RULES
    if reload:
        _load_rules.cache_clear()
    return _load_rules(directory)


@functools.lru_cache(maxsize=8)
def _load_rules(directory: str) -> Rules:
    folder = Path(directory)

    def read(name: str) -> dict:
        with open(folder / name, encoding="utf-8") as handle:
            return yaml.safe_load(handle) or {}

    scoring, dispute_doc, gov_doc, severity = (
        read("scoring.yaml"), read("dispute_types.yaml"), read("gov_categories.yaml"), read("severity.yaml"))
    tiers = scoring["tiers"]

    dispute = _word_table(dispute_doc["types"], dispute_doc.get("combos", []), tiers, DISPUTE_TYPES, "dispute type")
    gov = _word_table(gov_doc["categories"], gov_doc.get("combos", []), tiers, GOV_CATEGORIES, "gov category")
    precedence = tuple(
        Precedence(_known(rule["winner"], DISPUTE_TYPES, "precedence"),
                   _known(rule["loser"], DISPUTE_TYPES, "precedence"),
                   float(rule.get("factor", 0.3)), float(rule.get("min_ratio", 0.5)),
                   tuple(normalize(w) for w in rule["when_any"]),
                   tuple(normalize(w) for w in rule.get("unless_any") or []))
        for rule in dispute_doc.get("precedence", []))
    dispute_minimum = {_known(label, DISPUTE_TYPES, "min_score"): float(score)
                       for label, score in (dispute_doc.get("min_score") or {}).items()}
    priors = {
        _known(dispute_type, DISPUTE_TYPES, "from_dispute_type"):
            {_known(cat, GOV_CATEGORIES, "from_dispute_type"): float(w) for cat, w in (mapping or {}).items()}
        for dispute_type, mapping in gov_doc.get("from_dispute_type", {}).items()}
    cues = {name: CueTable(
        {normalize(word): CUE_TIERS[tier] for tier in CUE_TIERS for word in severity[name].get(tier) or []},
        int(severity[name]["threshold"])) for name in SEVERITY_CUES}
    _known(scoring["gov_default"], GOV_CATEGORIES, "gov_default")

    masks = frozenset(normalize(w) for w in scoring.get("masks", []))
    locatives = tuple(sorted({normalize(w) for w in scoring.get("places", [])}, key=len, reverse=True))
    negation = scoring["negation"]
    vocabulary = set(dispute.words) | set(gov.words) | masks
    vocabulary |= {w for table in (dispute, gov) for combo in table.combos for group in combo.groups for w in group}
    vocabulary |= {w for rule in precedence for w in rule.cues + rule.unless}
    vocabulary |= {w for table in cues.values() for w in table.points}
    automaton = ahocorasick.Automaton()
    for word in vocabulary:
        automaton.add_word(word, word)
    automaton.make_automaton()

    return Rules(
        scoring=scoring, dispute=dispute, gov=gov, precedence=precedence,
        dispute_minimum=dispute_minimum, gov_priors=priors, cues=cues,
        severity=severity, masks=masks, negatable=frozenset(normalize(w) for w in negation["words"]),
        negators=tuple(sorted((normalize(w) for w in negation["prefixes"]), key=len, reverse=True)),
        negation_window=int(negation["window"]), locatives=locatives,
        locative_length=max(map(len, locatives), default=0), automaton=automaton)


def _known(label: str, allowed: tuple[str, ...], where: str) -> str:
    if label not in allowed:
        raise ValueError(f"rules: unknown class {label!r} in {where}; allowed: {', '.join(allowed)}")
    return label


def _word_table(classes: Mapping, combos: list, tiers: Mapping, allowed: tuple[str, ...], what: str) -> WordTable:
    for label in classes:
        _known(label, allowed, what)
    missing = [label for label in allowed if label not in classes and label != OTHER]
    if missing:
        raise ValueError(f"rules: no entry for {what} {', '.join(missing)}")
    words: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for label, entry in classes.items():
        for tier, listed in (entry or {}).items():
            if tier not in TIERS:
                raise ValueError(f"rules: {what} {label}: unknown tier {tier!r}, use {', '.join(TIERS)}")
            for word in listed or []:
                key = normalize(str(word))
                if key and all(existing != label for existing, _ in words[key]):
                    words[key].append((label, float(tiers[tier])))
    parsed = tuple(Combo(_known(c["class"], allowed, "combos"), float(c["weight"]),
                         tuple(tuple(normalize(str(w)) for w in group) for group in c["all_of"]),
                         int(c["within"]) if c.get("within") else None)
                   for c in combos)
    combo_terms: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for combo_index, combo in enumerate(parsed):
        for group_index, group in enumerate(combo.groups):
            for word in group:
                combo_terms[word].append((combo_index, group_index))
    return WordTable(
        words={word: tuple(pairs) for word, pairs in words.items()},
        combos=parsed,
        labels=tuple(label for label in classes if label in allowed),
        combo_terms={word: tuple(places) for word, places in combo_terms.items()})


def warm_up(rules: Rules | None = None) -> None:
    """Load the rules and the converter now, so the first real request is not the slow one."""
    classify("邻居家的狗咬伤了孩子，赔了3万元", rules=rules or load_rules())


# ---------------------------------------------------------------------------------------------
# Matching
# ---------------------------------------------------------------------------------------------

class Hit(NamedTuple):
    word: str
    start: int
    end: int          # exclusive
    in_title: bool


def _find_hits(rules: Rules, text: str, title_length: int) -> list[Hit]:
    hits = []
    for end, word in rules.automaton.iter(text):
        start = end + 1 - len(word)
        # "110" inside "1109房", "12345" inside a phone number: digits run on, so it is another number
        if (word[0].isdigit() and start > 0 and text[start - 1].isdigit()) or (
                word[-1].isdigit() and end + 1 < len(text) and text[end + 1].isdigit()):
            continue
        hits.append(Hit(word, start, end + 1, start < title_length))
    return hits


def _drop_places(rules: Rules, hits: list[Hit], text: str, signals: list[str]) -> list[Hit]:
    """Remove hits that only say where something is: "医院西面的双塘路", "小学门口", "卫生局宿舍"."""
    if not rules.locatives:
        return hits
    kept, dropped = [], []
    for hit in hits:
        after = text[hit.end:hit.end + rules.locative_length]
        locative = next((w for w in rules.locatives if after.startswith(w)), None)
        if locative and hit.word not in rules.masks:
            dropped.append(f"{hit.word}({locative})")
        else:
            kept.append(hit)
    if dropped:
        signals.append(f"places, not topics: {', '.join(dict.fromkeys(dropped))}")
    return kept


def _outermost(hits: list[Hit]) -> list[Hit]:
    """Drop each hit lying inside a longer hit of the same list."""
    kept, reach = [], -1
    for hit in sorted(hits, key=lambda h: (h.start, -h.end)):
        if hit.end <= reach and not (kept and kept[-1].start == hit.start and kept[-1].end == hit.end):
            continue
        kept.append(hit)
        reach = max(reach, hit.end)
    return kept


def _negator(text: str, start: int, negators: tuple[str, ...], window: int) -> str | None:
    """The negator right before ``start`` in the same clause (at most ``window`` characters between)."""
    before = text[max(0, start - window - 4):start]
    for index in range(len(before) - 1, -1, -1):
        if before[index] in CLAUSE_BREAKS:
            before = before[index + 1:]
            break
    for negator in negators:
        at = before.rfind(negator)
        if at >= 0 and len(before) - (at + len(negator)) <= window and not before.startswith(NOT_NEGATORS, at):
            return negator
    return None


def _drop_negated(rules: Rules, hits: list[Hit], text: str, signals: list[str]) -> list[Hit]:
    """Remove hits of negatable words that follow a negator ("没有打架")."""
    kept = []
    for hit in hits:
        negator = hit.word in rules.negatable and _negator(text, hit.start, rules.negators, rules.negation_window)
        if negator:
            signals.append(f"negated {hit.word} (after {negator})")
        else:
            kept.append(hit)
    return kept


def _counted_hits(rules: Rules, hits: list[Hit], vocabulary: Mapping, *, masked: bool) -> list[Hit]:
    """Hits of one table that count: outermost within the table (and its masks), masks removed."""
    own = [h for h in hits if h.word in vocabulary or (masked and h.word in rules.masks)]
    return [hit for hit in _outermost(own) if hit.word in vocabulary]


# ---------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------

def _combo_match(combo: Combo, tagged: list[tuple[int, int, str]]) -> list[str] | None:
    """One word per group, all inside ``combo.within`` characters when it is set; None if impossible.

    ``tagged`` holds (start, group index, word) for the hits of this combo's words, in text order.
    """
    if combo.within is None:
        found = {index: word for _, index, word in reversed(tagged)}
        return [found[i] for i in range(len(combo.groups))] if len(found) == len(combo.groups) else None
    latest: dict[int, tuple[int, str]] = {}
    for start, index, word in tagged:               # sliding window: the latest hit of every group
        latest[index] = (start, word)
        if len(latest) == len(combo.groups) and start - min(s for s, _ in latest.values()) <= combo.within:
            return [latest[i][1] for i in range(len(combo.groups))]
    return None


def _score(rules: Rules, table: WordTable, hits: list[Hit], all_hits: list[Hit], dimension: str,
           signals: list[str]) -> dict[str, float]:
    scoring = rules.scoring
    by_word: dict[str, list[Hit]] = defaultdict(list)
    for hit in hits:
        by_word[hit.word].append(hit)
    scores: dict[str, float] = defaultdict(float)
    evidence: dict[str, list[str]] = defaultdict(list)
    for word in sorted(by_word, key=lambda w: by_word[w][0].start):
        occurrences = by_word[word]
        count = min(len(occurrences), int(scoring["max_occurrences"]))
        in_title = any(h.in_title for h in occurrences)
        # the title bonus is paid once per word, not once per repetition in the body
        factor = 1 + float(scoring["repeat_bonus"]) * (count - 1) + (
            float(scoring["title_multiplier"]) - 1 if in_title else 0.0)
        label_word = word + (f"×{len(occurrences)}" if len(occurrences) > 1 else "") + ("[标题]" if in_title else "")
        for label, weight in table.words[word]:
            scores[label] += weight * factor
            evidence[label].append(label_word)
    for label in table.labels:
        if label in evidence:
            signals.append(f"{dimension} {label} {scores[label]:.1f}: {', '.join(evidence[label])}")
    tagged: dict[int, list[tuple[int, int, str]]] = defaultdict(list)
    for hit in all_hits:
        for combo_index, group_index in table.combo_terms.get(hit.word, ()):
            tagged[combo_index].append((hit.start, group_index, hit.word))
    for combo_index, combo in enumerate(table.combos):
        matched = _combo_match(combo, sorted(tagged[combo_index]))
        if matched:
            scores[combo.label] += combo.weight
            signals.append(f"{dimension} {combo.label} +{combo.weight:g}: combo {'+'.join(matched)}")
    return scores


def _best(scores: Mapping[str, float], order: tuple[str, ...]) -> tuple[str | None, float, float]:
    ranked = sorted((label for label in order if scores.get(label, 0) > 0),
                    key=lambda label: (-scores[label], order.index(label)))
    if not ranked:
        return None, 0.0, 0.0
    runner_up = scores[ranked[1]] if len(ranked) > 1 else 0.0
    return ranked[0], scores[ranked[0]], runner_up


def _confidence(best: float, runner_up: float, scale: float) -> float:
    if best <= 0:
        return 0.0
    return round((best - runner_up) / best * best / (best + scale), 3)


def _dispute_type(rules: Rules, hits: list[Hit], signals: list[str]) -> tuple[str, float]:
    present = {hit.word for hit in hits}
    counted = _counted_hits(rules, hits, rules.dispute.words, masked=True)
    scores = _score(rules, rules.dispute, counted, hits, "dispute", signals)
    for rule in rules.precedence:
        cue = next((w for w in rule.cues if w in present), None)
        if cue and any(w in present for w in rule.unless):
            continue
        winner, loser = scores.get(rule.winner, 0), scores.get(rule.loser, 0)
        if cue and winner > 0 and loser > 0 and winner >= rule.min_ratio * loser:
            scores[rule.loser] *= rule.factor
            signals.append(f"precedence {rule.winner} over {rule.loser} ({cue}): "
                           f"{rule.loser} ×{rule.factor:g} = {scores[rule.loser]:.1f}")
    for label, floor in rules.dispute_minimum.items():
        if 0 < scores.get(label, 0) < floor:
            signals.append(f"dispute {label} {scores[label]:.1f} below its minimum {floor:g}: not chosen")
            scores[label] = 0.0
    label, best, runner_up = _best(scores, rules.dispute.labels)
    minimum = float(rules.scoring["dispute_min_score"])
    scale = float(rules.scoring["confidence_scale"])
    if label is None or best < minimum:
        signals.append(f"dispute {OTHER}: best score {best:.1f} below {minimum:g}")
        return OTHER, _confidence(minimum, best, scale)     # the threshold stands in for 其他's score
    return label, _confidence(best, runner_up, scale)


def _gov_category(rules: Rules, hits: list[Hit], dispute_type: str, dispute_confidence: float,
                  signals: list[str]) -> tuple[str, float]:
    counted = _counted_hits(rules, hits, rules.gov.words, masked=True)
    scores = _score(rules, rules.gov, counted, hits, "gov", signals)
    # a clear dispute type pulls harder than a doubtful one
    for category, weight in rules.gov_priors.get(dispute_type, {}).items():
        prior = round(weight * (0.5 + dispute_confidence), 2)
        scores[category] += prior
        signals.append(f"gov {category} +{prior:g}: prior from {dispute_type}")
    label, best, runner_up = _best(scores, rules.gov.labels)
    if label is None:
        label = rules.scoring["gov_default"]
        signals.append(f"gov {label}: default, nothing matched")
        return label, 0.0
    return label, _confidence(best, runner_up, float(rules.scoring["confidence_scale"]))


# ---------------------------------------------------------------------------------------------
# Severity: money, people, cues
# ---------------------------------------------------------------------------------------------

_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
              "八": 8, "九": 9}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
_CN_SECTIONS = {"万": 10_000, "亿": 100_000_000}
_NUM_CHARS = "零〇一二两三四五六七八九十百千万亿几"
NUMBER = rf"(?:\d+(?:\.\d+)?|[零〇一二两三四五六七八九十几])[\d.{_NUM_CHARS}]*"
# "二十多万" -> "二十万", "二百多购房户" -> "二百购房户", "十来个人" -> "十个人": approximations count at their floor
_APPROX = re.compile(rf"(?<=[\d{_NUM_CHARS}])(?:[多余](?=[\u4e00-\u9fff\d])|来(?=[\d{_NUM_CHARS}块元圆个名位户人口]))")
_ROUGH = (("成百上千", "一百"), ("成千上万", "一千"), ("上千上万", "一千"), ("上百", "一百"), ("上千", "一千"),
          ("上万", "一万"), ("好几", "几"), ("数十", "几十"), ("数百", "几百"), ("数千", "几千"), ("数万", "几万"))
_DIGIT_RUN = re.compile(r"\d+(?:\.\d+)?")


def parse_number(token: str, vague_digit: int = 3) -> float | None:
    """Arabic or Chinese numerals: 8000, 1.5万, 二十多万 (after removing 多), 十八万八, 五六 (-> 5)."""
    total = section = 0.0
    number: float | None = None
    last_unit, saw_zero, after_digit, index = 1, False, False, 0
    while index < len(token):
        run = _DIGIT_RUN.match(token, index)
        if run:
            try:
                number = float(run.group())
            except ValueError:
                return None
            index, after_digit = run.end(), True
            continue
        char = token[index]
        if char in _CN_DIGITS or char == "几":
            if char in "零〇":
                saw_zero, after_digit = True, False
            elif not (after_digit and number is not None):     # "五六个": a range, keep its lower end
                number, after_digit = float(vague_digit if char == "几" else _CN_DIGITS[char]), True
        elif char in _CN_UNITS:
            section += (1 if number is None else number) * _CN_UNITS[char]
            number, last_unit, after_digit = None, _CN_UNITS[char], False
        elif char in _CN_SECTIONS:
            unit = _CN_SECTIONS[char]
            section += number or 0
            total = (total + section) * unit if unit > 10_000 else total + section * unit
            section, number, last_unit, after_digit = 0.0, None, unit, False
        elif char != ".":
            return None
        index += 1
    if number is not None:
        # "十八万八", "一千二": a lone digit after a unit means one tenth of that unit
        section += number * last_unit / 10 if last_unit > 1 and not saw_zero and number < 10 else number
    return total + section


def _numeric_text(text: str) -> str:
    for rough, exact in _ROUGH:
        text = text.replace(rough, exact)
    return _APPROX.sub("", re.sub(r"(?<=\d),(?=\d{3})", "", text))


def _alternation(words: tuple[str, ...]) -> str:
    return "|".join(sorted(map(re.escape, words), key=len, reverse=True))


@functools.lru_cache(maxsize=8)
def _amount_pattern(prefixes: tuple[str, ...], currency: tuple[str, ...]) -> re.Pattern:
    return re.compile(rf"(?:(?P<pre>{_alternation(prefixes)})\s*)?(?P<num>{NUMBER})"
                      rf"(?:\s*(?P<cur>{_alternation(currency)}))?")


@functools.lru_cache(maxsize=8)
def _people_pattern(classifiers: tuple[str, ...], nouns: tuple[str, ...]) -> re.Pattern:
    # 人民币, 人次, 人均, 人口, 份 follow a number without naming people
    return re.compile(rf"(?P<num>{NUMBER})(?:{_alternation(classifiers)})?(?P<noun>{_alternation(nouns)})"
                      rf"(?!民|次|均|口|份)")


def _amount(rules: Rules, text: str, signals: list[str]) -> int | None:
    config, vague = rules.severity["amount"], int(rules.severity["numbers"]["vague_digit"])
    not_money = tuple(config["not_money_after"])
    best, best_text = 0.0, ""
    for match in _amount_pattern(tuple(config["currency_prefix"]), tuple(config["currency"])).finditer(text):
        token, currency, after = match["num"], match["cur"] or match["pre"], text[match.end():match.end() + 3]
        value = parse_number(token, vague)
        if value is None or value < float(config["min_yuan"]):
            continue
        if currency:
            if currency == "块" and after[:1] and "\u4e00" <= after[0] <= "\u9fff" and after[0] not in "钱的了多":
                continue                                            # 一块地, 两块砖
        elif any(unit in token for unit in _CN_SECTIONS):
            if after.startswith(not_money):
                continue
        elif value < 100 or after.startswith(not_money) or not any(
                word in text[max(0, match.start() - 6):match.start()] for word in config["money_context"]):
            continue
        if value > best:
            best, best_text = value, match.group()
    if not best:
        return None
    signals.append(f"amount {int(best)} yuan: {best_text}")
    return int(best)


def _people(rules: Rules, text: str, people_count: int | None, signals: list[str]) -> int | None:
    config, vague = rules.severity["people"], int(rules.severity["numbers"]["vague_digit"])
    best, best_text = 0, ""
    for match in _people_pattern(tuple(config["classifiers"]), tuple(config["nouns"])).finditer(text):
        if any(word in text[max(0, match.start() - 4):match.start()] for word in config["not_after_words"]):
            continue
        value = parse_number(match["num"], vague)
        if value and value > best:
            best, best_text = int(value), match.group()
    if best >= 2:
        signals.append(f"people {best}: {best_text}")
    if people_count and people_count > best:
        signals.append(f"people {people_count}: given by the submission")
        best = people_count
    return best if best >= 2 else None


def _crowd(rules: Rules, text: str, people_count: int | None) -> int:
    """The largest group the complainants say they are: "我们300多名业主", "几十户村民", or the form's count.

    A number of people in a text is often the size of an estate or a village ("小区2584户"), not the
    number of people complaining; only a number the writer claims as "we", or a complainant noun, counts.
    """
    config = rules.severity["mass_risk"].get("crowd")
    people = rules.severity["people"]
    best = people_count or 0
    for match in _people_pattern(tuple(people["classifiers"]), tuple(people["nouns"])).finditer(text):
        if any(word in text[max(0, match.start() - 4):match.start()] for word in people["not_after_words"]):
            continue
        if config and match["noun"] not in config["nouns"] and not text.startswith(
                tuple(config["nouns"]), match.end()) and not any(       # "几十户村民": 户, then who they are
                word in text[max(0, match.start() - int(config["window"])):match.start()] for word in config["after"]):
            continue
        value = parse_number(match["num"], int(rules.severity["numbers"]["vague_digit"]))
        if value and value > best:
            best = int(value)
    return best


def _cue_flag(rules: Rules, name: str, hits: list[Hit], signals: list[str],
              extra_points: int = 0, extra_reason: str = "") -> bool:
    table = rules.cues[name]
    counted = _counted_hits(rules, hits, table.points, masked=True)
    words = sorted({h.word for h in counted}, key=lambda w: min(h.start for h in counted if h.word == w))
    total = sum(table.points[w] for w in words) + extra_points
    reasons = words + ([extra_reason] if extra_reason else [])
    if total >= table.threshold:
        signals.append(f"{name}: {', '.join(reasons)}")
        return True
    if reasons:
        signals.append(f"{name} below threshold ({total}/{table.threshold}): {', '.join(reasons)}")
    return False


def _severity(rules: Rules, hits: list[Hit], text: str, channel: str | None, people_count: int | None,
              signals: list[str]) -> tuple[Severity, bool]:
    numeric = _numeric_text(text)
    amount = _amount(rules, numeric, signals)
    people = _people(rules, numeric, people_count, signals)
    mass_config = rules.severity["mass_risk"]
    channel_points = int((mass_config.get("channel_points") or {}).get(channel or "", 0))
    group = _crowd(rules, numeric, people_count) if people else 0
    crowd = group >= int(mass_config["people_threshold"])
    extra = channel_points + (int(mass_config["people_points"]) if crowd else 0)
    reason = ", ".join(filter(None, [f"channel {channel}" if channel_points else "",
                                     f"a group of {group}" if crowd else ""]))
    severity = Severity(
        people=people, amount_yuan=amount,
        mass_risk=_cue_flag(rules, "mass_risk", hits, signals, extra, reason),
        repeat_complaint=_cue_flag(rules, "repeat_complaint", hits, signals),
        extreme_risk=_cue_flag(rules, "extreme_risk", hits, signals))
    implied = [flag for flag in rules.severity["psych_needed"].get("implied_by", []) if getattr(severity, flag)]
    psych = _cue_flag(rules, "psych_needed", hits, signals,
                      rules.cues["psych_needed"].threshold if implied else 0, ", ".join(implied))
    return severity, psych


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------

def classify(text: str, *, title: str = "", channel: str | None = None, people_count: int | None = None,
             rules: Rules | str | Path | None = None) -> Classification:
    """Classify one submission. Pure and deterministic: same input, same rules, same answer.

    ``title`` weighs more than the body; ``channel`` (petition, hotline, ...) and ``people_count``
    (from the submission form) feed the severity signals.
    """
    if not isinstance(rules, Rules):
        rules = load_rules(rules)
    signals: list[str] = []
    limit, title_limit = int(rules.scoring["max_chars"]), int(rules.scoring["max_title_chars"])
    text, title = text or "", title or ""
    if len(text) > limit:
        signals.append(f"text truncated to {limit} of {len(text)} characters")
    title_n, body_n = normalize(title[:title_limit]), normalize(text[:limit])
    joined = f"{title_n}\n{body_n}" if title_n else body_n
    hits = _find_hits(rules, joined, len(title_n) if title_n else 0)
    hits = _drop_negated(rules, _drop_places(rules, hits, joined, signals), joined, signals)

    dispute_type, confidence = _dispute_type(rules, hits, signals)
    gov_category, gov_confidence = _gov_category(rules, hits, dispute_type, confidence, signals)
    severity, psych_needed = _severity(rules, hits, joined, channel, people_count, signals)
    return Classification(
        dispute_type=dispute_type, gov_category=gov_category, psych_needed=psych_needed,
        severity=severity, signals=tuple(signals), confidence=confidence, gov_confidence=gov_confidence)
