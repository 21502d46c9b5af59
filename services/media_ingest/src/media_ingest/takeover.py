"""Takeover: the live calls of an instance silent past ``INGEST_TAKEOVER_SECONDS`` move to the
surviving instances, each call to exactly one of them.

Every instance beats several times per takeover period (``Ownership.beat``) and looks for
instances whose last beat is older. Each live call of such an instance is claimed by one script
in the calls' hash slot (the dead holder still silent, the call still listed under it: moved to the
claimer's list, its holder key pointed at the claimer); a holder that comes back in time (restart
in place) beats first, and no claim succeeds after that. The claimer then:

- records the rest of the call as its next part (``CallRegistry.take_over``: a file of its own
  starting where the call is now; the dead holder's part is stored apart by whoever repairs it,
  ``media_ingest.recovery``, and the parts are joined before the completed event,
  ``media_ingest.uploads``);
- moves the media to itself: ``fork_stop`` (its failure tolerated), then ``fork_start`` to a port
  pair of its own; or ``streaming_start`` to its own WebSocket; with command ids derived from the
  takeover, so that Telnyx de-duplicates a repeat; a paused call stays paused;
- publishes ``voicetap.media.takeover``.

Once the dead instance lists no call, its beat goes and the entries still waiting in its inbox
(forwarded to it before the claims) are routed again to the calls' new holders.
"""

import asyncio
import contextlib
import logging
import time
from typing import Any, cast

from media_ingest.calls.registry import CallRegistry
from media_ingest.commands import MediaCommands
from media_ingest.dispatch import Dispatcher
from media_ingest.endings import CallEndings
from media_ingest.events import EventPublisher
from media_ingest.keys import (
    ALIVE,
    DRAIN_PREFIX,
    PARTS_TTL,
    held_key,
    inbox,
    owner_key,
    parts_key,
    taken_key,
)
from media_ingest.locks import CallLocks
from media_ingest.ownership import Ownership
from media_ingest.redis_values import text
from voicetap_common.call_control import classify
from voicetap_sdk import codec
from voicetap_sdk.commands import ForkStart, ForkStop, StreamingStart
from voicetap_sdk.media_events import MediaTakeover
from voicetap_sdk.redis_client import RedisClient
from voicetap_sdk.streams import Entry
from voicetap_sdk.topics import MEDIA_TAKEOVER

log = logging.getLogger("voicetap.media_ingest.takeover")

DRAIN_CLAIM_SECONDS = 60
MOVES_AT_A_TIME = 16  # calls whose media is moved concurrently (Call Control requests in flight)

# KEYS: alive, held:<dead>, held:<me>, the call's holder key, the call's parts, taken:<dead>.
# ARGV: dead, me, call, deadline (wall time), lease seconds, ttl of the parts.
_CLAIM = """
local beat = redis.call('ZSCORE', KEYS[1], ARGV[1])
if beat and tonumber(beat) > tonumber(ARGV[4]) then
  return false
end
local facts = redis.call('HGET', KEYS[2], ARGV[3])
if not facts then
  return false
end
redis.call('HDEL', KEYS[2], ARGV[3])
redis.call('HSET', KEYS[3], ARGV[3], facts)
redis.call('SET', KEYS[4], ARGV[2], 'EX', ARGV[5])
local part = cjson.decode(facts)['part'] or 1
redis.call('HSET', KEYS[5], tostring(part), ARGV[1])
redis.call('EXPIRE', KEYS[5], ARGV[6])
redis.call('SADD', KEYS[6], ARGV[3])
redis.call('EXPIRE', KEYS[6], ARGV[6])
return {facts, beat or ARGV[4]}
"""

# KEYS: alive, held:<dead>. ARGV: dead, deadline. The dead instance's beat goes once it holds nothing.
_FORGET = """
local beat = redis.call('ZSCORE', KEYS[1], ARGV[1])
if beat and tonumber(beat) <= tonumber(ARGV[2]) and redis.call('HLEN', KEYS[2]) == 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 1
end
return 0
"""


