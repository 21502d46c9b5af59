"""Delivering webhooks the way Telnyx does: signed, concurrent, retried, sometimes twice.

Each event is delivered by its own task, so events can arrive out of order, as from Telnyx.
Anything but a 2xx (3xx included, redirects are not followed) or no answer within ``timeout``
is a failure, retried with exponential backoff, then sent to the failover URL if there is one.
Every attempt carries the same ``data.id`` with ``meta.attempt`` counting up and a fresh signature.
With ``redeliver_probability`` a delivered event is delivered once more, as Telnyx sometimes does.
"""

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import httpx

from telnyx_simulator import payloads
from telnyx_simulator.signing import WebhookSigner
from voicetap_sdk import codec

log = logging.getLogger("voicetap.simulator.webhooks")


@dataclass(frozen=True)
class DeliveryPolicy:
    timeout: float = 2.0
    retries: int = (
        5  # Telnyx's voice retry count is unconfirmed; its per-call policy allows up to 5
    )
    backoff: float = 1.0  # before the first retry; doubled for each next one
    failover_url: str | None = None
    redeliver_probability: float = 0.0
    redeliver_delay: float = 0.5
    seed: int | None = None


@dataclass(frozen=True)
class Delivery:
    """One delivery attempt; ``status`` is None when no answer came (``error`` says why)."""

    event_id: str
    event_type: str
    attempt: int
    url: str
    status: int | None
    error: str | None
    at: float
    redelivery: bool = False

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class WebhookSender:
    """Use as ``async with WebhookSender(url, signer) as sender``; leaving it waits for every delivery."""

    url: str
    signer: WebhookSigner
    policy: DeliveryPolicy = DeliveryPolicy()
    deliveries: list[Delivery] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)  # the ``data`` of every event sent
    _client: httpx.AsyncClient | None = field(default=None, init=False, repr=False)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, init=False, repr=False)
    _random: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.policy.seed)

    async def __aenter__(self) -> Self:
        self._client = httpx.AsyncClient(follow_redirects=False, timeout=self.policy.timeout)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.drain()
        finally:
            assert self._client is not None
            await self._client.aclose()

    def send(
        self, event_type: str, payload: dict[str, Any], occurred_at: datetime | None = None
    ) -> dict[str, Any]:
        """Start delivering a new event now; returns its ``data`` (with its ``id``)."""
        data = payloads.event(event_type, payload, occurred_at)
        self.sent.append(data)
        task = asyncio.create_task(self._deliver(data))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return data

    async def drain(self) -> None:
        """Wait until every delivery started so far (retries and re-deliveries included) is over."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks))

    async def _deliver(self, data: dict[str, Any]) -> None:
        attempt = 0
        for url in [self.url] + ([self.policy.failover_url] if self.policy.failover_url else []):
            for retry in range(self.policy.retries + 1):
                if retry:
                    await asyncio.sleep(self.policy.backoff * 2 ** (retry - 1))
                attempt += 1
                if await self._attempt(data, attempt, url):
                    if self._random.random() < self.policy.redeliver_probability:
                        await asyncio.sleep(self.policy.redeliver_delay)
                        await self._attempt(data, attempt + 1, url, redelivery=True)
                    return
        log.warning(
            "webhook undeliverable",
            extra={"event_id": data["id"], "event_type": data["event_type"]},
        )

    async def _attempt(
        self, data: dict[str, Any], attempt: int, url: str, *, redelivery: bool = False
    ) -> bool:
        assert self._client is not None, "use the sender as an async context manager"
        body = codec.dumps(payloads.envelope(data, attempt, url))
        status: int | None = None
        error: str | None = None
        try:
            response = await self._client.post(url, content=body, headers=self.signer.sign(body))
            status = response.status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        delivery = Delivery(
            data["id"], data["event_type"], attempt, url, status, error, time.time(), redelivery
        )
        self.deliveries.append(delivery)
        return delivery.ok
