"""The completer against a real Redis and each back end: revisions, and a crash between publishing and marking."""

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from tests.transcript_indexer.indexer_events import entry, hangup, initiated, transcription
from transcript_indexer.completion import Completer
from transcript_indexer.live import LiveFeed
from transcript_indexer.records import build_batch
from transcript_indexer.storage.base import Storage
from voicetap_sdk.topics import TRANSCRIPT_COMPLETED

CALL = "v3:completion"


class Crash(Exception):
    """The process dies right after publishing, before the database is marked."""


def _completer(storage: Storage, redis: Redis) -> Completer:
    return Completer(storage, redis, LiveFeed(redis, 100, 60), 1.0, 1000, 1, CollectorRegistry())


async def _apply(storage: Storage, *events: dict[str, object]) -> None:
    """Stored long enough ago to be past the settle time."""
    await storage.apply(
        build_batch([entry(e) for e in events]), datetime.now(UTC) - timedelta(seconds=5)
    )


async def _published(redis: Redis) -> list[tuple[int, list[str]]]:
    events = [orjson.loads(f[b"event"]) for _, f in await redis.xrange(TRANSCRIPT_COMPLETED)]
    return [
        (e["payload"]["revision"], [s["text"] for s in e["payload"]["segments"]]) for e in events
    ]


async def test_a_segment_stored_while_a_crashed_revision_was_unmarked_gets_its_own_revision(
    storage: Storage, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    completer = _completer(storage, redis)
    await _apply(storage, initiated(CALL), transcription(CALL, "first", 1.0), hangup(CALL, 5.0))

    async def crash(*args: object) -> None:
        raise Crash

    with monkeypatch.context() as patched:
        patched.setattr(storage, "mark_completed", crash)
        with pytest.raises(Crash):
            await completer.sweep()
    assert await _published(redis) == [(1, ["first"])]
    await _apply(
        storage, transcription(CALL, "late", 4.0)
    )  # stored before the next sweep marks revision 1
    assert await completer.sweep() == 0  # revision 1 found published: marked with what it covered
    assert await completer.sweep() == 1
    assert await _published(redis) == [(1, ["first"]), (2, ["first", "late"])]
    assert await completer.sweep() == 0
    assert await storage.due_completions(datetime.now(UTC), 10) == []
