import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
import pytest

from telnyx_simulator.serve import serve
from telnyx_simulator.signing import WebhookSigner
from webhook_gateway.main import build_app
from webhook_gateway.settings import GatewaySettings


@pytest.fixture(scope="session")
def signer() -> WebhookSigner:
    return WebhookSigner.generate()


def make_event(
    event_type: str = "call.answered", event_id: str | None = None, **payload: Any
) -> bytes:
    body = {
        "data": {
            "record_type": "event",
            "event_type": event_type,
            "id": event_id or str(uuid.uuid4()),
            "occurred_at": "2026-11-23T12:00:00.000000Z",
            "payload": {
                "call_control_id": "v3:ctrl-1",
                "call_leg_id": "leg-1",
                "call_session_id": "sess-1",
                **payload,
            },
        },
        "meta": {"attempt": 1, "delivered_to": "https://example.com/webhooks/telnyx"},
    }
    return orjson.dumps(body)


@pytest.fixture
def gateway_settings(
    redis_url: str, signer: WebhookSigner, tmp_path: Any
) -> Callable[..., GatewaySettings]:
    def build(**overrides: Any) -> GatewaySettings:
        values: dict[str, Any] = {
            "redis_url": redis_url,
            "telnyx_public_key": signer.public_key,
            "voicetap_data_dir": tmp_path,
            "gateway_max_body_bytes": 64 * 1024,
        }
        values.update(overrides)
        return GatewaySettings(**values)

    return build


@pytest.fixture
async def gateway(
    redis: Any, gateway_settings: Callable[..., GatewaySettings]
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on a real uvicorn-served gateway, with Redis emptied first."""
    async with (
        serve(build_app(gateway_settings())) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=5) as client,
    ):
        yield client


def signed_post(signer: WebhookSigner, body: bytes, timestamp: int | None = None) -> dict[str, Any]:
    return {
        "content": body,
        "headers": signer.sign(body, timestamp if timestamp is not None else int(time.time())),
    }
