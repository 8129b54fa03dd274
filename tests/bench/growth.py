"""Stored cases for the growth runs: 10^3, 10^5, 10^6 cases bulk-loaded with COPY.

The spread: the 18 townships (371324-001 … 018) and their villages, a year of dates,
about a tenth received inside the merge window (30 days) and still open, the rest
resolved or closed; one case in seven was reported twice (a second source on another
channel) and about one complainant in ten has more than one case. Intake gets
`cases` + `sources` (+ `case_sequences`, so new case numbers never collide); mediation
gets `cases` + two timeline rows each. Encrypted columns are drawn from a pool of real
ciphertexts (their size is what matters here). Loads grow the same databases from one
size to the next.

When intake's merge index lands (`services.intake.bulk.BulkLoader`, issue: intake), intake
is loaded by it instead, so the merge-key table is filled exactly as the service fills it,
and `merge_ms_per_submission` comes from `tests.bench.merge.measure` (the real duplicate
check). Until then the duplicate check that exists is measured: the indexed
(channel, reference) lookup every submission makes — named as such in the JSON.
"""
from __future__ import annotations

import json
import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

from sqlalchemy import create_engine, inspect, text

from tests.bench.common import say

WINDOW_DAYS = 30
OPEN_SHARE = 0.10
CHUNK = 50_000
CHANNELS = ("hotline", "petition", "opinion", "app", "grid", "walkin")
DISPUTES = ("neighbour", "land", "wages", "family", "property", "traffic", "medical", "consumer")
LEVELS = ("village", "work_area", "township", "county")
MECHANISMS = ("supermarket", "specialised", "joint", "chain")
TZ_SHANGHAI = timezone(timedelta(hours=8))


def _places():
    from services.routing.directory import Directory

    snapshot = Directory.from_reference().places_snapshot()
    villages: dict[str, list[str]] = {}
    for v in snapshot["villages"]:
        villages.setdefault(v["township"], []).append(v["code"])
    return snapshot, [t["code"] for t in snapshot["townships"]], villages


