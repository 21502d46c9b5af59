"""The consumer's handler: every entry of the ``media_ingest`` group (lifecycle topics, media
commands, this instance's inbox) routed to the holder of its call or handled here.

Entries of different calls run concurrently; one call's entries in the order they were published
(a read returns them topic by topic). An entry forwarded from
another instance's inbox is handled as read from its own topic, never re-routed.
"""

import asyncio
from collections import defaultdict

from media_ingest.keys import LIFECYCLE_TOPICS
from media_ingest.lifecycle import Lifecycle
from media_ingest.routing import Router, entry_call
from voicetap_common.command_runner import CommandRunner
from voicetap_common.erasure import erased_among
from voicetap_sdk.consumer import Undeliverable
from voicetap_sdk.redis_client import RedisClient
from voicetap_sdk.streams import Entry
from voicetap_sdk.topics import MEDIA_COMMANDS

# Calls whose entries are handled at once: a batch of 500 new calls handled all together opened a
# Redis connection each and stalled the loop for seconds (RTP of live calls waiting behind it).
CALLS_AT_A_TIME = 64


def _published(entry: Entry) -> tuple[int, int]:
    """When the entry was published (its stream id, or, forwarded, the id it had on its topic): a
    call's hang-up read in the same batch as its fork.stopped, from another topic, comes after it."""
    source = entry.fields.get("source_id")
    ms, _, seq = (source.decode() if source else entry.entry_id).partition("-")
    return (int(ms), int(seq or 0)) if ms.isdigit() and seq.isdigit() else (0, 0)


class Dispatcher:
    def __init__(
        self, redis: RedisClient, router: Router, lifecycle: Lifecycle, runner: CommandRunner
    ) -> None:
        self._redis = redis
        self._router = router
        self._lifecycle = lifecycle
        self._runner = runner

    async def handle(self, entries: list[Entry]) -> None:
        """The StreamConsumer's handler. Entries of erased calls (tombstoned) are acknowledged and
        not acted on: a late ``call.answered`` never starts a recording again."""
        by_call: dict[str, list[Entry]] = defaultdict(list)
        for entry in entries:
            key = entry.fields.get("call_control_id", b"").decode() or entry.entry_id
            by_call[key].append(entry)
        for call_control_id in await erased_among(self._redis, by_call):
            del by_call[call_control_id]
        for group in by_call.values():  # in the order they were published, whatever their topic
            group.sort(key=_published)
        slots = asyncio.Semaphore(CALLS_AT_A_TIME)

        async def handle_call(group: list[Entry]) -> None:
            async with slots:
                await self._handle_call(group)

        results = await asyncio.gather(
            *(handle_call(group) for group in by_call.values()), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _handle_call(self, entries: list[Entry]) -> None:
        for entry in entries:
            if entry.topic == MEDIA_COMMANDS:
                await self.handle_commands([entry])
            elif entry.topic in LIFECYCLE_TOPICS:
                await self.handle_lifecycle([entry])
            else:
                await self.handle_inbox([entry])

    async def handle_lifecycle(self, entries: list[Entry]) -> None:
        for entry in entries:
            call_control_id = entry_call(entry)
            if call_control_id and await self._router.forwarded(entry, call_control_id):
                continue
            await self._lifecycle.on_event(entry, call_control_id)

    async def handle_commands(self, entries: list[Entry]) -> None:
        for entry in entries:
            call_control_id = entry_call(entry)
            if call_control_id and await self._router.forwarded(entry, call_control_id):
                continue
            await self._runner.handle([entry])

    async def handle_inbox(self, entries: list[Entry]) -> None:
        """Entries other instances forwarded here: handled as read from their own topic."""
        for entry in entries:
            source = entry.fields.get("source_topic", b"").decode()
            original = Entry(source, entry.entry_id, entry.fields)
            if source == MEDIA_COMMANDS:
                await self._runner.handle([original])
            elif source in LIFECYCLE_TOPICS:
                await self._lifecycle.on_event(original, entry_call(original))
            else:
                raise Undeliverable(f"forwarded entry from unknown topic {source!r}")

    async def reroute(self, entries: list[Entry]) -> None:
        """Entries forwarded to an instance that died before handling them: routed again, to
        their calls' holders now (or handled here), as read from their own topic."""
        for entry in entries:
            source = entry.fields.get("source_topic", b"").decode()
            original = Entry(source, entry.entry_id, entry.fields)
            if source == MEDIA_COMMANDS:
                await self.handle_commands([original])
            elif source in LIFECYCLE_TOPICS:
                await self.handle_lifecycle([original])
