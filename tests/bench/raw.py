"""The broker's own limit on this machine: raw pika and kombu, no framework, no database.

Both push ~1 KB persistent JSON messages into a durable queue of a fresh vhost while a
consumer in another process takes them with manual acks (prefetch 100); throughput is
messages / (last ack - first publish).
- kombu waits for the broker's confirm after every publish, as nameko's publisher does;
- pika keeps a window of up to 100 unconfirmed publishes (SelectConnection, asynchronous
  confirms), the practical limit of one publisher here.
"""
from __future__ import annotations

import json
import multiprocessing
import time

from tests.bench.common import amqp_uri, say
from tests.bench.texts import Orders
from tests.harness import create_vhost, delete_vhost

QUEUE = "bench.raw"


def payload() -> bytes:
    """About 1 KB of JSON, like a case_received envelope."""
    orders = Orders("raw", seed=1)
    body = {"event_id": "0" * 32, "type": "case_received", "data": orders.next()}
    text = body["data"]["content"] * 3
    while True:
        body["data"]["content"] = text
        raw = json.dumps(body, ensure_ascii=False).encode()
        if len(raw) <= 1024:
            return raw + b" " * (1024 - len(raw))
        text = text[:-8]


def _consume(uri: str, n: int, ready, result):
    import pika

    params = pika.URLParameters(uri)
    conn = pika.BlockingConnection(params)
    ch = conn.channel()
    ch.basic_qos(prefetch_count=100)
    state = {"count": 0, "last": 0.0}

    def on_message(channel, method, _props, _body):
        channel.basic_ack(method.delivery_tag)
        state["count"] += 1
        if state["count"] >= n:
            state["last"] = time.monotonic()
            channel.stop_consuming()

    ch.basic_consume(QUEUE, on_message)
    ready.set()
    ch.start_consuming()
    conn.close()
    result.put(state["last"])


def _declare(uri: str):
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(uri))
    ch = conn.channel()
    ch.queue_declare(QUEUE, durable=True)
    ch.queue_purge(QUEUE)
    conn.close()


def _run(uri: str, n: int, publish) -> float:
    _declare(uri)
    ctx = multiprocessing.get_context("spawn")
    ready, result = ctx.Event(), ctx.Queue()
    consumer = ctx.Process(target=_consume, args=(uri, n, ready, result), daemon=True)
    consumer.start()
    ready.wait(30)
    body = payload()
    first = time.monotonic()
    publish(uri, body, n)
    last = result.get(timeout=120)
    consumer.join(10)
    return n / (last - first)


def publish_kombu(uri: str, body: bytes, n: int):
    from kombu import Connection, Exchange, Producer

    with Connection(uri, transport_options={"confirm_publish": True}) as conn:
        producer = Producer(conn.channel(), exchange=Exchange("", "direct"))
        for i in range(n):
            producer.publish(body, routing_key=QUEUE, delivery_mode=2, content_type="application/json",
                             content_encoding="utf-8", message_id=str(i), serializer=None)


def publish_pika_window(uri: str, body: bytes, n: int, window: int = 100):
    import pika

    props = pika.BasicProperties(content_type="application/json", delivery_mode=2)
    state = {"published": 0, "confirmed": 0}

    def publish_more(channel):
        while state["published"] < n and state["published"] - state["confirmed"] < window:
            channel.basic_publish("", QUEUE, body, props)
            state["published"] += 1

    def on_confirm(frame):
        ack = frame.method
        if isinstance(ack, pika.spec.Basic.Nack):
            raise RuntimeError("the broker nacked a publish")
        state["confirmed"] = ack.delivery_tag if ack.multiple else state["confirmed"] + 1
        if state["confirmed"] >= n:
            conn.close()
        else:
            publish_more(channel_ref[0])

    channel_ref = []

    def on_channel(channel):
        channel_ref.append(channel)
        channel.confirm_delivery(on_confirm, callback=lambda _f: publish_more(channel))

    conn = pika.SelectConnection(pika.URLParameters(uri),
                                 on_open_callback=lambda c: c.channel(on_open_callback=on_channel),
                                 on_open_error_callback=lambda c, exc: c.ioloop.stop(),
                                 on_close_callback=lambda c, reason: c.ioloop.stop())
    conn.ioloop.start()
    if state["confirmed"] < n:
        raise RuntimeError(f"pika: only {state['confirmed']} of {n} publishes were confirmed")


def run(kombu_messages: int = 4000, pika_messages: int = 20000) -> dict:
    vhost = create_vhost("lanling_bench_raw")
    uri = amqp_uri(vhost)
    try:
        pika_rate = _run(uri, pika_messages, publish_pika_window)
        say(f"raw pika, window of 100 unconfirmed: {pika_rate:.0f} msg/s")
        kombu_rate = _run(uri, kombu_messages, publish_kombu)
        say(f"raw kombu, a confirm per publish: {kombu_rate:.0f} msg/s")
    finally:
        delete_vhost(vhost)
    return {"raw_pika_msgs_per_s": round(pika_rate), "raw_kombu_msgs_per_s": round(kombu_rate),
            "raw_message_bytes": len(payload())}


if __name__ == "__main__":
    print(json.dumps(run()))
