"""并单 at scale: the duplicate check's cost per submission as stored cases grow.

    python -m tests.bench.merge                 # 10^3, 10^5, 10^6 stored cases (about 8 min)
    python -m tests.bench.merge 1000 100000     # chosen sizes
    make bench-merge

A throwaway PostgreSQL database is bulk-loaded with realistic cases (services/intake/bulk.py:
the 18 townships and their villages, a year of dates, about a tenth open inside the merge
window, one in seven reported more than once), grown from one size to the next. At each size
the same kind of traffic is checked: half the submissions repeat an open dispute in other
words through another channel, half report new disputes. Only `handlers.find_merge_match` is
timed (blocking keys of the new report, the bounded index lookup, scoring the candidates),
on reports none of whose texts were seen before. It prints one line per size and a JSON
summary last; `run()` returns the same figures for `make bench`.

PostgreSQL: LANLING_BENCH_PG, else LANLING_TEST_PG, else postgresql://postgres@127.0.0.1:5432/postgres.
"""
from __future__ import annotations

import json
import os
import random
import statistics
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

SIZES = (1_000, 100_000, 1_000_000)


def _environment() -> None:
    from cryptography.fernet import Fernet

    os.environ.setdefault("LANLING_HASH_KEY", "bench-hash-key")
    os.environ.setdefault("LANLING_DATA_KEYS", Fernet.generate_key().decode())
    os.environ.setdefault("LANLING_VAR", f"/tmp/lanling-bench-{os.getpid()}")


def admin_url() -> str:
    from services.common import config

    return config.normalise_db_url(os.environ.get("LANLING_BENCH_PG") or os.environ.get("LANLING_TEST_PG")
                                   or "postgresql://postgres@127.0.0.1:5432/postgres")


class ScratchDatabase:
    """A PostgreSQL database of its own, migrated like a deployment's, dropped afterwards."""

    def __init__(self, name: str | None = None):
        from sqlalchemy import create_engine, text

        self.admin = admin_url()
        self.name = name or f"lanling_bench_merge_{uuid.uuid4().hex[:8]}"
        engine = create_engine(self.admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        engine.dispose()
        self.url = self.admin.rsplit("/", 1)[0] + f"/{self.name}"

    def drop(self) -> None:
        from sqlalchemy import create_engine, text

        engine = create_engine(self.admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        engine.dispose()


def prepared_submissions(loader, places, count: int, now: datetime, rng: random.Random):
    """(profile, expected case_no or None) for `count` reports, half of them repeats."""
    from services.contracts import channels
    from services.intake import canonical
    from services.intake.merge import profile_from_case

    gen = loader.generator
    window_start = now - timedelta(days=28)
    repeatable = [d for d in loader.open_disputes if d.received_at >= window_start]
    out = []
    for i in range(count):
        at = now - timedelta(minutes=rng.randint(1, 600))
        if i % 2 == 0 and repeatable:
            known = rng.choice(repeatable)
            channel = gen.channel_for(known.dispute, exclude=known.channels + ("grid",)
                                      if len(known.channels) < 5 else ("grid",))
            payload, expected = gen.submission(known.dispute, channel, at, first=False), known.case_no
        else:
            dispute = gen.dispute(urgent_rate=0)
            channel = gen.channel_for(dispute, exclude=("grid",))
            payload, expected = gen.submission(dispute, channel, at), None
        case = canonical.to_canonical(channel, channels.load_submission(channel, payload, now), places, now)
        out.append((profile_from_case("", case), expected))
    return out


def measure(db, loader, places, count: int, now: datetime, seed: int) -> dict:
    from services.intake import handlers
    from services.intake.merge import MergeConfig

    config = MergeConfig()
    rng = random.Random(seed)
    warm = prepared_submissions(loader, places, 60, now, rng)
    submissions = prepared_submissions(loader, places, count, now, rng)
    timings, found, wrong, false_new = [], 0, 0, 0
    with db.reading() as session:
        for profile, _ in warm:  # the database's cache and the first-call costs
            handlers.find_merge_match(session, profile, config)
        for profile, expected in submissions:
            started = time.perf_counter()
            match = handlers.find_merge_match(session, profile, config)
            timings.append((time.perf_counter() - started) * 1000)
            if expected is None:
                false_new += match is not None
            elif match is not None and match.case_no == expected:
                found += 1
            elif match is not None:
                wrong += 1
    repeats = sum(1 for _, expected in submissions if expected)
    timings.sort()
    return {
        "merge_ms_per_submission": round(statistics.mean(timings), 3),
        "merge_ms_p50": round(timings[len(timings) // 2], 3),
        "merge_ms_p95": round(timings[int(len(timings) * 0.95)], 3),
        "repeats_merged_into_their_case": round(found / repeats, 3) if repeats else None,
        "repeats_merged_elsewhere": wrong,
        "new_disputes_merged": false_new,
        "submissions": len(submissions),
    }


def run(sizes=SIZES, submissions: int = 400, seed: int = 3, progress: bool = True) -> dict:
    """Figures per stored-case count, keyed by the count as a string (issue 9's `growth`)."""
    _environment()
    from services.common.clock import SystemClock
    from services.common.db import Database
    from services.common.migrate import upgrade
    from services.intake import bulk, canonical, handlers
    from services.intake.models import Base
    from services.routing.directory import Directory

    snapshot = Directory.from_reference().places_snapshot()
    places = canonical.StaticPlaces(snapshot["townships"], snapshot["villages"], snapshot["grids"],
                                    handlers.NOT_TOWNSHIPS)
    scratch = ScratchDatabase()
    results: dict = {}
    try:
        upgrade("intake", scratch.url)
        db = Database(scratch.url, Base.metadata, "intake", SystemClock())
        now = datetime.now(timezone.utc)
        loader = bulk.BulkLoader(db, snapshot, now=now, seed=seed)
        stored = 0
        for size in sorted(sizes):
            started = time.perf_counter()
            stored = loader.load(size - stored)
            load_s = time.perf_counter() - started
            figures = measure(db, loader, places, submissions, now, seed + size)
            figures["load_s"] = round(load_s, 1)
            figures["index_rows"] = _index_rows(db)
            results[str(size)] = figures
            if progress:
                print(f"{size:>9,} stored cases: {figures['merge_ms_per_submission']:.2f} ms per submission "
                      f"(p95 {figures['merge_ms_p95']:.2f}); repeats found {figures['repeats_merged_into_their_case']}, "
                      f"misplaced {figures['repeats_merged_elsewhere']}, new merged {figures['new_disputes_merged']}; "
                      f"loaded in {load_s:.0f} s", flush=True)
        db.dispose()
    finally:
        scratch.drop()
    small, large = str(min(sizes)), str(max(sizes))
    if small != large:
        results["ratio_largest_to_smallest"] = round(
            results[large]["merge_ms_per_submission"] / results[small]["merge_ms_per_submission"], 2)
    return results


def _index_rows(db) -> dict:
    from sqlalchemy import func, select

    from services.intake.models import Case, MergeKey, MergeProfileRow

    with db.reading() as session:
        return {
            "cases": session.scalar(select(func.count()).select_from(Case)),
            "open_cases": session.scalar(select(func.count()).select_from(Case).where(Case.status == "open")),
            "merge_keys": session.scalar(select(func.count()).select_from(MergeKey)),
            "merge_profiles": session.scalar(select(func.count()).select_from(MergeProfileRow)),
        }


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    sizes = tuple(int(a) for a in argv) or SIZES
    result = run(sizes)
    print(json.dumps({"merge": result}, ensure_ascii=False))


if __name__ == "__main__":
    main()
