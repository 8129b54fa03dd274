"""The reliability core on a real broker: outbox, inbox, retry and dead letters.

A toy producer (named intake) and consumer (named routing) use the real common/
machinery with their own small tables.
"""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from nameko.exceptions import RemoteError
from nameko.rpc import rpc
from nameko.testing.services import entrypoint_waiter
from sqlalchemy import Integer, String, func, select
from sqlalchemy.orm import Mapped, mapped_column

from services.common.broker import ConfirmedPublisher
from services.common.clock import SystemClock
from services.common.db import AlreadyHandled, Database, make_base
from services.common.dependencies import DatabaseProvider
from services.common.messaging import handle
from services.common.outbox import OutboxRelay

ProducerBase = make_base()
ConsumerBase = make_base()


class Effect(ConsumerBase):
    __tablename__ = "effects"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_no: Mapped[str] = mapped_column(String(40))


def case_received(case_no: str, content: str = "邻居占了我家宅基地") -> dict:
    now = datetime.now(timezone.utc)
    return {
        "case_no": case_no,
        "accepted_at": now,
        "content": content,
        "source": {"channel": "hotline", "reference": f"ref-{case_no}", "received_at": now},
    }


class ToyProducer:
    name = "intake"
    db = DatabaseProvider(ProducerBase.metadata)

    @rpc
    def emit(self, case_no, content="邻居占了我家宅基地", fail=False):
        with self.db.transaction() as uow:
            uow.emit("case_received", case_received(case_no, content), correlation_id=case_no)
            if fail:
                raise RuntimeError("something failed after the emit: the transaction rolls back")


class ToyConsumer:
    name = "routing"
    db = DatabaseProvider(ConsumerBase.metadata)

    @handle("case_received")
    def on_case_received(self, event):
        if "poison" in event.data["content"]:
            raise ValueError("cannot route this case")
        with self.db.handling(event) as uow:
            uow.session.add(Effect(case_no=event.correlation_id))


@pytest.fixture
def dbs(service_config):
    urls = service_config["DATABASES"]
    producer = Database(urls["intake"], ProducerBase.metadata, "intake", SystemClock())
    consumer = Database(urls["routing"], ConsumerBase.metadata, "routing", SystemClock())
    producer.create_all()
    consumer.create_all()
    yield producer, consumer
    producer.dispose()
    consumer.dispose()


def effects(db) -> list[str]:
    with db.reading() as session:
        return list(session.scalars(select(Effect.case_no).order_by(Effect.id)))


def count_waiter(container, n, failures=False):
    seen = []

    def callback(worker_ctx, result, exc_info):
        failed = exc_info is not None and not isinstance(exc_info[1], AlreadyHandled)
        if failed == failures:
            seen.append(worker_ctx.args[0].correlation_id)
        return len(seen) >= n

    return entrypoint_waiter(container, "on_case_received", callback=callback, timeout=20), seen


def next_message(amqp, queue, timeout=10):
    """Block until a message arrives on the queue, undecoded (kombu drains the socket; no polling)."""
    from kombu import Consumer, Queue

    got = []
    with amqp.channel() as channel:
        with Consumer(channel, queues=[Queue(queue, durable=True)], on_message=got.append, no_ack=True):
            while not got:
                amqp.drain_events(timeout=timeout)
    return got[0]


def queue_depth(amqp, name) -> int:
    return amqp.default_channel.queue_declare(name, passive=True).message_count


def test_outbox_publishes_exactly_what_was_committed_after_a_relay_crash(container_factory, service_config, dbs, amqp):
    producer_db, consumer_db = dbs
    # Committed while no relay runs: the process died between commit and publish.
    for i in range(20):
        with producer_db.transaction() as uow:
            uow.emit("case_received", case_received(f"C{i:03}"), correlation_id=f"C{i:03}")
    consumer = container_factory(ToyConsumer, service_config)
    consumer.start()
    assert queue_depth(amqp, "routing.case_received") == 0

    waiter, seen = count_waiter(consumer, 20)
    with waiter:
        container_factory(ToyProducer, service_config).start()
    assert sorted(effects(consumer_db)) == [f"C{i:03}" for i in range(20)]
    with producer_db.reading() as session:
        pending = session.execute(select(func.count()).where(producer_db.outbox.c.published_at.is_(None))).scalar()
    assert pending == 0


def test_a_redelivered_event_causes_no_second_effect(container_factory, service_config, dbs, amqp):
    producer_db, consumer_db = dbs
    for i in range(5):
        with producer_db.transaction() as uow:
            uow.emit("case_received", case_received(f"D{i}"), correlation_id=f"D{i}")
    # Published but never marked (crash after the confirm): the next relay publishes them again.
    relay = OutboxRelay(producer_db.engine, producer_db.outbox, ConfirmedPublisher(service_config["AMQP_URI"]),
                        SystemClock())
    relay.publisher.declare_topology([50, 100])
    with producer_db.reading() as session:
        rows = session.execute(select(producer_db.outbox)).all()
    relay.publisher.publish([relay._outgoing(row) for row in rows])
    relay.publisher.close()

    consumer = container_factory(ToyConsumer, service_config)
    waiter, seen = count_waiter(consumer, 10)
    with waiter:
        consumer.start()
        container_factory(ToyProducer, service_config).start()
    assert sorted(seen) == sorted([f"D{i}" for i in range(5)] * 2)
    assert sorted(effects(consumer_db)) == [f"D{i}" for i in range(5)]


