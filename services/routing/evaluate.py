"""Measure the classifier: per-class accuracy on a labelled set, prediction spread on real texts, speed.

    python -m services.routing.evaluate [labelled.jsonl] [--bench]

The labelled set is JSON lines ``{"text", "title"?, "dispute_type", "gov_category"}``; the default is
the project's fixture. For each of dispute_type and gov_category it prints every gold class with
its count, accuracy (recall) and the precision of that prediction, then the commonest confusions.
When the real message-board data sits at ``<repo>/../shared/data/gov-messages`` (it is never in
the repository), it also prints how predictions spread over those unlabelled messages and how
many fell to 其他: a quick way to spot blind spots. The last line is JSON with the overall figures.

``benchmark()`` returns latency figures for ``make bench``.
"""
from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

from services.routing.classify import OTHER, Rules, classify, load_rules, warm_up
from services.routing.domain import DISPUTE_TYPES, GOV_CATEGORIES

REPO = Path(__file__).resolve().parents[2]
DEFAULT_FIXTURE = REPO / "tests" / "fixtures" / "routing" / "labelled_texts.jsonl"
GOV_MESSAGES = REPO.parent / "shared" / "data" / "gov-messages" / "messages.csv"
DIMENSIONS = {"dispute_type": DISPUTE_TYPES, "gov_category": GOV_CATEGORIES}


def load_labelled(path: str | Path = DEFAULT_FIXTURE) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def load_gov_messages(path: Path = GOV_MESSAGES) -> list[dict] | None:
    """The real messages (title, text), or None when the data set is not beside the repository."""
    if not path.is_file():
        return None
    csv.field_size_limit(10_000_000)
    with open(path, encoding="utf-8", newline="") as handle:
        return [{"title": row.get("title") or "", "text": row.get("text") or ""} for row in csv.DictReader(handle)]


def evaluate(rows: Sequence[dict], rules: Rules | None = None) -> dict:
    """Accuracy overall and per gold class, precision per predicted class, and confusions."""
    rules = rules or load_rules()
    predictions = [classify(row["text"], title=row.get("title", ""), rules=rules) for row in rows]
    report: dict = {"n": len(rows)}
    for dimension, labels in DIMENSIONS.items():
        gold = [row[dimension] for row in rows]
        guessed = [getattr(p, dimension) for p in predictions]
        correct = Counter(g for g, p in zip(gold, guessed) if g == p)
        gold_count, guessed_count = Counter(gold), Counter(guessed)
        per_class = {
            label: {"count": gold_count[label], "correct": correct[label],
                    "accuracy": round(correct[label] / gold_count[label], 3) if gold_count[label] else None,
                    "predicted": guessed_count[label],
                    "precision": round(correct[label] / guessed_count[label], 3) if guessed_count[label] else None}
            for label in labels if gold_count[label] or guessed_count[label]}
        recalls = [c["accuracy"] for c in per_class.values() if c["accuracy"] is not None]
        report[dimension] = {
            "accuracy": round(sum(correct.values()) / len(rows), 3) if rows else 0.0,
            "macro_accuracy": round(statistics.mean(recalls), 3) if recalls else 0.0,
            "per_class": per_class,
            "confusions": Counter((g, p) for g, p in zip(gold, guessed) if g != p).most_common(12),
        }
    return report


def prediction_spread(messages: Iterable[dict], rules: Rules | None = None) -> dict:
    rules = rules or load_rules()
    predictions = [classify(m["text"], title=m["title"], rules=rules) for m in messages]
    return {
        "n": len(predictions),
        "dispute_type": Counter(p.dispute_type for p in predictions).most_common(),
        "gov_category": Counter(p.gov_category for p in predictions).most_common(),
        "dispute_other_share": round(sum(p.dispute_type == OTHER for p in predictions) / max(1, len(predictions)), 3),
        "mass_risk_share": round(sum(p.severity.mass_risk for p in predictions) / max(1, len(predictions)), 3),
        "extreme_risk_share": round(sum(p.severity.extreme_risk for p in predictions) / max(1, len(predictions)), 3),
        "psych_needed_share": round(sum(p.psych_needed for p in predictions) / max(1, len(predictions)), 3),
    }


def _latency(items: Sequence[dict], rules: Rules) -> dict:
    timings = []
    for item in items:
        started = time.perf_counter()
        classify(item["text"], title=item.get("title", ""), rules=rules)
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return {"n": len(timings), "mean_ms": round(statistics.mean(timings), 3),
            "p99_ms": round(timings[min(len(timings) - 1, int(len(timings) * 0.99))], 3),
            "max_ms": round(timings[-1], 3)}


def benchmark(texts: Sequence[str] | None = None) -> dict:
    """Latency per text, warm-up excluded: over ``texts`` if given, else the fixture and the real data."""
    started = time.perf_counter()
    rules = load_rules()
    warm_up(rules)
    figures: dict = {"warm_up_ms": round((time.perf_counter() - started) * 1000, 1)}
    if texts is not None:
        figures["texts"] = _latency([{"text": t} for t in texts], rules)
        return figures
    figures["fixture"] = _latency(load_labelled(), rules)
    messages = load_gov_messages()
    if messages is not None:
        figures["gov_messages"] = _latency(messages, rules)
    return figures


def _print_dimension(name: str, result: dict) -> None:
    print(f"\n{name}: accuracy {result['accuracy']:.3f}, macro {result['macro_accuracy']:.3f}")
    print(f"  {'class':<10}{'n':>5}{'acc':>8}{'pred':>6}{'prec':>8}")
    for label, figures in result["per_class"].items():
        accuracy = "-" if figures["accuracy"] is None else f"{figures['accuracy']:.3f}"
        precision = "-" if figures["precision"] is None else f"{figures['precision']:.3f}"
        print(f"  {label:<{10 - len(label)}}{figures['count']:>5}{accuracy:>8}{figures['predicted']:>6}{precision:>8}")
    if result["confusions"]:
        print("  confusions (gold→predicted): " + ", ".join(f"{g}→{p} {n}" for (g, p), n in result["confusions"]))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.routing.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("path", nargs="?", default=str(DEFAULT_FIXTURE), help="labelled JSON lines")
    parser.add_argument("--bench", action="store_true", help="also measure latency")
    args = parser.parse_args(argv)

    rules = load_rules()
    report = evaluate(load_labelled(args.path), rules)
    print(f"labelled set: {args.path} ({report['n']} texts)")
    for dimension in DIMENSIONS:
        _print_dimension(dimension, report[dimension])

    summary = {"n": report["n"],
               **{f"{d}_accuracy": report[d]["accuracy"] for d in DIMENSIONS},
               **{f"{d}_macro_accuracy": report[d]["macro_accuracy"] for d in DIMENSIONS}}
    messages = load_gov_messages()
    if messages is None:
        print(f"\nreal messages: {GOV_MESSAGES} absent, skipped")
    else:
        spread = prediction_spread(messages, rules)
        print(f"\nreal messages (unlabelled, {spread['n']}): 其他 share {spread['dispute_other_share']:.3f}, "
              f"mass_risk {spread['mass_risk_share']:.3f}, extreme_risk {spread['extreme_risk_share']:.3f}, "
              f"psych_needed {spread['psych_needed_share']:.3f}")
        for dimension in DIMENSIONS:
            print(f"  {dimension}: " + ", ".join(f"{label} {n}" for label, n in spread[dimension]))
        summary["gov_messages"] = {k: spread[k] for k in ("n", "dispute_other_share", "mass_risk_share")}
    if args.bench:
        summary["benchmark"] = benchmark()
    print(json.dumps(summary, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
