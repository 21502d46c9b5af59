"""The instance's periodic loops: the ticker (recordings ticked, idle calls closed), the heartbeat
(the liveness beat; leases and holder keys renewed, orphaned recordings of dead instances
recovered) and the takeover of silent instances' calls."""

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


async def heartbeat(
    ownership: Ownership,
    recovery: Recovery,
    endings: CallEndings,
    stop: asyncio.Event,
    beat_period: float,
    renew_period: float,
) -> None:
    """Every ``beat_period`` (a fifth of the takeover period) the liveness beat; every
    ``renew_period`` (a third of the lease) the leases and holder keys renewed, then the sweep for
    orphans. A Redis outage is logged once when it starts and once when it ends (calls move to
    other instances, and leases expire, if it lasts)."""
    backoff = Backoff(  # named: each of the instance's loops says an outage once, as itself
        "redis (heartbeat: calls move to other instances if this lasts)", log
    )
    next_renewal = time.monotonic() + renew_period
    while not stop.is_set():
        await sleep_or_stop(stop, beat_period)
        if stop.is_set():
            return
        try:
            taken = await ownership.beat()
            if taken:  # stalled past the takeover period: those calls are another's now
                await endings.surrender(taken)
            if time.monotonic() >= next_renewal:
                next_renewal = time.monotonic() + renew_period
                await ownership.heartbeat()
                await recovery.recover_orphans()
        except REDIS_UNAVAILABLE as exc:
            backoff.record_failure(exc)
        else:
            backoff.succeeded()


async def take_over_silent(takeover: Takeover, stop: asyncio.Event, period: float) -> None:
    """Every ``period``, the calls of instances silent too long taken over; apart from the beat,
    so that moving many calls' media never delays this instance's own beat. Redis being away is
    the heartbeat's to report."""
    while not stop.is_set():
        await sleep_or_stop(stop, period)
        if stop.is_set():
            return
        try:
            await takeover.take_silent()
        except REDIS_UNAVAILABLE as exc:
            log.debug("takeover check skipped: Redis unavailable", extra={"error": repr(exc)})
