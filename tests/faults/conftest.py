"""The fault suite's world: a private broker and database, the proxy between them and the services,
the services as one process each (so each can be killed alone), and the stream of cases."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from tests.faults.infra import PrivatePostgres, PrivateRabbit
from tests.faults.proxy import ProxyControl
from tests.harness import ROOT, System, free_port, wait_until

SERVICES = ("intake", "routing", "mediation", "psych", "notify", "gateway")
SOURCE_USER = "faultsrc"


_CONFIG = {}


def say(message: str) -> None:
    """Progress on the terminal as it happens, past pytest's capture (CI shows where it is)."""
    line = f"[faults {time.strftime('%H:%M:%S')}] {message}"
    capture = _CONFIG["config"].pluginmanager.getplugin("capturemanager") if _CONFIG else None
    if capture is None:
        print(line, file=sys.stderr, flush=True)
        return
    with capture.global_and_fixture_disabled():
        print(line, file=sys.stderr, flush=True)


@pytest.fixture(scope="session", autouse=True)
def _terminal(pytestconfig):
    _CONFIG["config"] = pytestconfig
    yield
    _CONFIG.clear()


def pytest_terminal_summary(terminalreporter):
    """The figures, whether the suite passed or not."""
    for line in REPORT:
        terminalreporter.write_line(line)


REPORT: list[str] = []


