"""docs/asyncapi.json: generated from the topic catalogue, committed, and a well-formed AsyncAPI 3.0 document.

No PyPI package ships the official AsyncAPI 3.0 JSON Schema (checked: asyncapi3, pydantic-asyncapi,
asyncapi-python, asyncapi-python-parser-jonaslagoni, asyncapi-payload-validator carry object
models or older versions only), so the rules of the specification that matter here are checked
explicitly, and every message schema is checked as JSON Schema and against real payloads.
"""

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from docs import asyncapi, catalog
from tests.deploy.manifests import require
from voicetap_sdk import topics

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "docs" / "asyncapi.json"
KEY = re.compile(r"^[\w\d.\-_]+$")  # AsyncAPI 3.0: keys of channels, operations and components
DOC_URI = "urn:voicetap:asyncapi"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return asyncapi.build_document()


def test_committed_document_is_current() -> None:
    assert COMMITTED.exists(), (
        f"docs/asyncapi.json is missing: generate it with `{asyncapi.REGENERATE}`"
    )
    assert COMMITTED.read_text(encoding="utf-8") == asyncapi.render(), (
        f"docs/asyncapi.json is stale (the topic catalogue or a message model changed): "
        f"regenerate it with `{asyncapi.REGENERATE}` and commit it"
    )


def test_output_is_deterministic() -> None:
    assert asyncapi.render() == asyncapi.render()
    assert json.loads(asyncapi.render()) == asyncapi.build_document()


def test_check_mode_fails_on_a_stale_file_and_says_how_to_regenerate(tmp_path: Path) -> None:
    stale = tmp_path / "asyncapi.json"
    stale.write_text("{}\n")
    command = [sys.executable, "-m", "docs.asyncapi"]
    failed = subprocess.run(
        [*command, "--check", str(stale)], cwd=ROOT, capture_output=True, text=True
    )
    assert failed.returncode == 1
    assert asyncapi.REGENERATE in failed.stderr
    assert subprocess.run([*command, "--write", str(stale)], cwd=ROOT).returncode == 0
    assert subprocess.run([*command, "--check", str(stale)], cwd=ROOT).returncode == 0


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"only local references are used: {ref}"
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"dangling reference {ref}"
        node = node[part]
    return node


def test_document_structure(document: dict[str, Any]) -> None:
    assert document["asyncapi"] == "3.0.0"
    assert isinstance(document["info"]["title"], str) and isinstance(
        document["info"]["version"], str
    )
    assert "XGROUP CREATE" in document["info"]["description"]
    for server in document["servers"].values():
        assert server["protocol"] == "redis" and server["host"]
    for section in (document["channels"], document["operations"], *document["components"].values()):
        bad = [key for key in section if not KEY.match(key)]
        assert not bad, f"keys AsyncAPI 3.0 does not allow: {bad}"
    for ref in _refs(document):
        _resolve(document, ref)

    for channel_id, channel in document["channels"].items():
        assert channel["address"], channel_id
        for parameter in re.findall(r"{(\w+)}", channel["address"]):
            assert parameter in channel.get("parameters", {}), (
                f"{channel_id}: parameter {parameter} undeclared"
            )
        for ref in channel["messages"].values():
            message = _resolve(document, ref["$ref"])
            assert "payload" in message and "headers" in message, channel_id
            assert _resolve(document, message["headers"]["$ref"])
    for operation_id, operation in document["operations"].items():
        assert operation["action"] in {"send", "receive"}, operation_id
        channel_ref = operation["channel"]["$ref"]
        assert channel_ref.startswith("#/channels/"), operation_id
        for message in operation["messages"]:
            assert message["$ref"].startswith(channel_ref + "/messages/"), (
                f"{operation_id}: an operation's messages must be messages of its channel"
            )


def test_every_topic_its_groups_and_dead_letters_are_published(document: dict[str, Any]) -> None:
    channels, operations = document["channels"], document["operations"]
    addresses = {channel["address"] for channel in channels.values()}
    assert topics.WEBHOOK_DEAD_LETTERS in addresses
    assert "telnyx.{event_type}" in addresses
    for spec in catalog.all_topics():
        channel = channels[spec.name]
        assert channel["address"] == spec.name
        assert channel["x-voicetap-consumer-groups"] == sorted(set(spec.read_by))
        assert f"send.{spec.name}" in operations
        for group in spec.read_by:
            receive = operations[f"receive.{spec.name}.{group}"]
            assert receive["action"] == "receive" and receive["x-voicetap-consumer-group"] == group
        if spec.read_by:
            dlq = topics.dlq_topic(spec.name)
            assert (
                channel["x-voicetap-dead-letter-topic"] == dlq and channels[dlq]["address"] == dlq
            )


def test_message_schemas_are_json_schemas(document: dict[str, Any]) -> None:
    Draft7Validator = require("jsonschema").Draft7Validator
    for name, schema in document["components"]["schemas"].items():
        Draft7Validator.check_schema(schema)  # raises SchemaError naming the keyword
        assert "$defs" not in schema, f"{name}: nested $defs must live in components/schemas"


def _validator(document: dict[str, Any], topic: str) -> Any:
    Draft7Validator = require("jsonschema").Draft7Validator
    referencing = require("referencing")
    DRAFT7 = require("referencing.jsonschema").DRAFT7
    Registry, Resource = referencing.Registry, referencing.Resource
    registry = Registry().with_resource(
        DOC_URI, Resource.from_contents(document, default_specification=DRAFT7)
    )
    message = _resolve(document, document["channels"][topic]["messages"][topic]["$ref"])
    return Draft7Validator({"$ref": DOC_URI + message["payload"]["$ref"]}, registry=registry)


def _transcription(transcript: Any = "hello there") -> dict[str, Any]:
    return {
        "data": {
            "record_type": "event",
            "event_type": "call.transcription",
            "id": "0ccc7b54-4df3-4bca-a65a-3da1ecc777f0",
            "occurred_at": "2025-06-01T12:00:00.000000Z",
            "payload": {
                "call_control_id": "v3:abc",
                "call_leg_id": "leg",
                "call_session_id": "session",
                "client_state": None,
                "connection_id": "123",
                "transcription_data": {
                    "transcript": transcript,
                    "confidence": 0.97,
                    "is_final": True,
                },
                "a_field_telnyx_adds_later": 1,
            },
        },
        "meta": {"attempt": 1, "delivered_to": "https://example.test/webhooks/telnyx"},
    }


def test_payload_schema_accepts_real_events_and_refuses_wrong_ones(
    document: dict[str, Any],
) -> None:
    validator = _validator(document, topics.CALL_TRANSCRIPTION)
    validator.validate(_transcription())
    errors = list(validator.iter_errors(_transcription(transcript=42)))
    assert errors and any("transcript" in list(error.absolute_path) for error in errors)
    missing = _transcription()
    del missing["data"]["payload"]["transcription_data"]
    assert list(validator.iter_errors(missing))
