"""The gateway over real HTTP against a real Redis."""

import asyncio
import time

import httpx
import pytest
from redis.asyncio import Redis

from telnyx_simulator.signing import WebhookSigner
from tests.webhook_gateway.conftest import make_event, signed_post
from voicetap_sdk.events import CallAnsweredEvent, parse_envelope
from voicetap_sdk.topics import WEBHOOK_DEAD_LETTERS

PATH = "/webhooks/telnyx"


async def test_a_signed_webhook_is_stored_as_plain_fields(
    gateway: httpx.AsyncClient, signer: WebhookSigner, redis: Redis
) -> None:
    body = make_event("call.answered", "ev-1")
    response = await gateway.post(PATH, **signed_post(signer, body))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "stored"
    entries = await redis.xrange("telnyx.call.answered")
    assert len(entries) == 1
    fields = entries[0][1]
    assert fields[b"id"] == b"ev-1"
    assert fields[b"type"] == b"call.answered"
    assert fields[b"event"] == body  # exactly as signed, never re-serialised
    assert fields[b"call_control_id"] == b"v3:ctrl-1"
    assert fields[b"attempt"] == b"1"
    assert isinstance(parse_envelope(fields[b"event"]).data, CallAnsweredEvent)


async def test_a_redelivery_is_answered_200_and_stored_once(
    gateway: httpx.AsyncClient, signer: WebhookSigner, redis: Redis
) -> None:
    body = make_event("call.hangup", "ev-dup")
    first = await gateway.post(PATH, **signed_post(signer, body))
    again = await gateway.post(PATH, **signed_post(signer, body))
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json()["status"] == "duplicate"
    assert await redis.xlen("telnyx.call.hangup") == 1


async def test_the_same_event_posted_50_times_at_once_is_stored_once(
    gateway: httpx.AsyncClient, signer: WebhookSigner, redis: Redis
) -> None:
    body = make_event(
        "call.transcription", "ev-burst", transcription_data={"transcript": "hi", "is_final": True}
    )
    responses = await asyncio.gather(
        *(gateway.post(PATH, **signed_post(signer, body)) for _ in range(50))
    )
    assert all(r.status_code == 200 for r in responses)
    assert sorted(r.json()["status"] for r in responses).count("stored") == 1
    assert await redis.xlen("telnyx.call.transcription") == 1


async def test_many_distinct_events_at_once_are_all_stored(
    gateway: httpx.AsyncClient, signer: WebhookSigner, redis: Redis
) -> None:
    bodies = [make_event("call.initiated", f"ev-{i}") for i in range(200)]
    responses = await asyncio.gather(
        *(gateway.post(PATH, **signed_post(signer, b)) for b in bodies)
    )
    assert [r.status_code for r in responses] == [200] * 200
    stored = {fields[b"id"] for _, fields in await redis.xrange("telnyx.call.initiated")}
    assert stored == {f"ev-{i}".encode() for i in range(200)}


async def test_an_unknown_event_type_is_stored_under_its_own_topic(
    gateway: httpx.AsyncClient, signer: WebhookSigner, redis: Redis
) -> None:
    body = make_event("call.conversation_insights.generated", "ev-new", insights={"x": 1})
    response = await gateway.post(PATH, **signed_post(signer, body))
    assert response.status_code == 200
    assert response.json()["topic"] == "telnyx.call.conversation_insights.generated"
    assert await redis.xlen("telnyx.call.conversation_insights.generated") == 1


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda h: h.pop("telnyx-signature-ed25519"), "missing header telnyx-signature-ed25519"),
        (lambda h: h.pop("telnyx-timestamp"), "missing header telnyx-timestamp"),
        (lambda h: h.update({"telnyx-signature-ed25519": "@@@"}), "not valid base64"),
    ],
)
async def test_bad_signatures_are_refused_401_with_a_reason(
    gateway: httpx.AsyncClient,
    signer: WebhookSigner,
    redis: Redis,
    mutate,
    reason: str,  # type: ignore[no-untyped-def]
) -> None:
    body = make_event()
    request = signed_post(signer, body)
    mutate(request["headers"])
    response = await gateway.post(PATH, **request)
    assert response.status_code == 401
    assert reason in response.json()["error"]
    assert await redis.keys("telnyx.*") == []


async def test_a_stale_or_forged_webhook_is_refused(
    gateway: httpx.AsyncClient, signer: WebhookSigner, redis: Redis
) -> None:
    body = make_event()
    stale = await gateway.post(PATH, **signed_post(signer, body, int(time.time()) - 3600))
    forged = await gateway.post(PATH, **signed_post(WebhookSigner.generate(), body))
    tampered = signed_post(signer, body)
    tampered["content"] = body.replace(b"call.answered", b"call.hangup")
    altered = await gateway.post(PATH, **tampered)
    assert [stale.status_code, forged.status_code, altered.status_code] == [401, 401, 401]
    assert "outside the 300 s tolerance" in stale.json()["error"]
    assert "does not match" in forged.json()["error"]
    assert await redis.keys("telnyx.*") == []


