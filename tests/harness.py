"""Start the real processes the way `make run` does, in an isolated vhost and var/ directory.

Used by the e2e, fault and benchmark suites. Waiting is done by polling an observable
condition (health, a case's state) against a deadline, never by a fixed sleep.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
LANLING = str(Path(sys.executable).parent / "lanling")
MANAGEMENT = os.environ.get("RABBIT_API_URI", "http://guest:guest@127.0.0.1:15672")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def create_vhost(prefix: str = "lanling_e2e") -> str:
    vhost = f"{prefix}_{uuid.uuid4().hex[:8]}"
    requests.put(f"{MANAGEMENT}/api/vhosts/{vhost}", timeout=10).raise_for_status()
    requests.put(f"{MANAGEMENT}/api/permissions/{vhost}/guest",
                 json={"configure": ".*", "write": ".*", "read": ".*"}, timeout=10).raise_for_status()
    return vhost


def delete_vhost(vhost: str) -> None:
    requests.delete(f"{MANAGEMENT}/api/vhosts/{vhost}", timeout=30)


def wait_until(condition, timeout: float, interval: float = 0.1, what: str = "condition"):
    """Poll `condition()` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = condition()
        except (requests.RequestException, OSError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}; last: {last!r}")


class System:
    """The platform as processes: `lanling run` (all) or one process per service."""

    def __init__(self, workdir: Path, db_urls: dict | None = None, env: dict | None = None,
                 amqp_uri: str | None = None):
        self.workdir = workdir
        # a broker of the caller's own (the fault suite's private node), else a vhost on the shared one
        self.vhost = None if amqp_uri else create_vhost()
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.api_key = os.environ.get("LANLING_API_KEY", "test-operator-key")
        self.env = {
            **os.environ,
            "AMQP_URI": amqp_uri or f"amqp://guest:guest@127.0.0.1:5672/{self.vhost}",
            "LANLING_VAR": str(workdir / "var"),
            "GATEWAY_ADDRESS": f"127.0.0.1:{self.port}",
            "LANLING_API_KEY": self.api_key,
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        for service, url in (db_urls or {}).items():
            self.env[f"{service.upper()}_DB_URL"] = url
        self.processes: dict[str, subprocess.Popen] = {}
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)

    # -- processes --------------------------------------------------------------
    def _spawn(self, label: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.logs / f"{label}.log", "ab")
        proc = subprocess.Popen(argv, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.processes[label] = proc
        return proc

    def run_all(self) -> None:
        """Exactly what `make run` does after the virtualenv exists."""
        self._spawn("lanling-run", [LANLING, "run"])

    def lanling(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([LANLING, *args], env=self.env, cwd=ROOT, capture_output=True, text=True,
                              timeout=timeout, check=True)

    def start(self, service: str, label: str | None = None) -> subprocess.Popen:
        return self._spawn(label or service, [sys.executable, "-m", "services.common.runner", service])

    def kill(self, label: str, sig: int = signal.SIGKILL) -> None:
        proc = self.processes[label]
        os.killpg(proc.pid, sig)
        if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            proc.wait(timeout=60)

    def stop(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGINT)
                except ProcessLookupError:
                    pass
        for proc in self.processes.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if self.vhost:
            delete_vhost(self.vhost)

    def log_tail(self, lines: int = 60) -> str:
        out = []
        for path in sorted(self.logs.glob("*.log")):
            out.append(f"--- {path.name}")
            out += path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(out)

    # -- HTTP -------------------------------------------------------------------
    def headers(self, token: str | None = None) -> dict:
        return {"Authorization": f"Bearer {token}"} if token else {"X-Api-Key": self.api_key}

    def get(self, path: str, token: str | None = None, **kwargs) -> requests.Response:
        return requests.get(self.base_url + path, headers=self.headers(token), timeout=30, **kwargs)

    def post(self, path: str, body=None, token: str | None = None, **kwargs) -> requests.Response:
        return requests.post(self.base_url + path, json=body, headers=self.headers(token), timeout=30, **kwargs)

    def wait_healthy(self, timeout: float = 120) -> dict:
        def healthy():
            for label, proc in self.processes.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{label} exited with {proc.returncode}\n{self.log_tail()}")
            response = requests.get(self.base_url + "/api/v1/health", timeout=5)
            return response.json() if response.status_code == 200 else None

        return wait_until(healthy, timeout, interval=0.5, what="GET /api/v1/health == 200")

    def wait_case(self, case_no: str, predicate, timeout: float = 60, what: str = "case state") -> dict:
        def check():
            response = self.get(f"/api/v1/cases/{case_no}")
            if response.status_code != 200:
                return None
            view = response.json()
            return view if predicate(view) else None

        return wait_until(check, timeout, what=f"{case_no}: {what}")
