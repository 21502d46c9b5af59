"""The AsyncAPI 3.0 document of every topic, generated from the topic catalogue.

    .venv/bin/python -m docs.asyncapi                       # print it
    .venv/bin/python -m docs.asyncapi --write docs/asyncapi.json
    .venv/bin/python -m docs.asyncapi --check docs/asyncapi.json   # exit 1 when stale

One channel per topic (its address is the stream's name), one message per channel whose payload
is the JSON in the entry's ``event`` field (schema from the pydantic model, its ``$defs`` moved to
``components/schemas``) and whose headers are the entry's other plain fields; a ``receive``
operation per consumer group and a ``send`` operation per writer; a dead-letter channel for every
topic a group reads. Keys are sorted, so the output is byte-for-byte stable and can be compared.
"""

import argparse
import json
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from docs import catalog
from voicetap_sdk import decoding, events, partitions, topics

REGENERATE = ".venv/bin/python -m docs.asyncapi --write docs/asyncapi.json"
SCHEMAS = "#/components/schemas/"
# Telnyx event types voicetap has no model for yet still get a topic of their own.
OTHER_TELNYX_CHANNEL = "telnyx.other_event_types"

INFO_DESCRIPTION = """\
Every topic is one Redis Stream; its name is the channel's address. Entries are plain stream \
fields that any Redis client in any language can read:

| field | holds |
| --- | --- |
| `id` | the event's own id (Telnyx `data.id`): the idempotency key; redeliveries carry the same id |
| `type` | the event type, e.g. `call.hangup` |
| `event` | the event as UTF-8 JSON (the message payload below); for webhooks, the body exactly as Telnyx signed it |
| `call_control_id`, `received_at`, `attempt`, ... | optional routing fields (the message headers below) |

Subscribe with a consumer group of your own, from the beginning (`XGROUP CREATE <topic> <group> 0 \
MKSTREAM`) or from now (`$`), read with `XREADGROUP`, and `XACK` after the effect is durable. \
Delivery is at least once: make effects idempotent on `id`. Topics are trimmed to about \
`TOPIC_MAXLEN` entries (`XADD MAXLEN ~`) and, when `TOPIC_MAX_AGE_SECONDS` is set, to entries \
younger than that (`XTRIM MINID`). Entries a group could not process after a bounded number \
of deliveries go to `<topic>.dlq`.

In Python, the voicetap SDK (`voicetap_sdk.Subscriber`, docs/CONSUMERS.md) does all of this and \
hands each handler the typed model that every message names as `x-voicetap-sdk-model` (for a \
`telnyx.*` topic: the event under the body's `data`).

Partitions: when the deployment sets `TOPIC_PARTITIONS=N` above 1, every channel marked \
`x-voicetap-partitioned` is N streams named `<topic>:p0` ... `<topic>:p<N-1>` instead of the \
stream `<topic>`. An event is on partition `crc32(call_control_id) mod N` (CRC-32 of the UTF-8 \
call id, as zlib computes it; partition 0 for an event without one), so one call's events are in \
order on one stream. Create your group on every partition and read them together (on Redis \
Cluster, one XREADGROUP per hash slot). Dead-letter topics, commands and their results, and \
playback are never partitioned.
"""

ENTRY_FIELDS: dict[str, Any] = {
    "type": "object",
    "title": "Stream entry fields",
    "description": "The plain fields of an entry besides `event` (all values are strings).",
    "required": ["id", "type"],
    "properties": {
        "id": {
            "type": "string",
            "description": "The event's own id (Telnyx `data.id`): the idempotency key.",
        },
        "type": {"type": "string", "description": "The event type, e.g. `call.transcription`."},
        "call_control_id": {"type": "string", "description": "The call, when the event has one."},
        "received_at": {
            "type": "string",
            "description": "Unix time (seconds, decimal) the entry was stored.",
        },
        "attempt": {
            "type": "string",
            "description": "Telnyx's `meta.attempt` (delivery attempt), when given.",
        },
    },
    "additionalProperties": {"type": "string"},
}

