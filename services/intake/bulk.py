"""Bulk-load realistic stored cases into intake's database, for benchmarks (`make bench`).

    loader = BulkLoader(db, places_snapshot, now=…)
    loader.load(99_000)            # adds cases; call again to grow
    loader.open_disputes           # a sample of disputes still open, to submit repeats of

The spread follows Lanling's: the 18 townships and their villages, received over the last
year, about a tenth received inside the merge window and still open (a few older ones open
too), the rest resolved and closed; about one case in seven has two or three sources (a
dispute reported again through another channel and merged). Open cases go through the real
path (channel schema, canonical case, merge profile and keys), so the duplicate index is
exactly what the service builds. Closed cases only fill the tables: their encrypted
documents are drawn from a small pool, since nothing but their size matters for a benchmark.

Not for production data. PostgreSQL is loaded with COPY (a million cases in a few minutes
on two cores); SQLite with plain inserts, for tests.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import multiprocessing
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import ForeignKeyConstraint, PrimaryKeyConstraint, UniqueConstraint, func, select, text
from sqlalchemy.schema import AddConstraint
from sqlalchemy.dialects import postgresql, sqlite

from services.common import privacy
from services.common.clock import local
from services.contracts import channels
from services.intake import canonical
from services.intake.casenos import format_case_no
from services.intake.handlers import NOT_TOWNSHIPS
from services.intake.merge import (
    MergeConfig,
    features_to_json,
    merge_keys,
    profile_features,
    profile_from_case,
    rules_digest,
    warm_up,
)
from services.intake.models import Case, CaseSequence, MergeKey, MergeProfileRow, Source
from services.intake.synthetic import Dispute, Generator

log = logging.getLogger(__name__)

CHUNK = 20_000
SOURCES_PER_CASE = ((1, 0.85), (2, 0.12), (3, 0.03))
POOL_SIZE = 500
SOURCE_USERS = {"hotline": "hotline-12345", "petition": "xinfang", "opinion": "yuqing", "app": "lanling-shoufa",
                "grid": "pingan-linyi", "walkin": "front-desk"}
CASE_COLUMNS = ("case_no", "status", "channel", "township", "village", "title", "content", "urgent", "accepted_at",
                "finished_at", "canonical", "outcome", "reply")
SOURCE_COLUMNS = ("id", "case_no", "channel", "reference", "source_user", "fingerprint", "received_at",
                  "submitted_at", "complainant_name", "complainant_phone", "phone_hash", "id_hash", "obligations",
                  "answer", "merge", "feedback_sent_at", "canonical", "urgent", "feedback", "history")
PROFILE_COLUMNS = ("source_id", "case_no", "opened_at", "profile", "address", "features", "rules_digest")
KEY_COLUMNS = ("case_no", "key", "opened_at")


@dataclass
class OpenDispute:
    dispute: Dispute
    case_no: str
    channels: tuple[str, ...]
    received_at: datetime


class BulkLoader:
    def __init__(self, db, places: dict, *, now: datetime | None = None, seed: int = 11,
                 window_days: int = MergeConfig().window_days, open_share: float = 0.10,
                 old_open_share: float = 0.01, processes: int | None = None):
        self.db = db
        self.places = canonical.StaticPlaces(places["townships"], places.get("villages", ()),
                                             places.get("grids", ()), NOT_TOWNSHIPS)
        self.generator = Generator(places, seed=seed, tag=f"S{seed}")
        self.rng = random.Random(seed + 1)
        self.now = now or datetime.now(timezone.utc)
        self.window = timedelta(days=window_days)
        self.open_share = open_share
        self.old_open_share = old_open_share
        self.processes = processes if processes is not None else min(2, multiprocessing.cpu_count())
        self.open_disputes: list[OpenDispute] = []
        self._pool = self._tokens()
        self._workers = None
        self._lines = db.engine.dialect.name == "postgresql"

    # -- public -----------------------------------------------------------------
    def load(self, count: int, progress=None) -> int:
        """Add `count` cases; returns how many cases the database holds now.

        On PostgreSQL a large load drops the secondary indexes first and builds them again
        at the end (much faster than maintaining them row by row)."""
        warm_up()
        done = 0
        rebuild = self.db.engine.dialect.name == "postgresql" and count >= REBUILD_FROM
        if rebuild:
            self._drop_indexes()
        try:
            while done < count:
                size = min(CHUNK, count - done)
                self._load_chunk(size)
                done += size
                if progress:
                    progress(size)
        finally:
            if self._workers is not None:
                self._workers.close()
                self._workers.join()
                self._workers = None
            if rebuild:
                self._create_indexes()
        self._analyze()
        with self.db.reading() as session:
            return session.scalar(select(func.count()).select_from(Case))

    # -- generation -------------------------------------------------------------
    def _received_at(self) -> tuple[datetime, bool]:
        """When a case came in, and whether it is still open."""
        if self.rng.random() < self.open_share:
            return self.now - self.window * self.rng.random() * 0.98, True
        at = self.now - self.window - timedelta(days=(365 - self.window.days) * self.rng.random())
        return at, self.rng.random() < self.old_open_share

    def _load_chunk(self, size: int) -> None:
        gen, rng = self.generator, self.rng
        with self.db.reading() as session:
            next_source = (session.scalar(select(func.max(Source.id))) or 0) + 1
            sequences = {row.day: row.last for row in session.scalars(select(CaseSequence))}
        cases, sources, open_items = [], [], []
        counts = [n for n, _ in SOURCES_PER_CASE]
        count_weights = [w for _, w in SOURCES_PER_CASE]
        for _ in range(size):
            received_at, is_open = self._received_at()
            day = local(received_at).strftime("%Y%m%d")
            sequences[day] = sequences.get(day, 0) + 1
            case_no = format_case_no(day, sequences[day])
            count = rng.choices(counts, count_weights)[0]
            if not is_open:  # filler: only its size and spread matter
                case, case_sources = self._closed(case_no, received_at, count, next_source)
                next_source += count
                cases.append(case)
                sources += case_sources
                continue
            dispute = gen.dispute()
            used: list[str] = []
            for i in range(count):
                channel = gen.channel_for(dispute, exclude=tuple(used))
                used.append(channel)
                at = received_at + timedelta(hours=rng.uniform(0, 72) * i)
                payload = gen.submission(dispute, channel, at, first=i == 0)
                if channel == "grid":  # an open case's grid report was not resolved on site
                    payload["resolved_on_site"] = False
                    payload.pop("outcome", None)
                open_items.append((next_source, case_no, i, channel, payload, at))
                next_source += 1
            self.open_disputes.append(OpenDispute(dispute, case_no, tuple(used), received_at))
        opened = self._open_rows(open_items)
        cases += opened["cases"]
        sources += opened["sources"]
        with self.db.engine.begin() as conn:
            self._copy(conn, Case.__table__, CASE_COLUMNS, cases)
            self._copy(conn, Source.__table__, SOURCE_COLUMNS, sources)
            self._copy(conn, MergeProfileRow.__table__, PROFILE_COLUMNS, opened["profiles"])
            self._copy(conn, MergeKey.__table__, KEY_COLUMNS, opened["keys"])
            self._sequences(conn, sequences)
        if len(self.open_disputes) > 20_000:  # keep a fair sample, bounded
            self.open_disputes = self.rng.sample(self.open_disputes, 10_000)

    def _tokens(self) -> dict:
        """Pools for closed cases: texts, places, encrypted documents, names and phones."""
        rng = random.Random(5)
        gen = self.generator
        pool = {"docs": [], "names": [], "phones": [], "phone_hashes": [], "texts": [], "places": [], "titles": [],
                "contents": []}
        for _ in range(POOL_SIZE):
            dispute = gen.dispute()
            channel = gen.channel_for(dispute)
            content = gen.text(dispute, channel)
            pool["texts"].append((channel, content))
            pool["titles"].append(_render(content[:30]))
            pool["contents"].append(_render(content))
            pool["places"].append((dispute.township["code"], dispute.village["code"] if dispute.village else None))
            document = {"channel": channel, "content": content, "title": content[:30],
                        "complainant": {"name": dispute.applicant[0], "phone": dispute.applicant[1]},
                        "obligations": canonical.obligations_for(channel, {}, self.now),
                        "details": {"unknown_fields": []}, "padding": "x" * rng.randrange(0, 400)}
            pool["docs"].append(privacy.encrypt(json.dumps(document, ensure_ascii=False, default=str)))
            pool["names"].append(privacy.encrypt(dispute.applicant[0]))
            pool["phones"].append(privacy.encrypt(dispute.applicant[1]))
            pool["phone_hashes"].append(privacy.keyed_hash(dispute.applicant[1], "phone"))
        return pool

    def _closed(self, case_no: str, received_at: datetime, count: int, first_source: int):
        """A resolved and closed case with its sources, from the pools (no text analysis)."""
        rng, pool = self.rng, self._pool
        pick = rng.randrange(POOL_SIZE)
        channel, content = pool["texts"][pick]
        township, village = pool["places"][rng.randrange(POOL_SIZE)]
        finished = min(received_at + timedelta(days=rng.uniform(1, 40)), self.now)
        case = {
            "case_no": case_no, "status": "closed", "channel": channel, "township": township, "village": village,
            "title": content[:30], "content": content, "urgent": False, "accepted_at": received_at,
            "finished_at": finished, "canonical": pool["docs"][pick], "outcome": "resolved",
            "reply": "已调解，双方达成协议。",
        }
        if self._lines:
            return self._closed_lines(case_no, received_at, finished, count, first_source, pick, channel,
                                      township, village)
        sources = []
        received, done = received_at.isoformat(), finished.isoformat()
        for i in range(count):
            source_channel = channel if i == 0 else rng.choice(("hotline", "app", "petition", "walkin"))
            reference = f"{source_channel[:2].upper()}{case_no.replace('-', '')}{i}"
            person = rng.randrange(POOL_SIZE)
            sources.append({
                "id": first_source + i, "case_no": case_no, "channel": source_channel, "reference": reference,
                "source_user": SOURCE_USERS[source_channel],
                "fingerprint": hashlib.sha256(reference.encode()).hexdigest(),
                "received_at": received, "submitted_at": received, "complainant_name": pool["names"][person],
                "complainant_phone": pool["phones"][person], "phone_hash": pool["phone_hashes"][person],
                "id_hash": None, "obligations": "[]",
                "answer": f'{{"case_no": "{case_no}", "status": "{"merged" if i else "received"}"}}',
                "merge": '{"score": 0.8, "reasons": ["bulk-loaded"]}' if i else None, "feedback_sent_at": done,
                "canonical": None, "urgent": False, "feedback": f'[{{"event": "case_closed", "at": "{done}"}}]',
                "history": None,
            })
        return case, sources

    def _closed_lines(self, case_no, received_at, finished, count, first_source, pick, channel, township, village):
        """The same rows, written straight in COPY's text format (PostgreSQL): a million of
        them is most of a large load, and formatting field by field is its slowest part."""
        rng, pool = self.rng, self._pool
        received, done = received_at.isoformat(), finished.isoformat()
        case = (f"{case_no}\tclosed\t{channel}\t{township}\t{village or NULL}\t{pool['titles'][pick]}\t"
                f"{pool['contents'][pick]}\tf\t{received}\t{done}\t{pool['docs'][pick]}\tresolved\t{CLOSED_REPLY}\n")
        compact = case_no.replace("-", "")
        sources = []
        for i in range(count):
            source_channel = channel if i == 0 else rng.choice(("hotline", "app", "petition", "walkin"))
            reference = f"{source_channel[:2].upper()}{compact}{i}"
            person = rng.randrange(POOL_SIZE)
            answer = f'{{"case_no": "{case_no}", "status": "{"merged" if i else "received"}"}}'
            merge = '{"score": 0.8, "reasons": ["bulk-loaded"]}' if i else NULL
            sources.append(
                f"{first_source + i}\t{case_no}\t{source_channel}\t{reference}\t{SOURCE_USERS[source_channel]}\t"
                f"{hashlib.sha256(reference.encode()).hexdigest()}\t{received}\t{received}\t{pool['names'][person]}\t"
                f"{pool['phones'][person]}\t{pool['phone_hashes'][person]}\t{NULL}\t[]\t{answer}\t{merge}\t{done}\t"
                f"{NULL}\tf\t[{{\"event\": \"case_closed\", \"at\": \"{done}\"}}]\t{NULL}\n")
        return case, sources

    def _open_rows(self, items) -> dict:
        """Open cases through the real path, the CPU-heavy part spread over processes."""
        if self.processes > 1 and len(items) > 200:
            if self._workers is None:
                global _WORKER_PLACES
                _WORKER_PLACES = self.places  # inherited by the forked workers
                self._workers = multiprocessing.get_context("fork").Pool(self.processes, initializer=warm_up)
            size = max(1, len(items) // (self.processes * 4))
            results = self._workers.map(_index_rows, [items[i:i + size] for i in range(0, len(items), size)])
        else:
            results = [_index_rows(items, self.places)]
        out = {"cases": [], "sources": [], "profiles": [], "keys": []}
        for part in results:
            for name in out:
                out[name] += part[name]
        # A key two sources of one case share is one row, with the later time (as add_keys does).
        latest: dict[tuple[str, str], dict] = {}
        for row in out["keys"]:
            known = latest.get((row["case_no"], row["key"]))
            if known is None or row["opened_at"] > known["opened_at"]:
                latest[(row["case_no"], row["key"])] = row
        out["keys"] = list(latest.values())
        return out

    # -- writing ------------------------------------------------------------------
    def _copy(self, conn, table, columns, rows) -> None:
        if not rows:
            return
        if conn.dialect.name != "postgresql":  # values are final (encrypted already): no type processing
            marks = ", ".join("?" for _ in columns)
            conn.exec_driver_sql(f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})",
                                 [tuple(_sqlite_value(name, row.get(name)) for name in columns) for row in rows])
            return
        buffer = io.StringIO()
        write = buffer.write
        for row in rows:
            if isinstance(row, str):  # written out already (_closed_lines)
                write(row)
                continue
            write("\t".join([_render(row.get(name)) for name in columns]))
            write("\n")
        buffer.seek(0)
        cursor = conn.connection.driver_connection.cursor()
        cursor.copy_expert(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN", buffer)

    def _sequences(self, conn, sequences: dict) -> None:
        """Case numbers go on from the loaded ones, so live submissions never collide with them."""
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(CaseSequence.__table__)
        later = (func.greatest if conn.dialect.name == "postgresql" else func.max)(
            CaseSequence.__table__.c.last, stmt.excluded.last)
        conn.execute(stmt.on_conflict_do_update(index_elements=["day"], set_={"last": later}),
                     [{"day": day, "last": last} for day, last in sequences.items()])
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT setval(pg_get_serial_sequence('sources', 'id'), (SELECT max(id) FROM sources))"))

    def _drop_indexes(self) -> None:
        """Secondary indexes, unique and foreign keys, and the merge index's primary keys go
        before a large load and come back after it: building them once from sorted data is
        much faster than keeping them up row by row."""
        with self.db.engine.begin() as conn:
            for table in BULK_TABLES:
                for constraint in _deferred(table):
                    conn.execute(text(f'ALTER TABLE {table.name} DROP CONSTRAINT IF EXISTS "{constraint.name}"'))
                for index in table.indexes:
                    conn.execute(text(f'DROP INDEX IF EXISTS "{index.name}"'))

    def _create_indexes(self) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(text("SET maintenance_work_mem = '256MB'"))
            for table in BULK_TABLES:
                for index in table.indexes:
                    index.create(conn, checkfirst=True)
            for table in BULK_TABLES:
                for constraint in sorted(_deferred(table), key=lambda c: isinstance(c, ForeignKeyConstraint)):
                    conn.execute(AddConstraint(constraint))

    def _analyze(self) -> None:
        engine = self.db.engine
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE merge_keys"))
                conn.execute(text("VACUUM ANALYZE merge_profiles"))
                conn.execute(text("ANALYZE cases"))
                conn.execute(text("ANALYZE sources"))
        else:
            with engine.begin() as conn:
                conn.execute(text("ANALYZE"))


_WORKER_PLACES = None
NULL = "\\N"
CLOSED_REPLY = "已调解，双方达成协议。"
REBUILD_FROM = 50_000
BULK_TABLES = (Case.__table__, Source.__table__, MergeKey.__table__, MergeProfileRow.__table__)


def _deferred(table) -> list:
    """The constraints a large load drops and adds again: unique and foreign keys everywhere,
    primary keys of the merge index (cases and sources keep theirs: the index refers to them)."""
    kinds = (UniqueConstraint, ForeignKeyConstraint)
    if table.name in ("merge_keys", "merge_profiles"):
        kinds += (PrimaryKeyConstraint,)
    return [c for c in table.constraints if isinstance(c, kinds)]



_TIMESTAMPS = ("received_at", "published_at", "posted_at", "reported_at", "visited_at")


def _as_validated(channel: str, payload: dict) -> dict:
    """The generator's payloads are valid by construction: what the channel schema would load
    (aware datetimes), without paying for the schema on a hundred thousand of them."""
    data = {k: (datetime.fromisoformat(v) if k in _TIMESTAMPS else v) for k, v in payload.items()}
    data["unknown_fields"] = []
    return data


def _index_rows(items, places=None) -> dict:
    """For open cases: canonical case, source, merge profile and keys, as the service makes them."""
    places = places or _WORKER_PLACES
    config = MergeConfig()
    digest = rules_digest(config.rules_path)
    out = {"cases": [], "sources": [], "profiles": [], "keys": []}
    for source_id, case_no, index, channel, payload, at in items:
        now = at + timedelta(minutes=5)
        case = canonical.to_canonical(channel, _as_validated(channel, payload), places, now)
        stored = {**case, "received_at": case["received_at"].isoformat()}
        complainant = case["complainant"] or {}
        document = privacy.encrypt(json.dumps(stored, ensure_ascii=False, default=str))
        if index == 0:
            out["cases"].append({
                "case_no": case_no, "status": "open", "channel": channel, "township": case["township"],
                "village": case["village"], "title": case["title"][:200], "content": case["content"],
                "urgent": case["urgent"], "accepted_at": now, "finished_at": None,
                "canonical": document, "outcome": None, "reply": None,
            })
        out["sources"].append({
            "id": source_id, "case_no": case_no, "channel": channel, "reference": case["reference"],
            "source_user": SOURCE_USERS[channel], "fingerprint": hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest(),
            "received_at": case["received_at"], "submitted_at": now,
            "complainant_name": privacy.encrypt(complainant.get("name")),
            "complainant_phone": privacy.encrypt(complainant.get("phone")),
            "phone_hash": privacy.keyed_hash(complainant.get("phone"), "phone"),
            "id_hash": privacy.keyed_hash(complainant.get("id_number"), "id_number"),
            "obligations": case["obligations"],
            "answer": {"case_no": case_no, "status": "merged", "merged_into": case_no} if index
            else {"case_no": case_no, "status": "received"},
            "merge": {"score": 0.8, "reasons": ["bulk-loaded"]} if index else None, "feedback_sent_at": None,
            "canonical": document, "urgent": case["urgent"], "feedback": None, "history": None,
        })
        profile = profile_from_case(case_no, case)
        row = profile.to_row()
        address = row.pop("address", None)
        out["profiles"].append({
            "source_id": source_id, "case_no": case_no, "opened_at": profile.opened_at, "profile": row,
            "address": privacy.encrypt(address) if address else None,
            "features": features_to_json(profile_features(profile, config)), "rules_digest": digest,
        })
        for key in sorted(merge_keys(profile, config)):
            out["keys"].append({"case_no": case_no, "key": key, "opened_at": profile.opened_at})
    return out


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_RENDER = {
    type(None): lambda v: "\\N",
    str: lambda v: v.translate(_COPY_ESCAPES),
    bool: lambda v: "t" if v else "f",
    int: str,
    float: repr,
    datetime: lambda v: v.isoformat(),
    dict: lambda v: json.dumps(v, ensure_ascii=False, default=str).translate(_COPY_ESCAPES),
    list: lambda v: json.dumps(v, ensure_ascii=False, default=str).translate(_COPY_ESCAPES),
}


def _render(value) -> str:
    """One field in COPY's text format (aware datetimes, JSON for dicts and lists)."""
    return _RENDER[type(value)](value)


_DATETIME_COLUMNS = {"received_at", "submitted_at", "feedback_sent_at", "accepted_at", "finished_at", "opened_at"}


def _sqlite_value(name: str, value):
    if name in _DATETIME_COLUMNS and isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return value
