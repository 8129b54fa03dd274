"""Small helpers shared by the benchmark's parts: progress on stderr, percentiles, paths."""
from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_STARTED = time.monotonic()


def say(message: str) -> None:
    """Progress goes to stderr; stdout is kept for the JSON summary."""
    print(f"[bench {time.monotonic() - _STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


def percentile(samples: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of unsorted samples; NaN for none."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def rounded(value, digits: int = 1):
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, digits)
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    return value


def shared_data(*parts: str) -> Path | None:
    """A file of the project's shared data (`../shared/data/...`), if this checkout has it nearby."""
    candidates = [Path(os.environ["LANLING_SHARED"])] if os.environ.get("LANLING_SHARED") else []
    candidates += [ROOT.parent / "shared", ROOT.parent.parent / "shared", Path("/work/shared")]
    for base in candidates:
        path = base.joinpath("data", *parts)
        if path.exists():
            return path
    return None


def management_url() -> str:
    return os.environ.get("RABBIT_API_URI", "http://guest:guest@127.0.0.1:15672")


def amqp_uri(vhost: str) -> str:
    base = os.environ.get("BENCH_AMQP_BASE", "amqp://guest:guest@127.0.0.1:5672")
    return f"{base}/{vhost}"


def processes():
    """(pid, argv, CPU seconds so far) of every process of the machine that can be read."""
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            args = [a.decode(errors="replace") for a in Path(entry.path, "cmdline").read_bytes().split(b"\0") if a]
            fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if args:
            yield int(entry.name), args, (int(fields[11]) + int(fields[12])) / tick


def postgres_database(args: list[str], db_names) -> str | None:
    """The database a PostgreSQL backend serves, when it is one of `db_names`."""
    if not args[0].startswith("postgres:"):
        return None
    return next((d for d in db_names if d in args[0]), None)


def environ_has(pid: int, entry: bytes) -> bool:
    try:
        return entry in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