class Takeover:
    def __init__(
        self,
        redis: RedisClient,
        registry: CallRegistry,
        commands: MediaCommands,
        ownership: Ownership,
        endings: CallEndings,
        locks: CallLocks,
        publisher: EventPublisher,
        dispatcher: Dispatcher,
        *,
        instance: str,
        after_seconds: float,
    ) -> None:
        self._redis = redis
        self._registry = registry
        self._commands = commands
        self._ownership = ownership
        self._endings = endings
        self._locks = locks
        self._publisher = publisher
        self._dispatcher = dispatcher
        self._instance = instance
        self._after = after_seconds
        self._claim = redis.register_script(_CLAIM)
        self._forget = redis.register_script(_FORGET)

    async def take_silent(self) -> int:
        """Take the calls of every instance silent past the takeover period; how many this took."""
        deadline = time.time() - self._after
        silent = cast(list[bytes], await self._redis.zrangebyscore(ALIVE, "-inf", deadline))
        taken = 0
        for name in map(text, silent):
            if name == self._instance:
                continue  # this process's own beat lagged (a stalled loop): it is alive
            claimed_calls: list[tuple[str, dict[str, Any], float]] = []
            for call_control_id in map(text, await self._redis.hkeys(held_key(name))):
                claimed = await self._claim(
                    keys=[
                        ALIVE,
                        held_key(name),
                        held_key(self._instance),
                        owner_key(call_control_id),
                        parts_key(call_control_id),
                        taken_key(name),
                    ],
                    args=[
                        name,
                        self._instance,
                        call_control_id,
                        deadline,
                        self._ownership.lease,
                        PARTS_TTL,
                    ],
                )
                if claimed:
                    facts, last_beat = codec.loads(claimed[0]), float(claimed[1])
                    claimed_calls.append((call_control_id, facts, last_beat))
            await self._move_all(name, claimed_calls)
            taken += len(claimed_calls)
            if await self._forget(keys=[ALIVE, held_key(name)], args=[name, deadline]):
                await self._reroute_inbox(name)
        return taken

    async def _move_all(self, dead: str, calls: list[tuple[str, dict[str, Any], float]]) -> None:
        """The claimed calls' media moved here, ``MOVES_AT_A_TIME`` at a time."""
        slots = asyncio.Semaphore(MOVES_AT_A_TIME)

        async def move(call_control_id: str, facts: dict[str, Any], last_beat: float) -> None:
            async with slots:
                await self._take(call_control_id, dead, facts, last_beat)

        await asyncio.gather(*(move(*call) for call in calls))

    async def _take(
        self, call_control_id: str, dead: str, facts: dict[str, Any], last_beat: float
    ) -> None:
        started_at = float(facts["started_at"])
        dead_part = int(facts.get("part", 1))
        part = dead_part + 1
        earlier = [
            *facts.get("parts", []),
            {
                "part": dead_part,
                "instance": dead,
                "start": facts.get("file_start", 0.0),
                "end": None,
            },
        ]
        gap_start = round(max(last_beat - started_at, 0.0), 3)
        live = facts.get("live")
        async with self._locks.hold(call_control_id):
            call = self._registry.take_over(
                call_control_id,
                started_at=started_at,
                part=part,
                earlier_parts=earlier,
                gap_start=gap_start,
            )
            command_id = f"takeover:{call_control_id}:{part}"
            try:
                if live == "fork":
                    with contextlib.suppress(Exception):  # the dead holder's fork may be gone
                        await self._commands.send_only(
                            ForkStop(id=command_id, call_control_id=call_control_id)
                        )
                    await self._commands.fork_start(
                        ForkStart(id=command_id, call_control_id=call_control_id)
                    )
                elif live == "stream":
                    await self._commands.streaming_start(
                        StreamingStart(id=command_id, call_control_id=call_control_id)
                    )
                else:
                    call.pause()
                    await self._ownership.note(call)
            except Exception as exc:  # noqa: BLE001 - classified: the call stays, paused
                kind, detail, _ = classify(exc)
                if kind == "call_ended":
                    await self._endings.finish(call, "hangup")
                else:
                    log.error(
                        "took a call over but could not move its media",
                        extra={"call_control_id": call_control_id, "kind": kind, "error": detail},
                    )
                    call.pause()
        event = MediaTakeover(
            id=command_id,
            call_control_id=call_control_id,
            dead_instance=dead,
            instance=self._instance,
            part=part,
            gap_start=gap_start,
            media=live if live in ("fork", "stream") else "paused",
        )
        self._publisher.offer(
            MEDIA_TAKEOVER, event.id, MEDIA_TAKEOVER, event, call_control_id=call_control_id
        )
        log.warning(
            "took a live call over from a silent instance",
            extra={"call_control_id": call_control_id, "dead_instance": dead, "part": part},
        )

    async def _reroute_inbox(self, dead: str) -> None:
        """Entries forwarded to the dead instance before its calls moved: to their new holders."""
        if not await self._redis.set(
            DRAIN_PREFIX + dead, self._instance, nx=True, ex=DRAIN_CLAIM_SECONDS
        ):
            return
        stream = inbox(dead)
        raw = cast(list[tuple[bytes, dict[bytes, bytes]]], await self._redis.xrange(stream))
        entries = [Entry.from_redis(stream, entry_id, fields) for entry_id, fields in raw]
        if entries:
            await self._dispatcher.reroute(entries)
        await self._redis.delete(stream)
