"""Measure the classifier: per-class accuracy on labelled sets, real message-board texts, speed.

    python -m services.routing.evaluate [labelled.jsonl] [--data DIR] [--annotations FILE ...] [--weak] [--bench]

A labelled set is JSON lines ``{"text", "title"?, "dispute_type", "gov_category"}``; the default is
the project's fixture. For each of dispute_type and gov_category it prints every gold class with
its count, accuracy (recall) and the precision of that prediction, then the commonest confusions.

The real message-board data (``gov-messages``, public, never in the repository) is looked for in
``--data``, else ``<repo>/../shared/data/gov-messages``, else ``/work/shared/data/gov-messages``;
everything that needs it is skipped when it is absent. With it:

- ``--annotations FILE`` scores hand annotations of real messages. A row either carries its own
  ``text`` (and ``title``), or only an ``id`` naming a message of the data set (``m<id>`` in
  messages.csv, ``r<id>`` in messages_with_replies.csv), so an annotation file need not quote the
  messages. Besides ``dispute_type`` and ``gov_category`` a row may list ``dispute_type_ok`` /
  ``gov_category_ok``: every label the annotator would accept for a genuinely ambiguous message
  (a bus complaint is 交通运输, but the taxonomy files city buses under 城乡建设); "lenient" counts
  those, "acc" only the first label.
- ``--weak`` scores gov_category against the unit that signs the government's reply (教育局 →
  教育文体, 交警 → 政法 …): a large but noisy check (the unit that answers is not always the
  category, about one reply in five disagrees with a careful reader).
- the spread of predictions over the unlabelled messages, and the share raising each severity flag.

The last line is JSON with the overall figures. ``benchmark()`` returns latency figures for ``make bench``.
"""
from __future__ import annotations

import argparse
import csv
import json
import re
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from services.routing.classify import OTHER, Rules, classify, load_rules, warm_up
from services.routing.domain import DISPUTE_TYPES, GOV_CATEGORIES

REPO = Path(__file__).resolve().parents[2]
DEFAULT_FIXTURE = REPO / "tests" / "fixtures" / "routing" / "labelled_texts.jsonl"
DATA_DIRS = (REPO.parent / "shared" / "data" / "gov-messages", Path("/work/shared/data/gov-messages"))
GOV_MESSAGES = DATA_DIRS[0] / "messages.csv"
DIMENSIONS = {"dispute_type": DISPUTE_TYPES, "gov_category": GOV_CATEGORIES}

# The unit that answers a message, as named in the reply, and the category it stands for. The
# signature at the end of a reply is read first; otherwise the unit named most often, if one is.
REPLY_UNITS = (
    (r"纪委|监委|监察局|纪检", "纪检监察"),
    (r"交警|交通警察|车管所|车辆管理所", "政法"),
    (r"公安|派出所|治安|出入境|消防大队|司法局|法院|检察院", "政法"),
    (r"教育局|教育厅|教体局|教育体育局|文广|文体|体育局|文化局|文旅", "教育文体"),
    (r"人社|人力资源和社会保障|人力资源社会保障|劳动保障|劳动监察|社保|医保|医疗保险|公积金", "劳动和社会保障"),
    (r"交通运输局|交通局|公路局|运管|轨道交通|轨道集团|公交公司|公交集团|交通运输厅|邮政管理", "交通运输"),
    (r"环保局|环境保护局|生态环境|环境监察|环保分局", "环境保护"),
    (r"城管|城市管理|行政执法局|渣土|环卫|住建|住房和城乡建设|城乡建设|房产局|房产管理|住房保障|住保|规划局"
     r"|城乡规划|自然资源和规划|市政|建设局|供电|电力|自来水|水务|燃气|物管中心|房屋交易", "城乡建设"),
    (r"国土|不动产登记|土地储备|矿产", "国土资源"),
    (r"(?<!人)民政|退役军人|残联|扶贫开发领导小组", "民政"),
    (r"卫计|卫健|卫生局|卫生和计划生育|卫生健康|疾控|疾病预防|食品药品|药监", "卫生计生"),
    (r"商务局|工商|市场监督|市场监管|质监|质量技术监督|物价局|旅游局|文化旅游", "商贸旅游"),
    (r"财政|税务|国税|地税|金融办|发改|发展和改革|国资委|经信|工信", "经济管理"),
    (r"水利|农业局|农委|畜牧|林业|农业农村|农机", "农村农业"),
    (r"网宣|网络宣传|网信|统战|宗教", "党务政务"),
    (r"科技局|电信|移动公司|联通|通信管理", "科技与信息产业"),
)
_REPLY_UNITS = tuple((re.compile(pattern), category) for pattern, category in REPLY_UNITS)


