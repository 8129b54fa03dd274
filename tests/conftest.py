"""Shared fixtures.

Run with `nameko test` (it monkey-patches eventlet before pytest starts); unit tests also
run under plain pytest. Each test gets its own RabbitMQ vhost (nameko's `rabbit_config`
fixture, through the management API) and its own databases: SQLite files by default,
PostgreSQL databases when LANLING_TEST_DB=postgres (what CI's integration run uses).
"""
from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from services.common import config

# Secrets for the whole test session, so nothing touches ./var of the developer.
os.environ.setdefault("LANLING_DATA_KEYS", Fernet.generate_key().decode())
os.environ.setdefault("LANLING_HASH_KEY", "test-hash-key")
os.environ.setdefault("LANLING_TOKEN_SECRET", "test-token-secret")
os.environ.setdefault("LANLING_API_KEY", "test-operator-key")
os.environ.setdefault("LANLING_STAFF_INITIAL_PASSWORD", "test-initial-password")

PG_ADMIN_URL = config.normalise_db_url(os.environ.get("LANLING_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"))


@pytest.fixture(autouse=True, scope="session")
def _var_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("var")
    os.environ["LANLING_VAR"] = str(path)
    yield path


def using_postgres() -> bool:
    return os.environ.get("LANLING_TEST_DB", "sqlite") == "postgres"


class Databases:
    """One database per service for one test, on SQLite or PostgreSQL."""

    def __init__(self, tmp_path: Path, postgres: bool, services: tuple[str, ...] = config.SERVICES):
        self.tmp_path = tmp_path
        self.postgres = postgres
        self.created: list[str] = []
        self.urls = {service: self._create(service) for service in services}

    def _create(self, service: str) -> str:
        if not self.postgres:
            return f"sqlite:///{self.tmp_path / service}.db"
        from sqlalchemy import create_engine, text

        name = f"lanling_test_{service}_{uuid.uuid4().hex[:10]}"
        engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        self.created.append(name)
        return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"

    def drop(self):
        if not self.created:
            return
        from sqlalchemy import create_engine, text

        engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            for name in self.created:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@pytest.fixture
def databases(tmp_path):
    dbs = Databases(tmp_path, using_postgres())
    yield dbs
    dbs.drop()


@pytest.fixture
def postgres_databases(tmp_path):
    """For tests that need PostgreSQL whatever the run (several processes on one database)."""
    dbs = Databases(tmp_path, True)
    yield dbs
    dbs.drop()


@contextmanager
def running_system(workdir: Path, timeout: float = 180):
    """The real processes, started the way `make run` does, on PostgreSQL when CI says so."""
    from tests.harness import System

    dbs = Databases(workdir, True) if using_postgres() else None
    system = System(workdir, db_urls=dbs.urls if dbs else None)
    system.run_all()
    try:
        system.wait_healthy(timeout=timeout)
        yield system
    finally:
        system.stop()
        if dbs:
            dbs.drop()