DEAD_LETTER_FIELDS: dict[str, Any] = {
    "title": "Dead-letter entry fields",
    "description": "The source entry's fields, plus why and where it failed.",
    "allOf": [
        {"$ref": SCHEMAS + "StreamEntryFields"},
        {
            "type": "object",
            "required": [
                "dlq_reason",
                "dlq_group",
                "dlq_deliveries",
                "dlq_source_topic",
                "dlq_source_entry",
            ],
            "properties": {
                "dlq_reason": {
                    "type": "string",
                    "description": "Why, in one line (undeliverable, or failed N deliveries).",
                },
                "dlq_error": {
                    "type": "string",
                    "description": "The last error the handler raised.",
                },
                "dlq_group": {"type": "string", "description": "The consumer group that gave up."},
                "dlq_deliveries": {
                    "type": "string",
                    "description": "How many times the entry was delivered.",
                },
                "dlq_source_topic": {
                    "type": "string",
                    "description": "The stream the entry came from: its topic, or the topic's partition.",
                },
                "dlq_source_entry": {
                    "type": "string",
                    "description": "The entry's stream id in that stream.",
                },
            },
        },
    ],
}

WEBHOOK_DEAD_LETTER_FIELDS: dict[str, Any] = {
    "type": "object",
    "title": "Webhook dead-letter fields",
    "description": "A signed webhook whose body is not a usable event; the raw body is the payload (`body` field).",
    "required": ["reason", "received_at"],
    "properties": {
        "reason": {"type": "string", "description": "Why the body is not a usable event."},
        "telnyx_timestamp": {
            "type": "string",
            "description": "The request's `telnyx-timestamp` header.",
        },
        "received_at": {
            "type": "string",
            "description": "Unix time (seconds, decimal) the gateway stored it.",
        },
    },
    "additionalProperties": {"type": "string"},
}


def _package_version() -> str:
    try:
        return version("voicetap-common")
    except PackageNotFoundError:
        return "0.0.0"


