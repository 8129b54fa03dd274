"""Configuration from the environment, with working local defaults.

Every setting can be given as an environment variable; nothing is read at
import time, so tests and the CLI can set the environment first.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("intake", "routing", "mediation", "psych", "notify", "gateway")

DEFAULTS = {
    "AMQP_URI": "amqp://guest:guest@127.0.0.1:5672/",
    "GATEWAY_ADDRESS": "127.0.0.1:8000",
    "AMQP_HEARTBEAT": "15",
    "MAX_WORKERS": "10",
    "RPC_TIMEOUT": "10",
    # the first retry is short: most failures are ordering races (an event about a case whose
    # case_received another queue has not delivered yet), over within milliseconds
    "RETRY_DELAYS_MS": "200,1000,5000,30000,120000,600000",
    "OUTBOX_POLL_SECONDS": "1.0",
    "TZ_NAME": "Asia/Shanghai",
    # the broker's management API: queue depths and ages for the operations view (/metrics)
    "RABBIT_MANAGEMENT_URL": "http://guest:guest@127.0.0.1:15672",
}


def get(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name, DEFAULTS.get(name, default))


def get_int(name: str, default: int | None = None) -> int:
    value = get(name)
    return int(value) if value not in (None, "") else default


def get_float(name: str, default: float | None = None) -> float:
    value = get(name)
    return float(value) if value not in (None, "") else default


def var_dir() -> Path:
    path = Path(os.environ.get("LANLING_VAR", ROOT / "var"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def normalise_db_url(url: str) -> str:
    """PostgreSQL through psycopg2, which psycogreen makes cooperative under eventlet."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix):]
    return url


def db_url(service: str) -> str:
    """`<SERVICE>_DB_URL`, else `LANLING_DB_URL` with `{service}` filled in, else SQLite under var/."""
    explicit = os.environ.get(f"{service.upper()}_DB_URL")
    if explicit:
        return normalise_db_url(explicit)
    template = os.environ.get("LANLING_DB_URL")
    if template:
        return normalise_db_url(template.format(service=service))
    return f"sqlite:///{var_dir() / service}.db"


def _generate(name: str) -> str:
    if name == "LANLING_DATA_KEYS":
        from cryptography.fernet import Fernet

        return Fernet.generate_key().decode()
    return secrets.token_urlsafe(32)


def secret(name: str) -> str:
    """A secret from the environment; for local runs, one generated once under var/secrets/.

    Deployments must set these in the environment (docker-compose reads them from .env).
    """
    value = os.environ.get(name)
    if value:
        return value
    path = var_dir() / "secrets" / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(_generate(name))
        os.chmod(tmp, 0o600)
        try:
            os.link(tmp, path)  # atomic: the first process to create it wins
        except FileExistsError:
            pass
        tmp.unlink()
    return path.read_text().strip()


def retry_delays_ms() -> list[int]:
    return [int(x) for x in get("RETRY_DELAYS_MS").split(",") if x.strip()]


def nameko_config(overrides: dict | None = None) -> dict:
    """The config dict handed to nameko's ServiceRunner."""
    conf = {
        "AMQP_URI": get("AMQP_URI"),
        "HEARTBEAT": get_int("AMQP_HEARTBEAT"),
        "max_workers": get_int("MAX_WORKERS"),
        "WEB_SERVER_ADDRESS": get("GATEWAY_ADDRESS"),
        "RPC_TIMEOUT": get_float("RPC_TIMEOUT"),
        "RETRY_DELAYS_MS": retry_delays_ms(),
        "OUTBOX_POLL_SECONDS": get_float("OUTBOX_POLL_SECONDS"),
        "DATABASES": {service: db_url(service) for service in SERVICES},
        "serializer": "json",
    }
    conf.update(overrides or {})
    return conf