def load_labelled(path: str | Path = DEFAULT_FIXTURE) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def find_data(explicit: str | Path | None = None) -> Path | None:
    """The gov-messages directory: the one given, else the first of DATA_DIRS holding messages.csv."""
    candidates = (Path(explicit),) if explicit else DATA_DIRS
    return next((path for path in candidates if (path / "messages.csv").is_file()), None)


def _read_csv(path: Path) -> list[dict]:
    csv.field_size_limit(10_000_000)
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def load_gov_messages(path: Path | None = None) -> list[dict] | None:
    """The real messages (title, text), or None when the data set is not found."""
    if path is None:
        directory = find_data()
        path = directory / "messages.csv" if directory else GOV_MESSAGES
    if not path.is_file():
        return None
    return [{"title": row.get("title") or "", "text": row.get("text") or ""} for row in _read_csv(path)]


def load_board(directory: Path) -> dict[str, dict]:
    """Every message of the data set by id: ``m<id>`` (messages.csv), ``r<id>`` (with the government's reply)."""
    board = {}
    for name, prefix in (("messages.csv", "m"), ("messages_with_replies.csv", "r")):
        if (directory / name).is_file():
            for row in _read_csv(directory / name):
                board[prefix + row["id"]] = {"title": (row.get("title") or "").strip(), "text": (row.get("text") or "").strip(),
                                             "reply": row.get("reply") or ""}
    return board


def load_annotations(path: str | Path, board: Mapping[str, dict] | None) -> tuple[list[dict], int]:
    """Annotated rows with their text (looked up by ``id`` when absent), and how many could not be found."""
    rows, missing = [], 0
    for row in load_labelled(path):
        if "text" not in row:
            message = (board or {}).get(row.get("id", ""))
            if message is None:
                missing += 1
                continue
            row = {**row, "title": message["title"], "text": message["text"]}
        rows.append(row)
    return rows, missing


def reply_unit_category(reply: str) -> str | None:
    """The category of the unit that answered, from the reply's signature or its most named unit."""
    if not reply or len(reply) < 30:
        return None
    signature = reply[-80:]
    for pattern, category in _REPLY_UNITS:
        if pattern.search(signature):
            return category
    named = Counter()
    for pattern, category in _REPLY_UNITS:
        named[category] += len(pattern.findall(reply))
    ranked = named.most_common(2)
    if ranked and ranked[0][1] and (len(ranked) == 1 or ranked[0][1] > ranked[1][1]):
        return ranked[0][0]
    return None


def weak_labelled(board: Mapping[str, dict]) -> list[dict]:
    """Replied messages with the gov_category of the unit that answered (see ``reply_unit_category``)."""
    rows, seen = [], set()
    for key, message in board.items():
        category = reply_unit_category(message["reply"])
        if category and message["text"] not in seen:
            seen.add(message["text"])
            rows.append({"id": key, "title": message["title"], "text": message["text"], "gov_category": category})
    return rows


