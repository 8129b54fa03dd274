"""A county system publishing to the AMQP ingress with its own client (pika) and broker user,
run as a separate process, the way an outside system would:

    python -m tests.integration.outside_system AMQP_URI < messages.json > results.json

stdin: {"user": broker user, "timeout": seconds, "messages": [{"channel", "message_id",
"body" (object or string), "content_type"?, "user_id"? (defaults to the user)}]}.
It binds its own results queue `ingress.<user>.results` to `intake.ingress.results` with
`<user>.#`, publishes every message with publisher confirms, then waits for one result per
accepted message_id. stdout: {"results": {message_id: {"routing_key", "body"}},
"refused": {message_id: the broker's reason}}.
"""
from __future__ import annotations

import json
import sys
import time

import pika


def main() -> None:
    uri = sys.argv[1]
    request = json.load(sys.stdin)
    user = request["user"]
    deadline = time.monotonic() + request.get("timeout", 30)
    connection = pika.BlockingConnection(pika.URLParameters(uri))
    channel = connection.channel()
    queue = f"ingress.{user}.results"
    channel.queue_declare(queue, durable=True)
    channel.queue_bind(queue, "intake.ingress.results", routing_key=f"{user}.#")
    channel.confirm_delivery()
    refused, expected = {}, set()
    for message in request["messages"]:
        body = message["body"]
        raw = body.encode("utf-8") if isinstance(body, str) else json.dumps(body, ensure_ascii=False).encode("utf-8")
        properties = pika.BasicProperties(
            content_type=message.get("content_type", "application/json"), delivery_mode=2,
            message_id=message["message_id"], user_id=message.get("user_id", user),
        )
        try:
            channel.basic_publish("intake.ingress", f"{message['channel']}.submitted", raw, properties)
            expected.add(message["message_id"])
        except (pika.exceptions.ChannelClosedByBroker, pika.exceptions.UnroutableError) as exc:
            refused[message["message_id"]] = str(exc)
            channel = connection.channel()  # the broker closed the channel: carry on with a new one
            channel.confirm_delivery()
    results = {}
    if expected:
        for method, properties, body in channel.consume(queue, auto_ack=True, inactivity_timeout=0.5):
            if method is not None:
                results[properties.correlation_id] = {"routing_key": method.routing_key, "body": json.loads(body)}
            if not expected - set(results) or time.monotonic() > deadline:
                break
        channel.cancel()
    connection.close()
    json.dump({"results": results, "refused": refused}, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