class Platform:
    """Everything the suite starts, with the handles to hurt it."""

    def __init__(self, base: Path):
        self.base = base
        self.rabbit = PrivateRabbit(base)
        self.postgres = PrivatePostgres(base)
        self.proxy_port, self.proxy_control_port = free_port(), free_port()
        self.proxy_process: subprocess.Popen | None = None
        self.proxy = ProxyControl(self.proxy_control_port)
        self.system: System | None = None
        self.db_urls: dict[str, str] = {}
        self.load_process: subprocess.Popen | None = None
        self.load_out = base / "accepted.jsonl"
        self.stop_file = base / "stop-load"
        self.source_password = uuid.uuid4().hex

    # -- setting up -----------------------------------------------------------------
    def start(self) -> None:
        began = time.monotonic()
        self.postgres.start()
        self.rabbit.start()
        say(f"private RabbitMQ {self.rabbit.node} on {self.rabbit.port} (management {self.rabbit.management_port}), "
            f"PostgreSQL on {self.postgres.port}, after {time.monotonic() - began:.0f}s")
        self.proxy_process = subprocess.Popen(
            [sys.executable, "-m", "tests.faults.proxy", str(self.proxy_port), str(self.rabbit.port),
             str(self.proxy_control_port)], cwd=ROOT, stdout=subprocess.PIPE, start_new_session=True)
        self.proxy_process.stdout.readline()  # listening
        self.db_urls = {s: self.postgres.create_database(f"lanling_faults_{s}") for s in SERVICES}
        env = {
            "AMQP_HEARTBEAT": "5",             # a frozen or cut-off peer is noticed within ~10 s
            "RPC_TIMEOUT": "5",
            "RETRY_DELAYS_MS": "200,1000,3000,10000,30000",
            "NOTIFY_QUIET_HOURS": "00:00-00:00",  # no SMS held for the morning, whatever the hour
            "NOTIFY_SWEEP_SECONDS": "2",
            "NOTIFY_CLAIM_SECONDS": "30",
            "NOTIFY_RETRY_INITIAL_SECONDS": "1",
            "NOTIFY_RETRY_MAX_SECONDS": "5",
            "MEDIATION_TIMER_SECONDS": "5",
            "LANLING_DATA_KEYS": os.environ["LANLING_DATA_KEYS"],
            "LANLING_HASH_KEY": os.environ["LANLING_HASH_KEY"],
            "LANLING_TOKEN_SECRET": os.environ["LANLING_TOKEN_SECRET"],
            "LANLING_STAFF_INITIAL_PASSWORD": os.environ["LANLING_STAFF_INITIAL_PASSWORD"],
        }
        # the services reach the broker through the proxy; the CLI and outside systems directly
        self.system = System(self.base / "system", db_urls=self.db_urls, env=env,
                             amqp_uri=self.rabbit.uri(self.proxy_port))
        direct = dict(self.system.env, AMQP_URI=self.rabbit.uri())
        for args in (("migrate",), ("declare",), ("load-reference",),
                     ("sources", "add", SOURCE_USER, "--channels", "hotline,petition,opinion,app,grid,walkin")):
            subprocess.run([str(Path(sys.executable).parent / "lanling"), *args], env=direct, cwd=ROOT, check=True,
                           capture_output=True, text=True, timeout=300)
        from services.intake import admin

        self.rabbit.add_user(SOURCE_USER, self.source_password, admin.broker_permissions(SOURCE_USER))
        for service in SERVICES:
            self.system.start(service)
        self.system.wait_healthy(timeout=240)
        say(f"services healthy after {time.monotonic() - began:.0f}s")

    def start_load(self, rate: float) -> None:
        settings = {
            "base_url": self.system.base_url, "api_key": self.system.api_key,
            "amqp_uri": self.rabbit.uri(user=SOURCE_USER, password=self.source_password), "user": SOURCE_USER,
            "rate": rate, "out": str(self.load_out), "stop_file": str(self.stop_file),
            "seed": int(os.environ.get("FAULTS_SEED", "11")), "run_id": uuid.uuid4().hex[:4].upper(),
        }
        self.load_log = open(self.base / "load.log", "ab")
        self.load_process = subprocess.Popen([sys.executable, "-m", "tests.faults.load"], cwd=ROOT,
                                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.load_log,
                                             env=dict(os.environ, PYTHONWARNINGS="ignore"), start_new_session=True)
        self.load_process.stdin.write(json.dumps(settings).encode())
        self.load_process.stdin.close()
        self.load_process.stdin = None

    def stop_load(self, timeout: float = 300) -> dict:
        self.stop_file.touch()
        out, _ = self.load_process.communicate(timeout=timeout)
        if self.load_process.returncode != 0:
            raise RuntimeError(f"the load generator failed ({self.load_process.returncode}): "
                               f"{(self.base / 'load.log').read_text()[-3000:]}")
        return json.loads(out.decode().strip().splitlines()[-1])

    def answers(self) -> list[dict]:
        if not self.load_out.exists():
            return []
        return [json.loads(line) for line in self.load_out.read_text(encoding="utf-8").splitlines() if line.strip()]

    # -- tearing down ---------------------------------------------------------------
    def teardown(self) -> None:
        for step in (self._stop_load, self._stop_system, self._stop_proxy, self.rabbit.stop, self.postgres.teardown):
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - tear down the rest regardless
                say(f"teardown: {step.__name__}: {exc!r}")

    def _stop_load(self):
        if self.load_process is not None and self.load_process.poll() is None:
            os.killpg(self.load_process.pid, signal.SIGKILL)
            self.load_process.wait()

    def _stop_system(self):
        if self.system is not None:
            for proc in self.system.processes.values():  # a frozen one would ignore SIGINT
                if proc.poll() is None:
                    try:
                        os.killpg(proc.pid, signal.SIGCONT)
                    except ProcessLookupError:
                        pass
            self.system.stop()

    def _stop_proxy(self):
        if self.proxy_process is not None and self.proxy_process.poll() is None:
            os.killpg(self.proxy_process.pid, signal.SIGKILL)
            self.proxy_process.wait()


@pytest.fixture(scope="session")
def platform():
    # not pytest's tmp_path: its parents are private to us, and the broker and the database
    # run as their own users, who must reach their directories
    base = Path(tempfile.mkdtemp(prefix="lanling-faults-"))
    os.chmod(base, 0o755)
    world = Platform(base)
    try:
        world.start()
        yield world
    finally:
        world.teardown()
        if os.environ.get("FAULTS_KEEP"):
            say(f"logs kept under {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


__all__ = ["Platform", "say", "wait_until"]
