"""Every topic of the catalogue has its SDK model, and the AsyncAPI document names it."""

import importlib
import json
from pathlib import Path

import pytest

from docs import catalog
from voicetap_sdk import decoding, topics
from voicetap_sdk.commands import ForkStop
from voicetap_sdk.events import CallHangupEvent, GenericEvent
from voicetap_sdk.streams import Entry

ASYNCAPI = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.json"


@pytest.mark.parametrize("spec", catalog.all_topics(), ids=lambda spec: spec.name)
def test_every_catalogue_topic_has_a_model_named_in_the_asyncapi_document(
    spec: catalog.TopicSpec,
) -> None:
    assert decoding.has_model(spec.name)
    module, _, name = spec.sdk_model.rpartition(".")
    assert getattr(importlib.import_module(module), name) is decoding.event_model(spec.name)
    document = json.loads(ASYNCAPI.read_text())
    assert document["components"]["messages"][spec.name]["x-voicetap-sdk-model"] == spec.sdk_model


def test_an_unknown_telnyx_type_is_the_generic_event_and_other_topics_have_none() -> None:
    assert decoding.event_model("telnyx.call.bridged") is GenericEvent
    assert decoding.event_model(topics.CALL_HANGUP) is CallHangupEvent
    for topic in ("acme.alerts", topics.dlq_topic(topics.CALL_HANGUP), topics.WEBHOOK_DEAD_LETTERS):
        assert not decoding.has_model(topic)
        with pytest.raises(KeyError):
            decoding.event_model(topic)


def test_a_command_decodes_to_its_own_model_and_a_bad_one_is_undecodable() -> None:
    command = ForkStop(call_control_id="v3:c")
    entry = Entry(topics.MEDIA_COMMANDS, "1-0", {"event": command.model_dump_json().encode()})
    assert decoding.decode(entry) == command
    with pytest.raises(decoding.UndecodableEntry, match="1-0"):
        decoding.decode(Entry(topics.MEDIA_COMMANDS, "1-0", {"event": b'{"action": "x"}'}))