async def test_an_oversize_body_is_refused_413(
    gateway: httpx.AsyncClient, signer: WebhookSigner, redis: Redis
) -> None:
    body = make_event(padding="x" * 70_000)
    response = await gateway.post(PATH, **signed_post(signer, body))
    assert response.status_code == 413

    async def chunks():  # no content-length: the bound holds while reading
        for _ in range(100):
            yield b"x" * 1024

    streamed = await gateway.post(PATH, content=chunks(), headers=signer.sign(b""))
    assert streamed.status_code == 413
    assert await redis.keys("telnyx.*") == []


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (b"not json at all", 415, "not UTF-8 JSON"),
        (b"\xff\xfe binary", 415, "not UTF-8 JSON"),
        (b"[1, 2]", 400, "not an object"),
        (b'{"meta": {}}', 400, "no `data` object"),
        (b'{"data": {"id": "x"}}', 400, "data.event_type"),
        (b'{"data": {"event_type": "call.answered"}}', 400, "data.id"),
    ],
)
async def test_a_signed_malformed_body_is_refused_and_dead_lettered(
    gateway: httpx.AsyncClient,
    signer: WebhookSigner,
    redis: Redis,
    body: bytes,
    status: int,
    reason: str,
) -> None:
    response = await gateway.post(PATH, **signed_post(signer, body))
    assert response.status_code == status
    assert reason in response.json()["error"]
    dead = await redis.xrange(WEBHOOK_DEAD_LETTERS)
    assert len(dead) == 1
    assert dead[0][1][b"body"] == body
    assert reason in dead[0][1][b"reason"].decode()


async def test_an_unsigned_malformed_body_is_not_kept(
    gateway: httpx.AsyncClient, redis: Redis
) -> None:
    response = await gateway.post(
        PATH, content=b"junk", headers={"telnyx-timestamp": str(int(time.time()))}
    )
    assert response.status_code == 401
    assert await redis.exists(WEBHOOK_DEAD_LETTERS) == 0


async def test_health_readiness_and_metrics(
    gateway: httpx.AsyncClient, signer: WebhookSigner
) -> None:
    assert (await gateway.get("/healthz")).json() == {"status": "ok"}
    ready = await gateway.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"redis": True}
    await gateway.post(PATH, **signed_post(signer, make_event()))
    await gateway.post(PATH, content=b"{}")
    text = (await gateway.get("/metrics")).text
    assert 'voicetap_gateway_webhooks_total{outcome="published"} 1.0' in text
    assert 'voicetap_gateway_webhooks_total{outcome="unauthorized"} 1.0' in text
    assert "voicetap_gateway_request_seconds_bucket" in text


@pytest.mark.slow  # 400 webhooks, one after another, through a served gateway
async def test_topics_are_trimmed_to_the_bound(
    redis: Redis,
    signer: WebhookSigner,
    gateway_settings,  # type: ignore[no-untyped-def]
) -> None:
    from telnyx_simulator.serve import serve
    from webhook_gateway.main import build_app

    async with (
        serve(build_app(gateway_settings(topic_maxlen=10))) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        for i in range(400):
            await client.post(
                PATH, **signed_post(signer, make_event("call.initiated", f"trim-{i}"))
            )
    assert await redis.xlen("telnyx.call.initiated") < 400


async def test_without_a_public_key_the_gateway_refuses_to_start(redis_url: str) -> None:
    from pydantic import ValidationError

    from webhook_gateway.settings import GatewaySettings

    with pytest.raises(ValidationError, match="TELNYX_PUBLIC_KEY is not set"):
        GatewaySettings(redis_url=redis_url, telnyx_public_key=None)
    assert (
        GatewaySettings(
            redis_url=redis_url, gateway_insecure_skip_verification=True
        ).telnyx_public_key
        is None
    )


async def test_the_dedupe_window_is_a_setting(
    redis: Redis, signer: WebhookSigner, gateway_settings
) -> None:  # type: ignore[no-untyped-def]
    from telnyx_simulator.serve import serve
    from webhook_gateway.main import build_app

    body = make_event("call.answered", "ev-window")
    async with (
        serve(build_app(gateway_settings(gateway_dedupe_window_seconds=1))) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        assert (await client.post(PATH, **signed_post(signer, body))).json()["status"] == "stored"
        assert 0 < await redis.ttl("{telnyx.call.answered}:seen:ev-window") <= 1
        await asyncio.sleep(1.2)
        assert (await client.post(PATH, **signed_post(signer, body))).json()["status"] == "stored"
    assert await redis.xlen("telnyx.call.answered") == 2


async def test_other_methods_are_refused_405(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get(PATH)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert (await gateway.get("/nope")).status_code == 404


async def test_a_late_webhook_about_an_erased_call_is_acknowledged_and_not_stored(
    gateway: httpx.AsyncClient, signer: WebhookSigner, redis: Redis
) -> None:
    from voicetap_common.erasure import tombstone_key

    await redis.set(tombstone_key("v3:ctrl-1"), b"1", ex=60)
    late = make_event(
        "call.transcription", "ev-late", transcription_data={"transcript": "x", "is_final": True}
    )
    response = await gateway.post(PATH, **signed_post(signer, late))
    assert response.status_code == 200
    assert response.json() == {"status": "erased", "id": "ev-late"}
    other = make_event("call.hangup", "ev-other", call_control_id="v3:ctrl-2")
    assert (await gateway.post(PATH, **signed_post(signer, other))).json()["status"] == "stored"
    assert await redis.xlen("telnyx.call.transcription") == 0
    assert await redis.xlen("telnyx.call.hangup") == 1


def test_tombstones_must_outlast_the_dedupe_window(redis_url: str) -> None:
    from pydantic import ValidationError

    from webhook_gateway.settings import GatewaySettings

    with pytest.raises(ValidationError, match="VOICETAP_TOMBSTONE_SECONDS .* is shorter than"):
        GatewaySettings(
            redis_url=redis_url,
            gateway_insecure_skip_verification=True,
            voicetap_tombstone_seconds=60,
            gateway_dedupe_window_seconds=3600,
        )
