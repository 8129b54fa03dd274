"""The event hop's two processes (see tests/bench/hop.py); eventlet-patched, so never imported by the bench.

A toy producer (named intake) commits `case_received` events one transaction each
from concurrent green threads, through `uow.emit` (outbox) and its relay; a toy
consumer (named routing) in its own process handles them with `@handle` and
`db.handling` (inbox + one effect row). Throughput = events / (last effect committed
- first emit), both sides running at once, as in the flow.

Run as its own process (`python -m tests.bench.hop_worker measure N`): it needs eventlet's monkey patch,
which the rest of the benchmark must not have.
"""
from __future__ import annotations

import eventlet

eventlet.monkey_patch()

import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from sqlalchemy import func, select  # noqa: E402

from services.common.dependencies import DatabaseProvider  # noqa: E402
# the reliability core's own toy producer (intake) and consumer (routing: inbox + one effect row)
from tests.integration.test_messaging import (  # noqa: E402
    ConsumerBase,
    Effect,
    ProducerBase,
    ToyConsumer,
    ToyProducer,
    case_received,
)


def _config(amqp_uri: str, urls: dict) -> dict:
    from services.common import config

    return config.nameko_config({"AMQP_URI": amqp_uri, "DATABASES": urls})


def serve_consumer(amqp_uri: str, urls: dict) -> None:
    from nameko.runners import ServiceRunner
    from psycogreen.eventlet import patch_psycopg

    patch_psycopg()
    runner = ServiceRunner(_config(amqp_uri, urls))
    runner.add_service(ToyConsumer)
    runner.start()
    print("ready", flush=True)
    from eventlet.hubs import trampoline

    trampoline(sys.stdin.fileno(), read=True)  # green: until the parent closes our stdin
    runner.stop()


def measure(amqp_uri: str, urls: dict, events: int, concurrency: int = 10) -> dict:
    from nameko.containers import ServiceContainer
    from psycogreen.eventlet import patch_psycopg

    from services.common.clock import SystemClock
    from services.common.db import Database

    patch_psycopg()
    producer_db = Database(urls["intake"], ProducerBase.metadata, "intake", SystemClock())
    consumer_db = Database(urls["routing"], ConsumerBase.metadata, "routing", SystemClock())
    producer_db.create_all()
    consumer_db.create_all()
    consumer = subprocess.Popen([sys.executable, "-m", "tests.bench.hop_worker", "consumer", amqp_uri, json.dumps(urls)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    container = ServiceContainer(ToyProducer, _config(amqp_uri, urls))
    container.start()
    try:
        if consumer.stdout.readline().strip() != "ready":
            raise RuntimeError("the hop consumer did not start")
        db = next(e for e in container.extensions if isinstance(e, DatabaseProvider)).db
        content = "邻居盖房占了我家宅基地半米，找村里调解两回没用，请求调解。" * 8
        db_names = [urls["intake"].rsplit("/", 1)[1], urls["routing"].rsplit("/", 1)[1]]
        cpu_before, pg_before = _cpu([os.getpid(), consumer.pid]), _postgres_cpu(db_names)

        def emit(i):
            with db.transaction() as uow:
                uow.emit("case_received", case_received(f"H{i:07d}", content), correlation_id=f"H{i:07d}")

        pool = eventlet.GreenPool(concurrency)
        began = time.monotonic()
        for i in range(events):
            pool.spawn_n(emit, i)
        pool.waitall()
        emitted = time.monotonic()
        deadline = emitted + 120
        while True:
            with consumer_db.reading() as session:
                done = session.scalar(select(func.count()).select_from(Effect))
            if done >= events or time.monotonic() > deadline:
                break
            eventlet.sleep(0.02)
        finished = time.monotonic()
        cpu = _cpu([os.getpid(), consumer.pid]) - cpu_before
        pg_cpu = _postgres_cpu(db_names) - pg_before
    finally:
        container.stop()
        consumer.stdin.close()
        consumer.wait(30)
        producer_db.dispose()
        consumer_db.dispose()
    return {
        "event_hop_msgs_per_s": round(done / (finished - began)),
        "event_hop_emit_per_s": round(events / (emitted - began)),
        "event_hop_cpu_ms_per_msg": round(cpu * 1000 / max(1, done), 2),
        "event_hop_postgres_cpu_ms_per_msg": round(pg_cpu * 1000 / max(1, done), 2),
        "event_hop_handled": done,
    }


def _postgres_cpu(db_names) -> float:
    from tests.bench.common import postgres_database, processes

    return sum(cpu for _pid, args, cpu in processes() if postgres_database(args, db_names))


def _cpu(pids) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def main(argv) -> None:
    if argv[0] == "consumer":
        serve_consumer(argv[1], json.loads(argv[2]))
        return
    from tests.conftest import Databases
    from tests.harness import create_vhost, delete_vhost

    from tests.bench.common import amqp_uri

    vhost = create_vhost("lanling_bench_hop")
    dbs = Databases(Path(tempfile.mkdtemp(prefix="lanling-hop-")), True)
    try:
        from services.common.broker import ConfirmedPublisher

        publisher = ConfirmedPublisher(amqp_uri(vhost))
        publisher.declare_topology()
        publisher.close()
        result = measure(amqp_uri(vhost), dbs.urls, int(argv[1]))
    finally:
        delete_vhost(vhost)
        dbs.drop()
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
