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