def _ref(*parts: str) -> dict[str, str]:
    return {"$ref": "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)}


def _message_schemas(
    models: list[type[BaseModel]],
) -> tuple[dict[type[BaseModel], dict[str, str]], dict[str, Any]]:
    """Each model's ``$ref`` and every schema they need, named once under components/schemas."""
    refs, defs = models_json_schema(
        [(m, "validation") for m in models], ref_template=SCHEMAS + "{model}"
    )
    return {model: refs[(model, "validation")] for model in models}, _asyncapi_schema(
        defs.get("$defs", {})
    )


def _asyncapi_schema(node: Any) -> Any:
    """Pydantic writes OpenAPI's ``discriminator`` object; an AsyncAPI Schema Object takes the property name."""
    if isinstance(node, list):
        return [_asyncapi_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _asyncapi_schema(value) for key, value in node.items()}
    discriminator = converted.get("discriminator")
    if isinstance(discriminator, dict) and isinstance(discriminator.get("propertyName"), str):
        converted["discriminator"] = discriminator["propertyName"]
    return converted


def _channel(
    address: str, summary: str, message_name: str, extra: dict[str, Any]
) -> dict[str, Any]:
    return {
        "address": address,
        "summary": summary,
        "messages": {message_name: _ref("components", "messages", message_name)},
        **extra,
    }


def build_document() -> dict[str, Any]:
    specs = sorted(catalog.all_topics(), key=lambda s: s.name)
    other_model: type[BaseModel] = events.TelnyxWebhook[events.GenericEvent]
    models = list(dict.fromkeys([spec.message for spec in specs] + [other_model]))
    payload_refs, schemas = _message_schemas(models)
    schemas.update(
        StreamEntryFields=ENTRY_FIELDS,
        DeadLetterEntryFields=DEAD_LETTER_FIELDS,
        WebhookDeadLetterFields=WEBHOOK_DEAD_LETTER_FIELDS,
    )

    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    operations: dict[str, Any] = {}

    def add_send(writer: str, channel: str, message: str) -> None:
        operations[f"send.{channel}"] = {
            "action": "send",
            "channel": _ref("channels", channel),
            "messages": [_ref("channels", channel, "messages", message)],
            "summary": f"Appended (XADD) by {writer}.",
        }

    for spec in specs:
        groups = sorted(set(spec.read_by))
        dead_letters = topics.dlq_topic(spec.name) if groups else None
        messages[spec.name] = {
            "name": spec.name,
            "title": spec.message.__name__,
            "summary": spec.summary,
            "contentType": "application/json",
            "payload": payload_refs[spec.message],
            "headers": {"$ref": SCHEMAS + "StreamEntryFields"},
            "x-voicetap-payload-field": "event",
            "x-voicetap-sdk-model": spec.sdk_model,
        }
        extra: dict[str, Any] = {
            "x-voicetap-written-by": spec.written_by,
            "x-voicetap-consumer-groups": groups,
            "x-voicetap-partitioned": spec.partitioned,
        }
        if dead_letters:
            extra["x-voicetap-dead-letter-topic"] = dead_letters
        channels[spec.name] = _channel(spec.name, spec.summary, spec.name, extra)
        add_send(spec.written_by, spec.name, spec.name)
        for group in groups:
            operations[f"receive.{spec.name}.{group}"] = {
                "action": "receive",
                "channel": _ref("channels", spec.name),
                "messages": [_ref("channels", spec.name, "messages", spec.name)],
                "summary": f"Consumer group `{group}` reads this topic (XREADGROUP), acknowledging after its effect is durable.",
                "x-voicetap-consumer-group": group,
            }
        if dead_letters:
            messages[dead_letters] = {
                "name": dead_letters,
                "title": f"Dead letter of {spec.name}",
                "summary": f"An entry of `{spec.name}` that a consumer group gave up on.",
                "description": f"The `event` field is the source entry's, as it was: usually `{spec.message.__name__}`, "
                "but it may be what made the entry undeliverable.",
                "contentType": "application/json",
                "payload": {},
                "headers": {"$ref": SCHEMAS + "DeadLetterEntryFields"},
                "x-voicetap-payload-field": "event",
            }
            channels[dead_letters] = _channel(
                dead_letters,
                f"Dead letters of `{spec.name}`, with the reason and the delivery count.",
                dead_letters,
                {
                    "x-voicetap-written-by": ", ".join(groups),
                    "x-voicetap-consumer-groups": [],
                    "x-voicetap-source-topic": spec.name,
                },
            )
            add_send(
                "the consumer groups of " + spec.name + " when they give up on an entry",
                dead_letters,
                dead_letters,
            )

    other = "telnyx.other"
    messages[other] = {
        "name": other,
        "title": other_model.__name__,
        "summary": "A verified webhook of an event type voicetap has no model for yet: kept whole.",
        "contentType": "application/json",
        "payload": payload_refs[other_model],
        "headers": {"$ref": SCHEMAS + "StreamEntryFields"},
        "x-voicetap-payload-field": "event",
        "x-voicetap-sdk-model": decoding.model_name(topics.telnyx_topic("event_type")),
    }
    channels[OTHER_TELNYX_CHANNEL] = {
        **_channel(
            topics.TELNYX_PREFIX + "{event_type}",
            "Every other Telnyx event type, each on a topic named after it: nothing a valid signature covers is dropped.",
            other,
            {
                "x-voicetap-written-by": "webhook_gateway",
                "x-voicetap-consumer-groups": [],
                "x-voicetap-partitioned": partitions.is_partitioned(
                    topics.telnyx_topic("event_type")
                ),
            },
        ),
        "parameters": {
            "event_type": {"description": "The webhook's `data.event_type`, e.g. `call.bridged`."}
        },
    }
    add_send("webhook_gateway", OTHER_TELNYX_CHANNEL, other)

    webhook_dlq = topics.WEBHOOK_DEAD_LETTERS
    messages[webhook_dlq] = {
        "name": webhook_dlq,
        "title": "Unusable signed webhook",
        "summary": "A signed webhook whose body is not a usable event (not JSON, no `data.id` / `data.event_type`).",
        "contentType": "application/octet-stream",
        "payload": {"type": "string", "description": "The raw body, exactly as received."},
        "headers": {"$ref": SCHEMAS + "WebhookDeadLetterFields"},
        "x-voicetap-payload-field": "body",
    }
    channels[webhook_dlq] = _channel(
        webhook_dlq,
        "Signed webhooks the gateway could not route: kept, since nothing from Telnyx is lost.",
        webhook_dlq,
        {"x-voicetap-written-by": "webhook_gateway", "x-voicetap-consumer-groups": []},
    )
    add_send("webhook_gateway", webhook_dlq, webhook_dlq)

    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "voicetap topics",
            "version": _package_version(),
            "description": INFO_DESCRIPTION,
            "license": {"name": "See the repository"},
        },
        "defaultContentType": "application/json",
        "servers": {
            "redis": {
                "host": "localhost:6379",
                "protocol": "redis",
                "description": "Any Redis or Valkey server (or cluster) the stack uses: `REDIS_URL`.",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


def render() -> str:
    return json.dumps(build_document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m docs.asyncapi",
        description="The AsyncAPI 3.0 document of every topic.",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--check",
        type=Path,
        metavar="PATH",
        help="exit 1 when PATH differs from the generated document",
    )
    mode.add_argument("--write", type=Path, metavar="PATH", help="write the document to PATH")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        args.write.write_text(text, encoding="utf-8")
        return 0
    if args.check:
        current = args.check.read_text(encoding="utf-8") if args.check.exists() else ""
        if current != text:
            print(f"{args.check} is stale: regenerate it with `{REGENERATE}`", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
