"""`make bench`: the whole flow measured next to the raw broker, on this machine, in one run.

Progress goes to stderr; the JSON summary is the last line of stdout and is also written
to bench-results/bench-<timestamp>.json. Sections (each can be skipped for a quick look,
e.g. `python -m tests.bench --only raw,hop`): raw, hop, sqlite, postgres, growth, scaleout, units.

Environment: BENCH_GROWTH_SIZES (default 1000,100000,1000000), BENCH_SECONDS (length of
each capacity burst, default 20), BENCH_KEEP=1 (keep the processes' logs), MAX_WORKERS and the other settings of the README reach
the services unchanged.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from tests.bench.common import ROOT, rounded, say

SECTIONS = ("raw", "hop", "sqlite", "postgres", "growth", "scaleout", "units")


def _environment() -> None:
    """Secrets for the processes the benchmark starts, never the developer's var/."""
    from cryptography.fernet import Fernet

    os.environ.setdefault("LANLING_DATA_KEYS", Fernet.generate_key().decode())
    os.environ.setdefault("LANLING_HASH_KEY", "bench-hash-key")
    os.environ.setdefault("LANLING_TOKEN_SECRET", "bench-token-secret")
    os.environ.setdefault("LANLING_API_KEY", "bench-operator-key")
    os.environ.setdefault("LANLING_STAFF_INITIAL_PASSWORD", "bench-initial-password")
    os.environ.setdefault("LANLING_VAR", tempfile.mkdtemp(prefix="lanling-bench-var-"))
    os.environ.setdefault("PYTHONWARNINGS", "ignore::UserWarning,ignore::DeprecationWarning")


def _burst_size(rate: float, seconds: float) -> int:
    """Submissions for a burst of about `seconds` (the warm-up's small batch under-estimates the rate)."""
    return int(min(6000, max(400, 1.5 * rate * seconds)))


def flow_run(workdir: Path, label: str, *, postgres: bool, seconds: float, latency: bool, scale=None,
             databases=None) -> dict:
    """Start the system, warm it up, measure capacity (and latency at a third of it), stop it."""
    from tests.bench import flow

    rs = flow.start(workdir / label, postgres=postgres, scale=scale, databases=databases, label=label)
    try:
        estimate = flow.warm_up(rs, label=label)
        result = flow.capacity(rs, _burst_size(estimate, seconds), label=label)
        if latency and result["cases_per_s"] > 0:
            result["latency"] = flow.latency(rs, max(1.0, result["cases_per_s"] / 3), seconds, label=label)
        return result
    finally:
        rs.databases = None if databases is not None else rs.databases  # the caller owns shared databases
        rs.stop()


