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
on reports none of whose texts were seen before. The smallest database is kept and measured
alongside each larger one, submission by submission, so the ratio is not the machine's
noise. It prints one line per size and a JSON summary last; `run()` returns the same
figures for `make bench` (`results["1000000"]["merge_ms_per_submission"]`).

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
    """A PostgreSQL database of its own, migrated like a deployment's, dropped afterwards;
    or a copy of another one (`template`)."""

    def __init__(self, template: str | None = None):
        from sqlalchemy import create_engine, text

        self.admin = admin_url()
        self.name = f"lanling_bench_merge_{uuid.uuid4().hex[:8]}"
        engine = create_engine(self.admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"' + (f' TEMPLATE "{template}"' if template else "")))
        engine.dispose()
        self.url = self.admin.rsplit("/", 1)[0] + f"/{self.name}"

    def drop(self) -> None:
        from sqlalchemy import create_engine, text

        engine = create_engine(self.admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        engine.dispose()


def prepared_submissions(generator, disputes, places, count: int, now: datetime, rng: random.Random):
    """(profile, expected case_no or None) for `count` reports: half repeat one of `disputes`
    (open, inside the window) in other words through another channel, half are new."""
    from services.contracts import channels
    from services.intake import canonical
    from services.intake.merge import profile_from_case

    window_start = now - timedelta(days=28)
    repeatable = [d for d in disputes if d.received_at >= window_start]
    out = []
    for i in range(count):
        at = now - timedelta(minutes=rng.randint(1, 600))
        if i % 2 == 0 and repeatable:
            known = rng.choice(repeatable)
            exclude = known.channels + ("grid",) if len(known.channels) < 5 else ("grid",)
            channel = generator.channel_for(known.dispute, exclude=exclude)
            payload, expected = generator.submission(known.dispute, channel, at, first=False), known.case_no
        else:
            dispute = generator.dispute(urgent_rate=0)
            channel = generator.channel_for(dispute, exclude=("grid",))
            payload, expected = generator.submission(dispute, channel, at), None
        case = canonical.to_canonical(channel, channels.load_submission(channel, payload, now), places, now)
        out.append((profile_from_case("", case), expected))
    return out


def measure(databases: dict, submissions, warm) -> dict:
    """Time find_merge_match on every database for each submission in turn, so that the
    machine's noise (other processes, the CPU's clock) falls on all of them alike. Each call
    starts with the new report's text unseen, as in the service."""
    from services.intake import handlers, merge
    from services.intake.merge import MergeConfig

    config = MergeConfig()
    sessions = {name: db.reading() for name, db in databases.items()}
    opened = {name: context.__enter__() for name, context in sessions.items()}
    timings = {name: [] for name in databases}
    outcomes = {name: {"found": 0, "wrong": 0, "new_merged": 0} for name in databases}
    try:
        for profile, _ in warm:  # the databases' caches and first-call costs
            for session in opened.values():
                handlers.find_merge_match(session, profile, config)
        for i, (profile, expected) in enumerate(submissions):
            order = list(opened.items()) if i % 2 == 0 else list(reversed(opened.items()))
            for name, session in order:
                merge.text_features.cache_clear()
                started = time.perf_counter()
                match = handlers.find_merge_match(session, profile, config)
                timings[name].append((time.perf_counter() - started) * 1000)
                tally = outcomes[name]
                if expected is None:
                    tally["new_merged"] += match is not None
                elif match is not None and match.case_no == expected:
                    tally["found"] += 1
                elif match is not None:
                    tally["wrong"] += 1
    finally:
        for context in sessions.values():
            context.__exit__(None, None, None)
    repeats = sum(1 for _, expected in submissions if expected) or 1
    figures = {}
    for name, values in timings.items():
        values.sort()
        figures[name] = {
            "merge_ms_per_submission": round(statistics.mean(values), 3),
            "merge_ms_p50": round(values[len(values) // 2], 3),
            "merge_ms_p95": round(values[int(len(values) * 0.95)], 3),
            "repeats_merged_into_their_case": round(outcomes[name]["found"] / repeats, 3),
            "repeats_merged_elsewhere": outcomes[name]["wrong"],
            "new_disputes_merged": outcomes[name]["new_merged"],
            "submissions": len(submissions),
        }
    return figures


def run(sizes=SIZES, submissions: int = 400, seed: int = 3, progress: bool = True) -> dict:
    """Figures per stored-case count, keyed by the count as a string (issue 9's `growth`).

    The smallest size is loaded once and copied; the copy grows to each larger size. At every
    size both are measured with the same submissions, interleaved, and `ratio_to_smallest`
    compares the two measured side by side.
    """
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
    sizes = sorted(sizes)
    now = datetime.now(timezone.utc)
    small = ScratchDatabase()
    scratch = [small]
    results: dict = {}
    try:
        upgrade("intake", small.url)
        small_db = Database(small.url, Base.metadata, "intake", SystemClock())
        started = time.perf_counter()
        small_loader = bulk.BulkLoader(small_db, snapshot, now=now, seed=seed)
        small_loader.load(sizes[0])
        small_load_s = time.perf_counter() - started
        small_db.dispose()
        grown = ScratchDatabase(template=small.name)
        scratch.append(grown)
        small_db = Database(small.url, Base.metadata, "intake", SystemClock())
        grown_db = Database(grown.url, Base.metadata, "intake", SystemClock())
        grower = bulk.BulkLoader(grown_db, snapshot, now=now, seed=seed + 1)
        rng = random.Random(seed)
        stored = sizes[0]
        for size in sizes:
            started = time.perf_counter()
            if size > stored:
                grower.load(size - stored)
                stored = size
            load_s = time.perf_counter() - started if size > sizes[0] else small_load_s
            # repeats of disputes on file in both, and (once grown) of the grown one's own
            disputes = small_loader.open_disputes + grower.open_disputes
            warm = prepared_submissions(small_loader.generator, disputes, places, 40, now, rng)
            reports = prepared_submissions(small_loader.generator, disputes, places, submissions, now, rng)
            measured = measure({"small": small_db, "grown": grown_db}, reports, warm)
            figures = dict(measured["grown"], load_s=round(load_s, 1), index_rows=_index_rows(grown_db),
                           smallest_measured_alongside_ms=measured["small"]["merge_ms_per_submission"])
            figures["ratio_to_smallest"] = round(
                figures["merge_ms_per_submission"] / measured["small"]["merge_ms_per_submission"], 2)
            results[str(size)] = figures
            if progress:
                print(f"{size:>9,} stored cases: {figures['merge_ms_per_submission']:.2f} ms per submission "
                      f"(p95 {figures['merge_ms_p95']:.2f}; {sizes[0]:,} cases alongside: "
                      f"{figures['smallest_measured_alongside_ms']:.2f} ms, ratio {figures['ratio_to_smallest']}); "
                      f"repeats found {figures['repeats_merged_into_their_case']}, misplaced "
                      f"{figures['repeats_merged_elsewhere']}, new merged {figures['new_disputes_merged']}; "
                      f"loaded in {load_s:.0f} s", flush=True)
        small_db.dispose()
        grown_db.dispose()
    finally:
        for database in scratch:
            database.drop()
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