def evaluate(rows: Sequence[dict], rules: Rules | None = None) -> dict:
    """Accuracy overall and per gold class, precision per predicted class, and confusions.

    Only the dimensions the rows are labelled with are scored. ``<dimension>_ok`` lists, when present,
    give the labels an annotator also accepts: "lenient" figures count them as right.
    """
    rules = rules or load_rules()
    predictions = [classify(row["text"], title=row.get("title", ""), rules=rules) for row in rows]
    report: dict = {"n": len(rows)}
    for dimension, labels in DIMENSIONS.items():
        if not rows or dimension not in rows[0]:
            continue
        gold = [row[dimension] for row in rows]
        accepted = [row.get(f"{dimension}_ok") or [row[dimension]] for row in rows]
        guessed = [getattr(p, dimension) for p in predictions]
        correct = Counter(g for g, p in zip(gold, guessed) if g == p)
        lenient = Counter(g for g, ok, p in zip(gold, accepted, guessed) if p in ok)
        gold_count, guessed_count = Counter(gold), Counter(guessed)
        per_class = {
            label: {"count": gold_count[label], "correct": correct[label],
                    "accuracy": round(correct[label] / gold_count[label], 3) if gold_count[label] else None,
                    "lenient": round(lenient[label] / gold_count[label], 3) if gold_count[label] else None,
                    "predicted": guessed_count[label],
                    "precision": round(correct[label] / guessed_count[label], 3) if guessed_count[label] else None}
            for label in labels if gold_count[label] or guessed_count[label]}
        recalls = [c["accuracy"] for c in per_class.values() if c["accuracy"] is not None]
        report[dimension] = {
            "accuracy": round(sum(correct.values()) / len(rows), 3) if rows else 0.0,
            "lenient_accuracy": round(sum(lenient.values()) / len(rows), 3) if rows else 0.0,
            "macro_accuracy": round(statistics.mean(recalls), 3) if recalls else 0.0,
            "per_class": per_class,
            "confusions": Counter((g, p) for g, ok, p in zip(gold, accepted, guessed) if p not in ok).most_common(12),
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
    lenient = result["lenient_accuracy"] != result["accuracy"] or any(
        c["lenient"] != c["accuracy"] for c in result["per_class"].values())
    print(f"\n{name}: accuracy {result['accuracy']:.3f}, macro {result['macro_accuracy']:.3f}"
          + (f", lenient {result['lenient_accuracy']:.3f}" if lenient else ""))
    print(f"  {'class':<10}{'n':>5}{'acc':>8}" + (f"{'lenient':>9}" if lenient else "") + f"{'pred':>6}{'prec':>8}")
    for label, figures in result["per_class"].items():
        accuracy = "-" if figures["accuracy"] is None else f"{figures['accuracy']:.3f}"
        loose = "-" if figures["lenient"] is None else f"{figures['lenient']:.3f}"
        precision = "-" if figures["precision"] is None else f"{figures['precision']:.3f}"
        print(f"  {label:<{10 - len(label)}}{figures['count']:>5}{accuracy:>8}" + (f"{loose:>9}" if lenient else "")
              + f"{figures['predicted']:>6}{precision:>8}")
    if result["confusions"]:
        print("  confusions (gold→predicted): " + ", ".join(f"{g}→{p} {n}" for (g, p), n in result["confusions"]))


def _print_report(heading: str, report: dict) -> dict:
    print(f"\n=== {heading} ({report['n']} texts)")
    for dimension in DIMENSIONS:
        if dimension in report:
            _print_dimension(dimension, report[dimension])
    return {"n": report["n"],
            **{f"{d}_accuracy": report[d]["accuracy"] for d in DIMENSIONS if d in report},
            **{f"{d}_lenient_accuracy": report[d]["lenient_accuracy"] for d in DIMENSIONS if d in report},
            **{f"{d}_macro_accuracy": report[d]["macro_accuracy"] for d in DIMENSIONS if d in report}}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.routing.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("path", nargs="?", default=str(DEFAULT_FIXTURE), help="labelled JSON lines")
    parser.add_argument("--data", help="the gov-messages directory (default: <repo>/../shared/data/gov-messages, "
                                       "then /work/shared/data/gov-messages)")
    parser.add_argument("--annotations", action="append", default=[], metavar="FILE",
                        help="hand annotations of real messages (JSON lines, by id or with text); repeatable")
    parser.add_argument("--weak", action="store_true", help="also score gov_category against the replying unit")
    parser.add_argument("--bench", action="store_true", help="also measure latency")
    args = parser.parse_args(argv)

    rules = load_rules()
    fixture = evaluate(load_labelled(args.path), rules)
    summary = _print_report(f"labelled set: {args.path}", fixture)
    directory = find_data(args.data)
    board = load_board(directory) if directory else None
    for path in args.annotations:
        rows, missing = load_annotations(path, board)
        if missing:
            print(f"\n{path}: {missing} annotated messages not found in {directory or 'the data set (absent)'}")
        if rows:
            summary[Path(path).name] = _print_report(f"hand annotations: {path}", evaluate(rows, rules))
    if board is None:
        print(f"\nreal messages: gov-messages not found ({args.data or ', '.join(map(str, DATA_DIRS))}), skipped")
    else:
        if args.weak:
            summary["weak_gov_category"] = _print_report(
                f"gov_category against the unit that replied (noisy), {directory}", evaluate(weak_labelled(board), rules))
        spread = prediction_spread(load_gov_messages(directory / "messages.csv"), rules)
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
