"""Integration fixtures: real RabbitMQ (a vhost per test) and real databases."""
from __future__ import annotations

import pytest
from eventlet import patcher

from tests.conftest import using_postgres

if not patcher.is_monkey_patched("socket"):
    pytest.exit("integration tests need eventlet's monkey patch: run them with `nameko test`", returncode=2)

if using_postgres():
    from psycogreen.eventlet import patch_psycopg

    patch_psycopg()


@pytest.fixture
def service_config(rabbit_config, databases):
    from services.common import config

    return config.nameko_config({
        "AMQP_URI": rabbit_config["AMQP_URI"],
        "DATABASES": databases.urls,
        "RETRY_DELAYS_MS": [50, 100],
        "OUTBOX_POLL_SECONDS": 0.2,
        "HEARTBEAT": 10,
        "RPC_TIMEOUT": 5.0,
        "WEB_SERVER_ADDRESS": "127.0.0.1:0",
    })


@pytest.fixture
def amqp(rabbit_config):
    """A kombu connection to the test's vhost, for publishing and peeking like an outside system."""
    from kombu import Connection

    with Connection(rabbit_config["AMQP_URI"]) as conn:
        yield conn