def slowest_service(by_process: dict[str, float]) -> str:
    services = {k: v for k, v in by_process.items() if k in ("intake", "routing", "mediation", "notify", "psych")}
    return max(services, key=services.get)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench")
    parser.add_argument("--only", help=f"comma-separated sections of {','.join(SECTIONS)}")
    args = parser.parse_args(argv)
    only = set(args.only.split(",")) if args.only else set(SECTIONS)
    _environment()
    seconds = float(os.environ.get("BENCH_SECONDS", "20"))
    sizes = [int(s) for s in os.environ.get("BENCH_GROWTH_SIZES", "1000,100000,1000000").split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="lanling-bench-"))
    began = time.monotonic()
    out: dict = {"started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                 "machine": {"cores": os.cpu_count(), "load_average_at_start": os.getloadavg()},
                 "settings": {"MAX_WORKERS": os.environ.get("MAX_WORKERS", "10")}}

    if "raw" in only:
        from tests.bench import raw

        out.update(raw.run())
    if "hop" in only:
        from tests.bench import hop

        say("event hop: outbox -> relay -> @handle with inbox, PostgreSQL")
        figures = hop.run()
        say(f"event hop: {figures['event_hop_msgs_per_s']} msg/s, {figures['event_hop_cpu_ms_per_msg']} CPU ms each")
        out.update(figures)
    if "sqlite" in only:
        result = flow_run(workdir, "flow-sqlite", postgres=False, seconds=seconds, latency=False)
        out["flow_cases_per_s_sqlite"] = result["cases_per_s"]
        out["flow_sqlite"] = result
    pg_result = None
    if "postgres" in only:
        pg_result = flow_run(workdir, "flow-postgres", postgres=True, seconds=seconds, latency=True)
        lat = pg_result.get("latency", {})
        out.update({
            "flow_cases_per_s_postgres": pg_result["cases_per_s"],
            "flow_p50_ms": lat.get("p50_ms"), "flow_p95_ms": lat.get("p95_ms"), "flow_p99_ms": lat.get("p99_ms"),
            "flow_latency_rate_per_s": lat.get("rate_per_s"),
            "flow_cpu_ms_per_case_postgres": pg_result["cpu_ms_per_case"],
            "flow_postgres": pg_result,
        })
        if out.get("raw_kombu_msgs_per_s"):
            out["flow_vs_raw_ratio"] = pg_result["cases_per_s"] / out["raw_kombu_msgs_per_s"]
    if "growth" in only:
        out["growth"] = growth_runs(workdir, sizes, seconds)
    if "scaleout" in only:
        out.update(scale_out(workdir, seconds, pg_result))
    if "units" in only:
        out.update(unit_figures())

    out["bench_seconds"] = round(time.monotonic() - began)
    out["machine"]["load_average_at_end"] = os.getloadavg()
    summary = rounded(out, 3)
    results = ROOT / "bench-results"
    results.mkdir(exist_ok=True)
    path = results / f"bench-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(summary, ensure_ascii=False, indent=2) + "\n")
    if os.environ.get("BENCH_KEEP"):
        say(f"logs and SQLite files kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    say(f"done in {out['bench_seconds']} s; written to {path.relative_to(ROOT)}")
    print(json.dumps(summary, ensure_ascii=False), flush=True)


def growth_runs(workdir: Path, sizes: list[int], seconds: float) -> dict:
    """The flow on PostgreSQL with 10^3, 10^5, 10^6 cases already stored (grown in place)."""
    from tests.bench import growth
    from tests.conftest import Databases

    dbs = Databases(workdir / "growth", True)
    results: dict = {}
    try:
        growth.migrate(dbs.urls, dict(os.environ))
        loader = growth.Loader(dbs.urls)
        for size in sizes:
            load_s = loader.grow(size - loader.loaded)
            checks = loader.merge_check_ms()
            scan = loader.deadline_scan_ms()
            say(f"growth: {size:,} stored cases loaded in {load_s:.0f} s; duplicate check "
                f"{checks['merge_ms_per_submission']:.3f} ms ({checks['merge_check']}); deadline scan {scan:.3f} ms")
            result = flow_run(workdir, f"growth-{size}", postgres=True, seconds=seconds * 0.75, latency=False,
                              databases=dbs)
            results[str(size)] = {
                "flow_cases_per_s": result["cases_per_s"], "cpu_ms_per_case": result["cpu_ms_per_case"],
                "other_cores_busy": result["other_cores_busy"], "load_s": load_s, "deadline_scan_ms": scan,
                **checks,
            }
    finally:
        dbs.drop()
    small, large = str(min(sizes)), str(max(sizes))
    if small != large and results[small]["flow_cases_per_s"]:
        results["flow_ratio_largest_to_smallest"] = results[large]["flow_cases_per_s"] / results[small]["flow_cases_per_s"]
        results["cpu_ratio_largest_to_smallest"] = results[large]["cpu_ms_per_case"] / results[small]["cpu_ms_per_case"]
    return results


def scale_out(workdir: Path, seconds: float, pg_result: dict | None) -> dict:
    """Throughput with 1 and 2 replicas of the service that costs the most CPU per case."""
    if pg_result is None:
        pg_result = flow_run(workdir, "scale-probe", postgres=True, seconds=seconds / 2, latency=False)
    service = slowest_service(pg_result["cpu_ms_per_case_by_process"])
    say(f"scale-out: the busiest service is {service}")
    one = flow_run(workdir, "scale-1", postgres=True, seconds=seconds * 0.75, latency=False)
    two = flow_run(workdir, "scale-2", postgres=True, seconds=seconds * 0.75, latency=False, scale={service: 2})
    return {"scale_out_service": service, "scale_out_cases_per_s_1": one["cases_per_s"],
            "scale_out_cases_per_s_2": two["cases_per_s"],
            "scale_out_ratio": two["cases_per_s"] / one["cases_per_s"] if one["cases_per_s"] else None}


def unit_figures() -> dict:
    """Other issues' pure-logic benchmarks, in-process (cheap)."""
    figures = {}
    try:
        from services.psych.match import benchmark as psych_benchmark

        figures.update({k: v for k, v in psych_benchmark().items() if k.startswith("psych_match")})
    except Exception as exc:  # noqa: BLE001 - a missing figure is reported, not fatal
        say(f"psych matching benchmark failed: {exc!r}")
    try:
        from services.routing.decide import bench as routing_bench

        figures.update({f"routing_{k}": v for k, v in routing_bench().items()})
    except Exception as exc:  # noqa: BLE001
        say(f"routing decide benchmark failed: {exc!r}")
    try:
        from services.mediation.timers import benchmark as timers_benchmark

        figures["mediation_timers_us_per_case"] = timers_benchmark()["microseconds_per_case"]
    except Exception as exc:  # noqa: BLE001
        say(f"mediation timers benchmark failed: {exc!r}")
    say("units: " + ", ".join(f"{k}={v}" for k, v in figures.items()))
    return figures


if __name__ == "__main__":
    sys.exit(main())
