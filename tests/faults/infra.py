"""A private RabbitMQ node and a private PostgreSQL cluster for the fault suite.

The suite stops, restarts and cuts off its broker and its database, so it never uses the
shared ones (5672, 5432): it starts its own node and cluster on free ports under a temporary
directory, and tears both down at the end. As root, RabbitMQ runs as the `rabbitmq` user and
PostgreSQL as `postgres` (initdb refuses root), each owning its part of the directory.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import uuid
from pathlib import Path

import requests

from tests.harness import free_port, wait_until


def _as_user(user: str) -> list[str]:
    """The command prefix that runs a program as `user` when we are root (nothing otherwise)."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(user)
    except KeyError:
        return []
    return ["runuser", "-u", user, "--"]


def _give(path: Path, user: str) -> None:
    if os.geteuid() == 0:
        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            return
        for root, dirs, files in os.walk(path):
            for name in [root, *(os.path.join(root, d) for d in dirs), *(os.path.join(root, f) for f in files)]:
                os.chown(name, entry.pw_uid, entry.pw_gid)


def _rabbit_bin(name: str) -> str:
    """The real script, not Debian's wrapper in /usr/sbin (it switches user and drops our environment)."""
    path = Path("/usr/lib/rabbitmq/bin") / name
    found = str(path) if path.exists() else shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} is not installed (apt install rabbitmq-server)")
    return found


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class PrivateRabbit:
    """`rabbitmq-server` as a node of its own (name, ports, mnesia, logs, config), with management."""

    def __init__(self, base: Path):
        self.dir = base / "rabbitmq"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.node = f"lanlingfault{uuid.uuid4().hex[:6]}@localhost"
        self.port, self.management_port, self.dist_port = free_port(), free_port(), free_port()
        self.management = f"http://guest:guest@127.0.0.1:{self.management_port}"
        self.process: subprocess.Popen | None = None
        self.home = pwd.getpwnam("rabbitmq").pw_dir if _as_user("rabbitmq") else os.environ.get("HOME", "/root")

    def uri(self, port: int | None = None, user: str = "guest", password: str = "guest") -> str:
        return f"amqp://{user}:{password}@127.0.0.1:{port or self.port}/"

    def _env(self) -> dict:
        d = self.dir
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin:/usr/sbin:/sbin"),
            "HOME": self.home,  # where the Erlang cookie the CLI uses lives
            "LANG": "C.UTF-8",
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(d / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
            "RABBITMQ_LOG_BASE": str(d / "log"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(d / "plugins-expand"),
        }

    def start(self, timeout: float = 120) -> None:
        d = self.dir
        (d / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.port}\n"
            f"management.tcp.ip = 127.0.0.1\nmanagement.tcp.port = {self.management_port}\n"
            # fresh queue depths for the in-flight checks (the default is every 5 s)
            "collect_statistics_interval = 500\n"
            "loopback_users = none\n"
        )
        (d / "rabbitmq-env.conf").write_text("")
        (d / "enabled_plugins").write_text("[rabbitmq_management].\n")
        _give(d, "rabbitmq")
        log = open(d / "server.log", "ab")
        self.process = subprocess.Popen([*_as_user("rabbitmq"), "env", *[f"{k}={v}" for k, v in self._env().items()],
                                         _rabbit_bin("rabbitmq-server")], stdout=log, stderr=subprocess.STDOUT,
                                        cwd="/tmp", start_new_session=True)
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 120) -> None:
        def ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited: {(self.dir / 'server.log').read_text()[-2000:]}")
            return requests.get(f"{self.management}/api/overview", timeout=2).status_code == 200 \
                and _port_open(self.port)

        wait_until(ready, timeout, interval=0.5, what=f"RabbitMQ node {self.node}")

    def ctl(self, *args: str, timeout: float = 120) -> str:
        run = subprocess.run([*_as_user("rabbitmq"), "env", *[f"{k}={v}" for k, v in self._env().items()],
                              _rabbit_bin("rabbitmqctl"), "-n", self.node, *args],
                             capture_output=True, text=True, timeout=timeout, cwd="/tmp")
        if run.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {run.stdout}{run.stderr}")
        return run.stdout

    def api(self, method: str, path: str, **kwargs):
        response = requests.request(method, f"{self.management}/api/{path}", timeout=10, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def add_user(self, name: str, password: str, permissions: dict) -> None:
        self.api("PUT", f"users/{name}", json={"password": password, "tags": ""})
        self.api("PUT", f"permissions/%2F/{name}", json=permissions)

    def queues(self) -> dict[str, dict]:
        """Depth of every queue: ready and unacknowledged messages (at most 0.5 s old)."""
        rows = self.api("GET", "queues/%2F?columns=name,messages,messages_ready,messages_unacknowledged,consumers")
        return {q["name"]: {"ready": q.get("messages_ready", 0) or 0, "unacked": q.get("messages_unacknowledged", 0) or 0,
                            "consumers": q.get("consumers", 0) or 0} for q in rows}

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            try:
                self.ctl("shutdown", timeout=60)
            except Exception:  # noqa: BLE001 - then the hard way
                pass
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()
        # the node's beam process runs in the server's session; make sure nothing of ours is left
        for pid in _pids_with(self.node):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass


def _pids_with(marker: str) -> list[int]:
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if marker.encode() in Path(entry.path, "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue
    return [p for p in pids if p != os.getpid()]


def postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if not initdb:
        raise RuntimeError("PostgreSQL's initdb is not installed (apt install postgresql)")
    return Path(initdb).parent


class PrivatePostgres:
    """A throwaway PostgreSQL cluster (initdb, trust auth) that the suite may restart."""

    def __init__(self, base: Path):
        self.dir = base / "postgres"
        self.data = self.dir / "data"
        self.port = free_port()
        self.bin = postgres_bin()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _ctl(self, *args: str, timeout: float = 120) -> None:
        subprocess.run([*_as_user("postgres"), str(self.bin / "pg_ctl"), "-D", str(self.data), "-l",
                        str(self.dir / "server.log"), *args], check=True, capture_output=True, timeout=timeout)

    def start(self) -> None:
        if not self.data.exists():
            self.dir.mkdir(parents=True, exist_ok=True)
            _give(self.dir, "postgres")
            subprocess.run([*_as_user("postgres"), str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust",
                            "-U", "postgres", "-E", "UTF8", "--no-sync"], check=True, capture_output=True, timeout=120)
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=400 "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=64MB")
        self._ctl("-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-m", mode, "-w", "stop")

    def create_database(self, name: str) -> str:
        from sqlalchemy import create_engine, text

        engine = create_engine(self.url().replace("postgresql://", "postgresql+psycopg2://"),
                               isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return self.url(name)

    def teardown(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self.stop("immediate")
            except Exception:  # noqa: BLE001
                pass
        shutil.rmtree(self.dir, ignore_errors=True)