def test_a_failing_handler_ends_in_the_dead_letter_queue_and_the_next_message_flows(
        container_factory, service_config, dbs, amqp):
    _, consumer_db = dbs
    consumer = container_factory(ToyConsumer, service_config)
    producer = container_factory(ToyProducer, service_config)
    consumer.start()
    producer.start()
    from nameko.standalone.rpc import ServiceRpcProxy

    failures, _ = count_waiter(consumer, 3, failures=True)  # first try + two retries
    with failures, ServiceRpcProxy("intake", service_config) as intake:
        intake.emit("P1", content="poison pill")
    ok, _ = count_waiter(consumer, 1)
    with ok, ServiceRpcProxy("intake", service_config) as intake:
        intake.emit("P2")
    assert effects(consumer_db) == ["P2"]

    message = next_message(amqp, "routing.dead")
    headers = message.headers
    assert "cannot route this case" in headers["x-reason"]
    assert headers["x-original-queue"] == "routing.case_received"
    assert headers["x-retry-count"] == 2
    assert "P1" in str(message.body)


def test_an_undecodable_event_is_dead_lettered_at_once(container_factory, service_config, dbs, amqp):
    consumer = container_factory(ToyConsumer, service_config)
    consumer.start()
    from kombu import Exchange, Producer

    Producer(amqp.default_channel).publish(b"{not json", exchange=Exchange("intake.events", "topic"),
                                           routing_key="case_received", content_type="application/json")
    message = next_message(amqp, "routing.dead")
    assert "undecodable" in message.headers["x-reason"]


def test_a_rolled_back_transaction_publishes_nothing(container_factory, service_config, dbs):
    producer_db, consumer_db = dbs
    consumer = container_factory(ToyConsumer, service_config)
    producer = container_factory(ToyProducer, service_config)
    consumer.start()
    producer.start()
    from nameko.standalone.rpc import ServiceRpcProxy

    waiter, seen = count_waiter(consumer, 1)
    with waiter, ServiceRpcProxy("intake", service_config) as intake:
        with pytest.raises(RemoteError):
            intake.emit("R1", fail=True)
        intake.emit("R2")
    assert seen == ["R2"]
    assert effects(consumer_db) == ["R2"]
    with producer_db.reading() as session:
        assert [r.correlation_id for r in session.execute(select(producer_db.outbox))] == ["R2"]


class HeldConsumer:
    """Handles C-HELD, then keeps its worker running until the test releases it."""

    name = "routing"
    db = DatabaseProvider(ConsumerBase.metadata)
    started = released = None

    @handle("case_received")
    def on_case_received(self, event):
        with self.db.handling(event) as uow:
            uow.session.add(Effect(case_no=event.correlation_id))
        if event.correlation_id == "C-HELD" and not HeldConsumer.released.ready():
            HeldConsumer.started.send()
            HeldConsumer.released.wait()


def test_a_consumer_whose_connection_died_under_a_running_worker_keeps_consuming(
        container_factory, service_config, dbs, monkeypatch):
    """The fault suite froze a consumer past its heartbeat: when it woke up, acking on the dead socket
    raised BrokenPipeError out of the worker and nameko killed the whole service."""
    import socket

    from eventlet.event import Event as Signal
    from nameko.standalone.rpc import ServiceRpcProxy

    from services.common.messaging import RawQueueConsumer

    _, consumer_db = dbs
    HeldConsumer.started, HeldConsumer.released = Signal(), Signal()
    delivered = []
    original = RawQueueConsumer._on_raw_message
    monkeypatch.setattr(RawQueueConsumer, "_on_raw_message",
                        lambda self, provider, message: (delivered.append(message), original(self, provider, message)))
    consumer = container_factory(HeldConsumer, service_config)
    consumer.start()
    container_factory(ToyProducer, service_config).start()
    with ServiceRpcProxy("intake", service_config) as intake:
        intake.emit("C-HELD")
    HeldConsumer.started.wait()
    delivered[-1].channel.connection.sock.shutdown(socket.SHUT_RDWR)  # the network died under the worker
    # the held worker finishes; the broker delivers the message again, and the inbox knows it
    again, seen = count_waiter(consumer, 2)
    with again:
        HeldConsumer.released.send()
    assert seen == ["C-HELD", "C-HELD"]
    after, seen = count_waiter(consumer, 1)
    with after, ServiceRpcProxy("intake", service_config) as intake:
        intake.emit("C-NEXT")
    assert seen == ["C-NEXT"]
    assert not consumer._died.ready()
    assert effects(consumer_db) == ["C-HELD", "C-NEXT"]


def test_a_service_survives_an_rpc_reply_it_cannot_send(container_factory, service_config, dbs, monkeypatch):
    """The fault suite stopped the broker while intake answered submissions: publishing the reply
    raised out of the worker and nameko killed the whole intake service."""
    from kombu.exceptions import OperationalError
    from nameko.exceptions import RpcTimeout
    from nameko.rpc import Responder
    from nameko.standalone.rpc import ServiceRpcProxy

    failures = [OperationalError("[Errno 111] Connection refused")]
    original = Responder.send_response

    def send_response(self, result, exc_info):
        if failures:
            raise failures.pop()
        return original(self, result, exc_info)

    monkeypatch.setattr(Responder, "send_response", send_response)
    producer = container_factory(ToyProducer, service_config)
    producer.start()
    with ServiceRpcProxy("intake", service_config, timeout=3) as intake:
        with pytest.raises(RpcTimeout):  # the reply was lost: the caller times out and may ask again
            intake.emit("R-LOST")
        assert intake.emit("R-NEXT") is None  # the same process answers the next call
    assert not producer._died.ready()
