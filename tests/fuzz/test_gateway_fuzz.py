"""schemathesis against the real gateway with the real services behind it (issue 8, part 3).

Every operation of the OpenAPI document gets up to FUZZ_EXAMPLES generated requests (1,000 by
default; positive and negative data, coverage and fuzzing phases), authenticated so they pass
authentication: the operator key, and for the few operations only a staff member has (their
inbox, a counsellor's offers and sessions) a real staff token. The checks: no 5xx, every status
code documented, JSON where JSON is promised, and error bodies in the documented shape.

Operations are split into FUZZ_SHARDS schemathesis processes, because generation is CPU-bound
in one Python process and the gateway is not the bottleneck.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time

import pytest
import requests

from tests.conftest import running_system
from tests.harness import ROOT, System

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "1000"))
SHARDS = int(os.environ.get("FUZZ_SHARDS", "3"))
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
PASSWORD = os.environ.get("LANLING_STAFF_INITIAL_PASSWORD", "test-initial-password")
# Operations the operator key may not use: they act as one staff member.
AS_STAFF = {
    "GET /api/v1/inbox": "mediator",
    "POST /api/v1/inbox/read": "mediator",
    "POST /api/v1/inbox/{message_id}/read": "mediator",
    "GET /api/v1/notify/opt-outs": "mediator",
    "POST /api/v1/psych/offers/{offer_id}/accept": "counsellor",
    "POST /api/v1/psych/offers/{offer_id}/decline": "counsellor",
    "POST /api/v1/psych/cases/{case_no}/sessions": "counsellor",
}


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    if os.environ.get("FUZZ_BASE_URL"):  # a system already running (`make run`), while developing
        running = System.__new__(System)
        running.base_url, running.api_key = os.environ["FUZZ_BASE_URL"], os.environ["LANLING_API_KEY"]
        running.log_tail = lambda lines=60: ""
        yield running
        return
    with running_system(tmp_path_factory.mktemp("fuzz"), timeout=240) as sys_:
        yield sys_


def login(system, username: str) -> str:
    response = system.post("/api/v1/auth/login", {"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return response.json()["token"]


def operations(system) -> list[str]:
    document = requests.get(system.base_url + "/api/v1/openapi.json", timeout=30).json()
    return sorted(f"{method.upper()} {path}" for path, ops in document["paths"].items() for method in ops
                  if method in ("get", "post", "put", "patch", "delete"))


def shard(names: list[str], n: int) -> list[list[str]]:
    shards = [[] for _ in range(n)]
    for i, name in enumerate(names):
        shards[i % n].append(name)
    return [s for s in shards if s]


def st_run(system, names: list[str], header: str, workdir, label: str, seed: int) -> subprocess.Popen:
    argv = [sys.executable, "-m", "tests.fuzz.st_cli", "run", f"{system.base_url}/api/v1/openapi.json",
            "-H", header, "--max-examples", str(EXAMPLES), "--workers", "2", "--checks", CHECKS,
            "--no-shrink", "--generation-database", "none", "--seed", str(seed), "--phases", "coverage,fuzzing",
            "--suppress-health-check", "all", "--request-timeout", "30", "--no-color",
            "--report", "json", "--report-json-path", str(workdir / f"{label}.json")]
    for name in names:
        argv += ["--include-name", name]
    env = {**os.environ, "FUZZ_COUNTS": str(workdir / f"{label}.counts.json")}
    return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=open(workdir / f"{label}.log", "wb"),
                            stderr=subprocess.STDOUT)


def test_no_generated_request_gets_a_5xx_or_an_undocumented_answer(system, tmp_path):
    names = operations(system)
    counsellors = system.get("/api/v1/psych/counsellors").json()
    tokens = {"mediator": login(system, "mc-01-1"),
              "counsellor": login(system, counsellors["items"][0]["id"].lower())}
    seed = int(os.environ.get("FUZZ_SEED") or random.randrange(2**32))
    runs = {}
    for i, group in enumerate(shard([n for n in names if n not in AS_STAFF], SHARDS)):
        runs[f"operator-{i}"] = (group, f"X-Api-Key: {system.api_key}")
    for role in sorted(set(AS_STAFF.values())):
        runs[role] = ([n for n in names if AS_STAFF.get(n) == role], f"Authorization: Bearer {tokens[role]}")
    started = time.monotonic()
    procs = {label: st_run(system, group, header, tmp_path, label, seed) for label, (group, header) in runs.items()}
    for proc in procs.values():
        proc.wait(timeout=3600)
    elapsed = time.monotonic() - started

    counts, failures, generated = {}, [], 0
    for label, proc in procs.items():
        report = json.loads((tmp_path / f"{label}.json").read_text())
        generated += report["test_cases"]["generated"]
        for name, by_status in json.loads((tmp_path / f"{label}.counts.json").read_text()).items():
            for code, n in by_status.items():  # schemathesis also probes a few operations of other shards
                counts.setdefault(name, {}).setdefault(code, 0)
                counts[name][code] += n
        if proc.returncode != 0:
            failures.append(f"{label}: exit {proc.returncode}, {report['failures'] or report['errors']}\n"
                            + (tmp_path / f"{label}.log").read_text(errors="replace")[-6000:])
    total = sum(sum(c.values()) for c in counts.values())
    print(f"\nfuzz: seed {seed}, {len(names)} operations, {generated} cases generated, {total} requests "
          f"in {elapsed:.0f} s ({total / elapsed:.0f} requests/s)")
    for name in names:
        c = counts.get(name, {})
        print(f"  {sum(c.values()):6d}  {name}  {dict(sorted(c.items()))}")
    server_errors = {name: c for name, c in counts.items() if any(code.startswith("5") and code != "503"
                                                                   for code in c)}
    assert not failures, "\n\n".join(failures) + "\n" + system.log_tail(40)
    assert not server_errors, server_errors
    assert set(counts) >= set(names), f"operations never called: {sorted(set(names) - set(counts))}"
    unavailable = sum(c.get("503", 0) for c in counts.values())
    assert unavailable == 0, f"{unavailable} requests answered 503: a service did not answer in time"


BAD_BODIES = [  # (content type, body): what a generator from the schema does not send
    ("application/json", b'{"a": ' * 5000 + b"1" + b"}" * 5000),      # deeper than the parser's recursion
    ("application/json", b"[" * 3000 + b"]" * 3000),
    ("application/json", b'{"content": "\xff\xfe\xc3\x28"}'),            # invalid UTF-8
    ("application/json", b'{"content": "\\ud800"}'),                     # a lone surrogate, escaped
    ("application/json", b" " * (300 * 1024)),                           # above the body limit
    ("application/json", b""),
    ("application/json", b"null"),
    ("application/json", b'{"a": NaN, "b": Infinity}'),
    ("application/json", b'{"__proto__": {"admin": true}, "constructor": null}'),
    ("application/json", json.dumps({name: "\x00" for name in ("username", "password", "token", "reason", "rating",
                                                               "phone", "case_no", "ids", "name")}).encode()),
    ("application/json", b'{"username": "\\ud800", "token": "\\udfff", "reason": "a\\ud800b", "\\ud800": 1}'),
    ("application/json; charset=latin-1", '{"reason": "é"}'.encode("latin-1")),
    ("text/plain", b"reason=1"),
    ("application/x-www-form-urlencoded", b"a=1&b=%00"),
    ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--x--"),
    ("application/xml", b"<!DOCTYPE x [<!ENTITY a SYSTEM 'file:///etc/passwd'>]><x>&a;</x>"),
]


def test_hand_made_bad_bodies_on_every_write_operation_get_a_4xx(system):
    """Bodies outside any schema (nesting deeper than the parser allows, bad encodings, huge,
    empty, other media types) on every operation that takes one: a 4xx with the error shape."""
    document = requests.get(system.base_url + "/api/v1/openapi.json", timeout=30).json()
    tried, answers = 0, {}
    for path, ops in document["paths"].items():
        for method in ops:
            if method not in ("post", "put", "patch", "delete"):
                continue
            url = system.base_url + path.replace("{", "").replace("}", "")
            for content_type, body in BAD_BODIES:
                response = requests.request(method.upper(), url, data=body, timeout=30,
                                            headers={"X-Api-Key": system.api_key, "Content-Type": content_type})
                tried += 1
                answers.setdefault(response.status_code, []).append(f"{method.upper()} {path} {content_type}")
                if response.status_code >= 400:
                    error = response.json()
                    assert set(error) == {"error", "message", "fields"}, (method, path, error)
    for path, ops in document["paths"].items():  # a NUL in every query parameter and in the path
        for method, operation in ops.items():
            if method != "get":
                continue
            names = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"] or ["q"]
            url = system.base_url + path.replace("{", "%00").replace("}", "")
            response = requests.get(url, params={name: "a\x00b" for name in names}, timeout=30,
                                    headers={"X-Api-Key": system.api_key})
            tried += 1
            answers.setdefault(response.status_code, []).append(f"GET {path} NUL")
    print(f"\nhand-made bad bodies: {tried} requests, statuses {sorted((k, len(v)) for k, v in answers.items())}")
    server_errors = {code: where for code, where in answers.items() if code >= 500}
    assert not server_errors, server_errors