class Loader:
    """Grows intake's and mediation's databases by `count` cases per call."""

    def __init__(self, urls: dict, *, now: datetime | None = None, seed: int = 9):
        self.urls = urls
        self.now = now or datetime.now(timezone.utc)
        self.rng = random.Random(seed)
        self.snapshot, self.townships, self.villages = _places()
        self.loaded = 0
        self._intake_bulk = self._real_intake_loader()
        self._pool = self._ciphertexts()

    # -- intake's own loader, when it exists --------------------------------------------------
    def _real_intake_loader(self):
        try:
            from services.intake import bulk  # noqa: F401 - the merge index's loader (intake's issue)
        except ImportError:
            return None
        from services.common.clock import SystemClock
        from services.common.db import Database
        from services.intake.models import Base

        self._intake_db = Database(self.urls["intake"], Base.metadata, "intake", SystemClock())
        return bulk.BulkLoader(self._intake_db, self.snapshot, now=self.now)

    @property
    def merge_check_kind(self) -> str:
        return "merge index (handlers.find_merge_match)" if self._intake_bulk else \
            "source-reference lookup only (no merge index in this build)"

    # -- generation ------------------------------------------------------------------------------------
    def _ciphertexts(self) -> dict:
        from services.common import privacy

        names = ["王秀英", "李建国", "张桂兰", "刘志强", "陈丽娟", "杨海燕", "赵明华", "黄文静"]
        canonical = {"channel": "hotline", "content": "邻居盖房子占了我家宅基地半米，找村里调解了两回没用。" * 4,
                     "complainant": {"name": "王秀英", "phone": "13812345678"}, "parties": [], "obligations": []}
        context = {"people": {"m-001": {"id": "m-001", "name": "张调解", "level": "township"}},
                   "complainant": {"name": "王秀英", "phone": "13812345678"}, "village": None, "parties": []}
        return {
            "names": [privacy.encrypt(n) for n in names],
            "phones": [privacy.encrypt(f"138{i:08d}") for i in range(16)],
            "canonicals": [privacy.encrypt(json.dumps(canonical, ensure_ascii=False)) for _ in range(16)],
            "contexts": [privacy.encrypt(json.dumps(context, ensure_ascii=False)) for _ in range(16)],
        }

    def _state_templates(self) -> list[str]:
        """Real stored states (dump_state), open ones first, the case number left as a placeholder."""
        from services.mediation.lifecycle import CaseState
        from services.mediation.store import dump_state

        rng, out = self.rng, []
        for status in ("assigned", "accepted", "in_mediation", "closed"):
            received = self.now - timedelta(days=rng.uniform(0, 365))
            due = received + timedelta(days=rng.uniform(1, 20))
            state = CaseState(case_no="@CASE@", status=status, channel=rng.choice(CHANNELS), received_at=received,
                              township=rng.choice(self.townships), dispute_type=rng.choice(DISPUTES),
                              level=rng.choice(LEVELS), mechanism=rng.choice(MECHANISMS),
                              holders=(f"m-{rng.randrange(1, 160):03d}",), assigned_at=received,
                              sign_off_due=due if status == "assigned" else None,
                              handling_due=due if status != "assigned" else None)
            out.append(json.dumps(dump_state(state), ensure_ascii=False))
        return out

    def _params(self, first: int, last: int) -> dict:
        village_list = [v for t in self.townships for v in self.villages.get(t, [])]
        return {"first": first, "last": last, "now": self.now, "window": WINDOW_DAYS,
                "townships": self.townships, "villages": village_list, "channels": list(CHANNELS),
                "disputes": list(DISPUTES), "levels": list(LEVELS), "mechanisms": list(MECHANISMS),
                "states": self._state_templates(), **self._pool}

    # Rows are made by PostgreSQL itself (generate_series): a million cases in seconds, not minutes
    # of Python. Case i was accepted 1 + i % 365 days ago (Asia/Shanghai), number i / 365 of that
    # day, so numbers never collide and today's sequence is left to the flow.
    CASES = """
        WITH g AS (
            SELECT i, CAST(1 + i % 365 AS integer) AS age, i / 365 + 1 AS num, random() AS r, random() AS r2,
                   (((:now AT TIME ZONE 'Asia/Shanghai')::date - CAST(1 + i % 365 AS integer))
                    + make_interval(secs => 3600 * (7 + 12 * random()))) AT TIME ZONE 'Asia/Shanghai' AS at
            FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint) - 1) AS i)
        SELECT i, '371324-' || to_char(at AT TIME ZONE 'Asia/Shanghai', 'YYYYMMDD') || '-' || lpad(num::text, 6, '0')
                   AS case_no,
               age <= :window - 1 AS open, at, r, r2,
               (CAST(:townships AS text[]))[1 + i % 18] AS township
        FROM g"""

    def _load_intake(self, conn, first: int, last: int) -> None:
        conn.execute(text(f"""
            WITH c AS ({self.CASES})
            INSERT INTO cases (case_no, status, channel, township, village, title, content, urgent, accepted_at,
                               finished_at, canonical)
            SELECT case_no, CASE WHEN open THEN 'open' WHEN r < 0.3 THEN 'resolved' ELSE 'closed' END,
                   (CAST(:channels AS text[]))[1 + i % 6], township,
                   (CAST(:villages AS text[]))[1 + (i * 7919) % cardinality(CAST(:villages AS text[]))],
                   (CAST(:disputes AS text[]))[1 + i % 8] || '纠纷', '邻里纠纷，请求调解。', r2 < 0.01, at,
                   CASE WHEN open THEN NULL ELSE at + make_interval(days => CAST(1 + i % 25 AS integer)) END,
                   (CAST(:canonicals AS text[]))[1 + i % 16]
            FROM c"""), self._params(first, last))
        # one case in seven was reported twice, through another channel; one complainant in ten
        # (a phone hash) comes back with another dispute
        conn.execute(text(f"""
            WITH c AS ({self.CASES}), s AS (
                SELECT c.*, n FROM c, generate_series(0, 1) AS n WHERE n = 0 OR i % 7 = 0)
            INSERT INTO sources (case_no, channel, reference, fingerprint, received_at, submitted_at,
                                 complainant_name, complainant_phone, phone_hash, obligations, answer)
            SELECT case_no, (CAST(:channels AS text[]))[1 + (i + n) % 6], 'B' || i || '-' || n, md5(i || '-' || n),
                   at + make_interval(hours => 30 * n::integer), at + make_interval(hours => 30 * n::integer),
                   (CAST(:names AS text[]))[1 + i % 8], (CAST(:phones AS text[]))[1 + i % 16],
                   md5(CASE WHEN i % 10 = 0 THEN (i % 5000)::text ELSE 'p' || i END), '[]',
                   json_build_object('case_no', case_no, 'status', CASE WHEN n = 0 THEN 'received' ELSE 'merged' END)
            FROM s"""), self._params(first, last))

    def _load_mediation(self, conn, first: int, last: int, columns: set[str]) -> None:
        optional = ", next_fire_at" if "next_fire_at" in columns else ""
        optional_value = ", due - interval '2 hours'" if optional else ""
        conn.execute(text(f"""
            WITH c AS ({self.CASES}), m AS (
                SELECT c.*, CASE WHEN open THEN 1 + i % 3 ELSE 4 END AS st,
                       CASE WHEN open THEN :now + make_interval(secs => 3600 * (12 + 468 * r)) END AS due FROM c)
            INSERT INTO cases (case_no, status, level, mechanism, township, dispute_type, lead_holder, next_deadline,
                               received_at, updated_at, state, context{optional})
            SELECT case_no, (ARRAY['assigned', 'accepted', 'in_mediation', 'closed'])[st],
                   (CAST(:levels AS text[]))[1 + i % 4], (CAST(:mechanisms AS text[]))[1 + i % 4], township,
                   (CAST(:disputes AS text[]))[1 + i % 8], 'm-' || lpad((1 + i % 159)::text, 3, '0'), due, at, at,
                   CAST(replace((CAST(:states AS text[]))[st], '@CASE@', case_no) AS json),
                   (CAST(:contexts AS text[]))[1 + i % 16]{optional_value}
            FROM m"""), self._params(first, last))
        conn.execute(text(f"""
            WITH c AS ({self.CASES})
            INSERT INTO timeline (case_no, at, event, actor, from_status, to_status, detail)
            SELECT case_no, at, e.event, e.actor, e.from_status, e.to_status, '{{}}'
            FROM c, (VALUES ('case_received', 'intake', NULL, 'received'),
                            ('assign', 'system', 'routed', 'assigned')) AS e(event, actor, from_status, to_status)
            """), self._params(first, last))

    @staticmethod
    def _columns(engine, table: str) -> set[str]:
        return {c["name"] for c in inspect(engine).get_columns(table)}

    def grow(self, count: int) -> float:
        """Add `count` cases to both databases; returns the seconds it took."""
        started = time.monotonic()
        first, last = self.loaded, self.loaded + count
        intake = create_engine(self.urls["intake"])
        mediation = create_engine(self.urls["mediation"])
        columns = self._columns(mediation, "cases")

        def load_intake():
            if self._intake_bulk is not None:
                self._intake_bulk.load(count)
                return
            with intake.begin() as conn:
                self._load_intake(conn, first, last)

        def load_mediation():
            with mediation.begin() as conn:
                self._load_mediation(conn, first, last, columns)

        try:
            with ThreadPoolExecutor(2) as pool:  # the two databases load at once, one core each
                for future in [pool.submit(load_intake), pool.submit(load_mediation)]:
                    future.result()
            for engine, tables in ((intake, ("cases", "sources")), (mediation, ("cases", "timeline"))):
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    for table in tables:
                        conn.execute(text(f"VACUUM ANALYZE {table}"))
        finally:
            intake.dispose()
            mediation.dispose()
        self.loaded = last
        return time.monotonic() - started

    # -- what must not grow with stored cases ----------------------------------------------------------
    def merge_check_ms(self, submissions: int = 300) -> dict:
        """Intake's duplicate check per submission, on traffic like the flow's."""
        if self._intake_bulk is not None:
            from services.intake import canonical, handlers
            from tests.bench import merge as merge_bench

            places = canonical.StaticPlaces(self.snapshot["townships"], self.snapshot["villages"],
                                            self.snapshot["grids"], handlers.NOT_TOWNSHIPS)
            rng, loader = random.Random(3), self._intake_bulk
            warm = merge_bench.prepared_submissions(loader.generator, loader.open_disputes, places, 40, self.now, rng)
            reports = merge_bench.prepared_submissions(loader.generator, loader.open_disputes, places, submissions,
                                                       self.now, rng)
            figures = merge_bench.measure({"stored": self._intake_db}, reports, warm)["stored"]
            return {"merge_ms_per_submission": figures["merge_ms_per_submission"], "merge_check": self.merge_check_kind}
        engine = create_engine(self.urls["intake"])
        samples = []
        try:
            with engine.connect() as conn:
                refs = [r[0] for r in conn.execute(text("SELECT reference FROM sources TABLESAMPLE SYSTEM (1) LIMIT :n"),
                                                   {"n": submissions // 2})]
                refs += [f"NEW-{uuid.uuid4().hex}" for _ in range(submissions - len(refs))]
                query = text("SELECT id, case_no, fingerprint, answer FROM sources WHERE channel = :c AND reference = :r")
                for ref in refs[:20]:  # warm the plan and the cache first
                    conn.execute(query, {"c": "hotline", "r": ref}).all()
                for ref in refs:
                    began = time.perf_counter()
                    conn.execute(query, {"c": "hotline", "r": ref}).all()
                    samples.append((time.perf_counter() - began) * 1000)
        finally:
            engine.dispose()
        samples.sort()
        return {"merge_ms_per_submission": round(samples[len(samples) // 2], 3), "merge_check": self.merge_check_kind}

    def deadline_scan_ms(self, repeats: int = 50) -> float:
        """Mediation's due-deadline scan (the timer's query: oldest due first, 50 at a time, SKIP LOCKED),
        three days from now so a realistic share of the open cases is due; rolled back."""
        engine = create_engine(self.urls["mediation"])
        column = "next_fire_at" if "next_fire_at" in self._columns(engine, "cases") else "next_deadline"
        query = text(f"SELECT case_no, state FROM cases WHERE {column} <= :now ORDER BY {column} LIMIT 50 "
                     f"FOR UPDATE SKIP LOCKED")
        samples = []
        try:
            with engine.connect() as conn:
                for _ in range(5):
                    conn.execute(query, {"now": self.now + timedelta(days=3)}).all()
                    conn.rollback()
                for _ in range(repeats):
                    began = time.perf_counter()
                    conn.execute(query, {"now": self.now + timedelta(days=3)}).all()
                    samples.append((time.perf_counter() - began) * 1000)
                    conn.rollback()
        finally:
            engine.dispose()
        samples.sort()
        return round(samples[len(samples) // 2], 3)


def migrate(urls: dict, env: dict) -> None:
    """Migrate intake's and mediation's databases as a deployment does (`lanling migrate`)."""
    import subprocess

    from tests.harness import LANLING, ROOT

    env = dict(env, INTAKE_DB_URL=urls["intake"], MEDIATION_DB_URL=urls["mediation"])
    subprocess.run([LANLING, "migrate", "intake", "mediation"], env=env, cwd=ROOT, check=True, capture_output=True)


def describe(loader: Loader) -> str:
    return f"{loader.loaded:,} stored cases"


__all__ = ["Loader", "migrate", "describe", "say"]
