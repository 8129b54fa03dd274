"""The AsyncAPI document of intake's AMQP contract (DESIGN §3), served at GET /api/v1/asyncapi.json.

The message schemas are the channel schemas themselves (the same ones as the HTTP API's),
so the two ways in cannot drift apart.
"""
from __future__ import annotations

from functools import lru_cache

from services.contracts.channels import CHANNELS, MAX_SUBMISSION_BYTES
from services.gateway.openapi import openapi_document

OPENAPI_FORMAT = "application/vnd.oai.openapi;version=3.0.0"
ERROR = {"type": "object", "nullable": True, "properties": {
    "error": {"type": "string", "enum": ["invalid", "unauthorized", "forbidden", "not_found", "conflict",
                                         "too_large", "unsupported_media_type"]},
    "message": {"type": "string"},
    "fields": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
}}
RESULT = {"type": "object", "required": ["reference", "case_no", "status", "error"], "properties": {
    "reference": {"type": "string", "nullable": True, "description": "the channel reference (order_no, petition_no …)"},
    "case_no": {"type": "string", "nullable": True, "example": "371324-20260302-000001"},
    "status": {"type": "string", "enum": ["accepted", "merged", "rejected"]},
    "merged_into": {"type": "string", "description": "when merged: the open case it joined (= case_no)"},
    "duplicate": {"type": "boolean", "description": "the same reference was submitted before: the first outcome"},
    "error": ERROR,
}}
FEEDBACK = {"type": "object", "required": ["reference", "case_no", "status", "reply", "at"], "properties": {
    "reference": {"type": "string"},
    "case_no": {"type": "string"},
    "status": {"type": "string", "enum": ["resolved", "resolved_on_site", "referred", "closed", "received"]},
    "outcome": {"type": "string"},
    "reply": {"type": "string", "description": "the answer owed to this source (Chinese)"},
    "at": {"type": "string", "format": "date-time"},
}}


@lru_cache(maxsize=1)
def asyncapi_document() -> dict:
    schemas = openapi_document()["components"]["schemas"]
    messages, channels = {}, {}
    for channel in CHANNELS:
        name = f"{channel.capitalize()}Submission"
        messages[name] = {
            "name": name, "contentType": "application/json", "schemaFormat": OPENAPI_FORMAT,
            "payload": schemas[name],
            "bindings": {"amqp": {"contentEncoding": "utf-8", "messageType": f"{channel}.submitted"}},
        }
        channels[f"{channel}.submitted"] = {
            "description": f"Submit a case on the {channel} channel (topic exchange intake.ingress).",
            "publish": {"message": {"$ref": f"#/components/messages/{name}"}},
            "bindings": {"amqp": {"is": "routingKey", "exchange": {"name": "intake.ingress", "type": "topic",
                                                                   "durable": True}}},
        }
    messages["SubmissionResult"] = {"name": "SubmissionResult", "contentType": "application/json",
                                    "schemaFormat": OPENAPI_FORMAT, "payload": RESULT,
                                    "correlationId": {"location": "$message.header#/correlation_id"}}
    messages["Feedback"] = {"name": "Feedback", "contentType": "application/json", "schemaFormat": OPENAPI_FORMAT,
                            "payload": FEEDBACK}
    channels["{user}.{channel}.{outcome}"] = {
        "description": "The outcome of each ingress message (topic exchange intake.ingress.results); "
                       "correlation_id is the message_id you sent. Bind your own queue, e.g. `<your user>.#`.",
        "parameters": {"user": {"schema": {"type": "string"}}, "channel": {"schema": {"enum": list(CHANNELS)}},
                       "outcome": {"schema": {"enum": ["accepted", "merged", "rejected"]}}},
        "subscribe": {"message": {"$ref": "#/components/messages/SubmissionResult"}},
        "bindings": {"amqp": {"is": "routingKey", "exchange": {"name": "intake.ingress.results", "type": "topic",
                                                               "durable": True}}},
    }
    channels["{channel}.{event}"] = {
        "description": "Feedback to every source of a case when it is resolved or closed, and the new case "
                       "number of a source split off a wrong merge (topic exchange intake.egress). The message_id "
                       "is stable per source and event: deduplicate on it.",
        "parameters": {"channel": {"schema": {"enum": list(CHANNELS)}},
                       "event": {"schema": {"enum": ["case_resolved", "case_closed", "case_unmerged"]}}},
        "subscribe": {"message": {"$ref": "#/components/messages/Feedback"}},
        "bindings": {"amqp": {"is": "routingKey", "exchange": {"name": "intake.egress", "type": "topic",
                                                               "durable": True}}},
    }
    return {
        "asyncapi": "2.6.0",
        "info": {
            "title": "Lanling intake over AMQP",
            "version": "1.0.0",
            "description": (
                "County systems submit cases by publishing to exchange intake.ingress with routing key "
                "<channel>.submitted, content_type application/json, a unique message_id and their own broker "
                "user in user_id (the broker checks it; intake checks that user may use the channel). Limits: "
                f"{MAX_SUBMISSION_BYTES} bytes, UTF-8, a JSON object of the channel's schema, ISO 8601 times with "
                "an offset. A message that can never be accepted is answered `rejected` on intake.ingress.results "
                "and parked in queue intake.ingress.dead with the reason in header x-reason. The same reference "
                "again gets the first outcome (duplicate: true); the same reference with a different body is "
                "rejected as a conflict."
            ),
        },
        "servers": {"broker": {"url": "{host}:5672", "protocol": "amqp", "protocolVersion": "0.9.1",
                               "variables": {"host": {"default": "127.0.0.1"}}}},
        "defaultContentType": "application/json",
        "channels": channels,
        "components": {"messages": messages},
    }
