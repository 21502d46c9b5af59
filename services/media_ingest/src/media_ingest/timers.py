"""The instance's periodic loops: the ticker (recordings ticked, idle calls closed), the liveness
beat (and the takeover of silent instances' calls) and the heartbeat (leases and holder keys
renewed, orphaned recordings of dead instances recovered)."""

import asyncio
import logging
import time

from media_ingest.calls.registry import CallRegistry
from media_ingest.endings import CallEndings
from media_ingest.ownership import Ownership
from media_ingest.recovery import Recovery
from media_ingest.takeover import Takeover
from voicetap_sdk.backoff import Backoff, sleep_or_stop
from voicetap_sdk.redis_client import REDIS_UNAVAILABLE

log = logging.getLogger("voicetap.media_ingest.timers")

TICK_SECONDS = 0.05
EXPIRY_SECONDS = 1.0


async def tick(registry: CallRegistry, endings: CallEndings, stop: asyncio.Event) -> None:
    """Each call's recording about once per analytics interval; idle calls closed every second."""
    next_expiry = 0.0
    while not stop.is_set():
        now = time.monotonic()
        registry.tick_due(now)
        if now >= next_expiry:
            next_expiry = now + EXPIRY_SECONDS
            try:
                await endings.expire_idle(now)
            except Exception:  # noqa: BLE001 - the ticker must go on
                log.exception("closing idle calls failed")
        await asyncio.sleep(TICK_SECONDS)


async def liveness(
    ownership: Ownership, takeover: Takeover, stop: asyncio.Event, period: float
) -> None:
    """Every ``period`` (a fifth of the takeover period): beat, then take the calls of instances
    silent too long. A Redis outage is logged once when it starts and once when it ends."""
    backoff = Backoff("redis", log, context={"for": "liveness (calls move if this lasts)"})
    while not stop.is_set():
        await sleep_or_stop(stop, period)
        if stop.is_set():
            return
        try:
            await ownership.beat()
            await takeover.take_silent()
        except REDIS_UNAVAILABLE as exc:
            backoff.record_failure(exc)
        else:
            backoff.succeeded()


async def heartbeat(
    ownership: Ownership, recovery: Recovery, stop: asyncio.Event, period: float
) -> None:
    """Every ``period`` (a third of the lease): renew, then sweep for orphans. A Redis outage is
    logged once when it starts and once when it ends (the leases expire if it lasts)."""
    backoff = Backoff("redis", log, context={"for": "heartbeat (leases expire if this lasts)"})
    while not stop.is_set():
        await sleep_or_stop(stop, period)
        if stop.is_set():
            return
        try:
            await ownership.heartbeat()
            await recovery.recover_orphans()
        except REDIS_UNAVAILABLE as exc:
            backoff.record_failure(exc)
        else:
            backoff.succeeded()
