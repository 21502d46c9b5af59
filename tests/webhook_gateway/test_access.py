"""The gateway's one route that is not Telnyx's, ``/metrics``: behind ``VOICETAP_METRICS_TOKEN``
when set; webhooks keep their signature and no API token is asked for."""

from collections.abc import Callable

import httpx
from redis.asyncio import Redis

from telnyx_simulator.serve import serve
from telnyx_simulator.signing import WebhookSigner
from tests.webhook_gateway.conftest import make_event, signed_post
from webhook_gateway.main import build_app
from webhook_gateway.settings import GatewaySettings


async def test_metrics_take_the_metrics_token_and_webhooks_their_signature(
    redis: Redis, gateway_settings: Callable[..., GatewaySettings], signer: WebhookSigner
) -> None:
    settings = gateway_settings(
        voicetap_metrics_token="scrape-token", voicetap_api_token="api-token"
    )
    async with serve(build_app(settings)) as url, httpx.AsyncClient(base_url=url) as http:
        body = make_event("call.answered", "ev-acc")
        assert (await http.post("/webhooks/telnyx", **signed_post(signer, body))).status_code == 200
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/readyz")).status_code == 200
        for headers in ({}, {"authorization": "Bearer api-token"}, {"authorization": "Bearer x"}):
            assert (await http.get("/metrics", headers=headers)).status_code == 401, headers
        metrics = await http.get("/metrics", headers={"authorization": "Bearer scrape-token"})
        assert metrics.status_code == 200
        assert 'voicetap_http_refused_total{reason="wrong_token",service="gateway"} 2.0' in (
            metrics.text
        )


async def test_without_a_metrics_token_metrics_are_open(
    redis: Redis, gateway_settings: Callable[..., GatewaySettings]
) -> None:
    async with (
        serve(build_app(gateway_settings())) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        assert (await http.get("/metrics")).status_code == 200
