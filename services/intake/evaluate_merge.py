"""Measure 并单 quality and cost: `python -m services.intake.evaluate_merge`.

- precision, recall and F1 on tests/fixtures/intake/merge_pairs.jsonl (hand-labelled
  pairs; names and phones are fake), with every error and its reasons;
- blocking recall: how many same-dispute pairs share at least one merge key (a pair
  that shares none is never even compared by the service);
- when ../shared/data/gov-messages is present, a benchmark on real messages: how many
  messages by different users merge, a random sample of merges to judge by eye, the
  candidates per message and the cost per comparison. The data has no labels, so
  precision there is judged by reading `merges_to_review`;
- `benchmark()`: milliseconds per merge check given N candidates, for `make bench`
  (the lead times the database part separately).
"""
from __future__ import annotations

import csv
import json
import os
import random
import statistics
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

from services.common import config as common_config
from services.common import privacy
from services.intake import merge
from services.intake.merge import MergeConfig, MergeProfile, best_match, make_profile, merge_keys

FIXTURE = common_config.ROOT / "tests" / "fixtures" / "intake" / "merge_pairs.jsonl"
GOV_MESSAGES = common_config.ROOT.parent / "shared" / "data" / "gov-messages" / "messages.csv"


def load_pairs(path: Path = FIXTURE) -> list[dict]:
    with open(path, encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def profile_from_fixture(entry: dict) -> MergeProfile:
    return make_profile(
        entry["case_no"],
        entry["channel"],
        entry["text"],
        datetime.fromisoformat(entry["opened_at"]),
        title=entry.get("title"),
        township=entry.get("township"),
        village=entry.get("village"),
        village_name=entry.get("village"),  # the fixture's villages are names and codes at once
        grid=entry.get("grid"),
        address=entry.get("address"),
        phone=entry.get("phone"),
        id_number=entry.get("id_number"),
        name=entry.get("name"),
        parties=entry.get("parties") or (),
        status=entry.get("status", "received"),
    )


def evaluate(pairs: list[dict], config: MergeConfig = MergeConfig()) -> dict:
    """Confusion counts, precision/recall/F1, blocking recall and the misjudged pairs.

    A pair is predicted "same" as the service would decide it: the two share a merge key
    (else the service never compares them) and best_match accepts the earlier one.
    """
    counts = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    errors = []
    blocked_out = []
    for pair in pairs:
        existing, new = profile_from_fixture(pair["a"]), profile_from_fixture(pair["b"])
        found = bool(merge_keys(existing, config) & merge_keys(new, config))
        match = best_match(new, [existing], config) if found else None
        predicted, actual = match is not None, pair["same"]
        counts[("t" if predicted == actual else "f") + ("p" if predicted else "n")] += 1
        if predicted != actual:
            detail = match or merge.score(new, existing, config)
            errors.append({"a": existing.case_no, "b": new.case_no, "same": actual, "note": pair["note"],
                           "score": detail.score, "reasons": detail.reasons if found else ["no shared key"]})
        if actual and not found:
            blocked_out.append(f"{existing.case_no} / {new.case_no}: {pair['note']}")
    tp, fp, fn = counts["tp"], counts["fp"], counts["fn"]
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    positives = sum(pair["same"] for pair in pairs)
    return {
        **counts,
        "pairs": len(pairs),
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "blocking_recall": 1 - len(blocked_out) / positives if positives else 1.0,
        "errors": errors,
        "blocked_out": blocked_out,
    }


def benchmark(sizes: tuple[int, ...] = (1, 10, 50, 200), repeats: int = 50, config: MergeConfig = MergeConfig()) -> dict:
    """Milliseconds of pure merge work per submission: keys of the new case, then scoring
    N candidates (warm: candidates' text features cached, as for cases seen before; cold:
    every candidate's text analysed afresh, the worst case)."""
    _ensure_hash_key()
    merge.warm_up(config)
    texts = [entry[side]["text"] for entry in load_pairs() for side in ("a", "b")]
    rng = random.Random(7)
    now = datetime(2024, 3, 31, tzinfo=timezone.utc)

    def profile(i: int, text: str) -> MergeProfile:
        return make_profile(f"B-{i}", "hotline", text, now - timedelta(days=rng.randint(0, 29)),
                            township="卞庄街道", village=f"V{i % 7}", phone=f"1380000{i:04d}")

    figures: dict[str, float] = {}
    started = time.perf_counter()
    for i in range(repeats):
        merge_keys(profile(i, texts[i % len(texts)]), config)
    figures["merge_keys_ms"] = (time.perf_counter() - started) * 1000 / repeats
    for size in sizes:
        for warm in (True, False):
            total = 0.0
            for i in range(repeats):
                # Suffixes make the candidates' texts unseen, for the cold figure.
                suffix = "" if warm else f"（{i}-{size}）"
                candidates = [profile(j, texts[j % len(texts)] + suffix) for j in range(size)]
                new = profile(10_000 + i, texts[(i * 7) % len(texts)])
                if warm:
                    best_match(new, candidates, config)
                started = time.perf_counter()
                best_match(new, candidates, config)
                total += time.perf_counter() - started
            figures[f"best_match_{size}_{'warm' if warm else 'cold'}_ms"] = total * 1000 / repeats
    return {key: round(value, 3) for key, value in figures.items()}


def gov_messages_benchmark(path: Path = GOV_MESSAGES, config: MergeConfig = MergeConfig()) -> dict | None:
    """Cluster real messages (different users) through the same keys and scores.

    The data has no place fields (place names are masked by its publisher), so this
    measures text evidence alone, the hardest case: nothing lowers the bar.
    """
    if not path.exists():
        return None
    _ensure_hash_key()
    with open(path, encoding="utf-8") as rows:
        messages = list(csv.DictReader(rows))
    profiles = []
    for row in messages:
        opened = _message_time(row["time"])
        profiles.append(make_profile(row["id"], "app", row["text"], opened, title=row["title"]))
    started = time.perf_counter()
    index: dict[str, list[int]] = defaultdict(list)
    keys_of = []
    for i, profile in enumerate(profiles):
        keys = merge_keys(profile, config)
        keys_of.append(keys)
        for key in keys:
            index[key].append(i)
    keys_seconds = time.perf_counter() - started

    parent = list(range(len(profiles)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    comparisons, candidates_per_message, merged_pairs = 0, [], []
    started = time.perf_counter()
    for i, profile in enumerate(profiles):
        candidates = {j for key in keys_of[i] for j in index[key] if j < i}
        candidates_per_message.append(len(candidates))
        window = [profiles[j] for j in candidates
                  if messages[j]["user"] != messages[i]["user"]]
        comparisons += len(window)
        match = best_match(profile, window, config)
        if match:
            j = next(k for k in candidates if profiles[k].case_no == match.case_no)
            parent[root(i)] = root(j)
            merged_pairs.append((j, i, match.score))
    score_seconds = time.perf_counter() - started

    groups = defaultdict(list)
    for i in range(len(profiles)):
        groups[root(i)].append(i)
    multi = sorted((g for g in groups.values() if len(g) > 1), key=len, reverse=True)
    review = random.Random(11).sample(merged_pairs, min(10, len(merged_pairs)))
    return {
        "messages": len(profiles),
        "keys_per_message": round(statistics.mean(len(k) for k in keys_of), 1),
        "candidates_per_message_mean": round(statistics.mean(candidates_per_message), 2),
        "candidates_per_message_max": max(candidates_per_message),
        "merged_messages": len(merged_pairs),
        "groups_of_2_or_more": len(multi),
        # Groups join merges transitively (a~b, b~c), so a large one can mix topics;
        # the service never chains: it attaches each report to one case.
        "largest_groups": [[_title(messages[i]) for i in g[:3]] + [f"({len(g)} messages)"] for g in multi[:5]],
        "ms_per_message_keys": round(keys_seconds * 1000 / len(profiles), 3),
        "ms_per_comparison": round(score_seconds * 1000 / max(comparisons, 1), 4),
        "merges_to_review": [(_title(messages[j]), _title(messages[i]), s) for j, i, s in review],
    }


def _title(message: dict) -> str:
    return privacy.mask_text(message["title"][:40])


def _message_time(text: str) -> datetime:
    text = text.strip().replace("/", "-")
    for layout in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, layout).replace(tzinfo=timezone(timedelta(hours=8)))
        except ValueError:
            continue
    raise ValueError(f"unknown time format: {text!r}")


def _ensure_hash_key() -> None:
    # The fixture and the public messages hold no real personal data, so any key will do;
    # a configured key is used when there is one.
    os.environ.setdefault("LANLING_HASH_KEY", "evaluate-merge")


def main() -> None:
    _ensure_hash_key()
    result = evaluate(load_pairs())
    print(f"merge fixture: {result['pairs']} pairs  tp={result['tp']} fp={result['fp']} "
          f"fn={result['fn']} tn={result['tn']}")
    print(f"precision {result['precision']:.3f}  recall {result['recall']:.3f}  F1 {result['f1']:.3f}  "
          f"blocking recall {result['blocking_recall']:.3f}")
    for error in result["errors"]:
        kind = "missed" if error["same"] else "wrongly merged"
        print(f"  {kind}: {error['a']} / {error['b']} ({error['note']}) score {error['score']:.2f}; "
              + "; ".join(error["reasons"]))
    for line in result["blocked_out"]:
        print(f"  no shared key: {line}")
    print("cost:", json.dumps(benchmark(), ensure_ascii=False))
    real = gov_messages_benchmark()
    if real is None:
        print(f"gov-messages: skipped ({GOV_MESSAGES} not present)")
    else:
        print("gov-messages:", json.dumps(real, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
