"""The checks a user would make after calls were played: each returns a :class:`Check`.

Webhooks accepted (2xx), every accepted event on its topic exactly once (read back from Redis by
the event's ``id``; with ``TOPIC_PARTITIONS`` above 1, on its call's partition of the topic), each call's recording present with the length of the audio sent, each call's
final transcription lines in its transcript and found by search. Recordings and transcripts appear
some time after the hang-up, so those checks poll until a shared deadline.
"""

import asyncio
import re
import struct
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TypeVar, cast
from urllib.parse import quote

import httpx

from telnyx_simulator.player import CallPlayer
from telnyx_simulator.report import CallResult, Check
from telnyx_simulator.rtp import FRAME_SECONDS
from telnyx_simulator.state import FakeTelnyxState
from telnyx_simulator.webhooks import Delivery
from voicetap_sdk import codec
from voicetap_sdk.partitions import stream_for, streams_of
from voicetap_sdk.redis_client import REDIS_UNAVAILABLE, RedisClient
from voicetap_sdk.streams import RawEntries
from voicetap_sdk.topics import RECORDING_COMPLETED

MEDIA_ACTIONS = ("fork_start", "streaming_start")
DURATION_TOLERANCE = 0.5  # seconds a recording may differ from the audio sent
POLL_SECONDS = 0.5
_XRANGE_BATCH = 1000
T = TypeVar("T")


def call_path(call_control_id: str) -> str:
    return quote(call_control_id, safe=":")


def recording_url(ingest_url: str, call_control_id: str) -> str:
    return f"{ingest_url}/calls/{call_path(call_control_id)}/recording.wav"


def transcript_url(indexer_url: str, call_control_id: str) -> str:
    return f"{indexer_url}/calls/{call_path(call_control_id)}/transcript?format=txt"


def search_url(indexer_url: str, word: str) -> str:
    return f"{indexer_url}/search?q={quote(word)}"


async def poll(attempt: Callable[[], Awaitable[T | None]], deadline: float) -> T | None:
    """``attempt()`` until it gives a result or ``deadline`` (monotonic) passes; its last result."""
    while True:
        result = await attempt()
        if result is not None or time.monotonic() >= deadline:
            return result
        await asyncio.sleep(POLL_SECONDS)


# -- webhooks --------------------------------------------------------------------------------------
_STATUS_HINTS = {
    401: "the gateway does not trust the simulator's signing key: run the stack in local mode "
    "(no TELNYX_PUBLIC_KEY) or pass --signing-key with the private half of the key it trusts",
    503: "the gateway could not store events in Redis in time",
}


def check_webhooks(deliveries: Sequence[Delivery]) -> Check:
    by_event: dict[str, list[Delivery]] = defaultdict(list)
    for delivery in deliveries:
        by_event[delivery.event_id].append(delivery)
    outcomes = Counter(
        str(d.status) if d.status is not None else (d.error or "no answer").split(":")[0]
        for d in deliveries
    )
    redelivered = sum(d.redelivery for d in deliveries)
    lost = [attempts for attempts in by_event.values() if not any(d.ok for d in attempts)]
    answers = ", ".join(f"{n}× {what}" for what, n in sorted(outcomes.items()))
    detail = f"{len(by_event)} events in {len(deliveries)} deliveries ({answers})"
    if redelivered:
        detail += f", {redelivered} re-delivered as Telnyx does"
    if not by_event:
        return Check("webhooks", "fail", "no webhook was sent")
    if not lost:
        return Check("webhooks", "pass", detail + ": every event accepted")
    problems = []
    for attempts in lost:
        last = attempts[-1]
        answer = str(last.status) if last.status is not None else last.error
        problems.append(
            f"{last.event_type} {last.event_id}: not accepted after {len(attempts)} attempts (last: {answer})"
        )
    hints = {h for s, h in _STATUS_HINTS.items() if str(s) in outcomes}
    if any(d.status is None for attempts in lost for d in attempts):
        hints.add("is the gateway running at the --gateway-url?")
    return Check(
        "webhooks",
        "fail",
        f"{detail}: {len(lost)} events never accepted",
        [*sorted(hints), *problems],
    )


# -- topics ----------------------------------------------------------------------------------------
async def _entries_since(redis: RedisClient, topic: str, since_ms: int) -> list[dict[bytes, bytes]]:
    found: list[dict[bytes, bytes]] = []
    start = f"{since_ms}-0"
    while True:
        batch = cast(RawEntries, await redis.xrange(topic, min=start, max="+", count=_XRANGE_BATCH))
        found.extend(fields for _, fields in batch)
        if len(batch) < _XRANGE_BATCH:
            return found
        start = "(" + batch[-1][0].decode()


async def check_topics(
    redis: RedisClient, deliveries: Sequence[Delivery], events: dict[str, tuple[str, str]],
    results: dict[str, CallResult], since_ms: int, redis_url: str, partitions: int,
) -> Check:  # fmt: skip
    """``events``: event id -> (event type, call_control_id) of every event sent."""
    accepted = {d.event_id for d in deliveries if d.ok}
    expected: dict[str, set[str]] = defaultdict(
        set
    )  # per stream: the topic, or the call's partition of it
    for event_id in accepted:
        event_type, call_control_id = events[event_id]
        expected[stream_for("telnyx." + event_type, call_control_id, partitions)].add(event_id)
    problems: list[str] = []
    lengths: dict[str, int] = {}
    try:
        for stream, ids in sorted(expected.items()):
            lengths[stream] = await redis.xlen(stream)
            seen = Counter(
                fields.get(b"id", b"").decode()
                for fields in await _entries_since(redis, stream, since_ms)
            )
            for event_id in sorted(ids):
                event_type, call_control_id = events[event_id]
                topic = "telnyx." + event_type
                if seen[event_id] and (result := results.get(call_control_id)) is not None:
                    result.topics[topic] = result.topics.get(topic, 0) + 1
                if seen[event_id] != 1:
                    what = "missing from" if not seen[event_id] else f"{seen[event_id]} times on"
                    problems.append(
                        f"call {call_control_id}: {event_type} {event_id} {what} {stream}"
                    )
    except REDIS_UNAVAILABLE as exc:
        return Check(
            "topics", "fail",
            f"could not read the topics at {redis_url}: {exc} (set --redis-url to the stack's Redis)",
        )  # fmt: skip
    counts = ", ".join(f"{t} {len(ids)} (XLEN {lengths[t]})" for t, ids in sorted(expected.items()))
    if not expected:
        return Check("topics", "fail", "no accepted event to look for")
    if problems:
        return Check(
            "topics", "fail", f"accepted events missing or repeated on topics: {counts}", problems
        )
    return Check("topics", "pass", f"every accepted event on its topic exactly once: {counts}")


# -- recordings ------------------------------------------------------------------------------------
def wav_seconds(data: bytes) -> float:
    """Length of a WAV file of any encoding, from its ``fmt `` byte rate and ``data`` size."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a WAV file")
    position, byte_rate = 12, 0
    while position + 8 <= len(data):
        chunk, size = data[position : position + 4], struct.unpack_from("<I", data, position + 4)[0]
        body = position + 8
        if chunk == b"fmt " and size >= 16:
            byte_rate = struct.unpack_from("<I", data, body + 8)[0]
        elif chunk == b"data":
            if not byte_rate:
                raise ValueError("WAV data before its format")
            available = len(data) - body
            return (available if size in (0, 0xFFFFFFFF) else min(size, available)) / byte_rate
        position = body + size + (size & 1)
    raise ValueError("WAV file without data")


def media_seconds(player: CallPlayer) -> float:
    """How much audio the call sent to the stack (the longer leg of each fork or stream)."""
    packets = sum(max(f.sent.values(), default=0) for f in player.forks)
    packets += sum(max(s.sent.values(), default=0) for s in player.streams)
    return packets * FRAME_SECONDS


def media_packets(player: CallPlayer) -> int:
    """Packets (RTP datagrams, WebSocket media messages) the call sent, every leg counted."""
    return sum(sum(f.sent.values()) for f in player.forks) + sum(
        sum(s.sent.values()) for s in player.streams
    )


def paused_seconds(event: dict[str, object]) -> float:
    """The silence a recording holds for its paused intervals (fork stopped, PCI pause): the
    ``paused`` ``[start, end]`` pairs of its ``voicetap.recording.completed`` event."""
    intervals = event.get("paused")
    if not isinstance(intervals, list):
        return 0.0
    return sum(
        max(float(end) - float(start), 0.0)
        for interval in intervals
        if isinstance(interval, list) and len(interval) == 2
        for start, end in [interval]
    )


async def _recording_events(
    redis: RedisClient, since_ms: int, partitions: int
) -> dict[str, dict[str, object]]:
    found: dict[str, dict[str, object]] = {}
    read = [
        await _entries_since(redis, stream, since_ms)
        for stream in streams_of(RECORDING_COMPLETED, partitions)
    ]
    for fields in (fields for entries in read for fields in entries):
        try:
            event = codec.loads(fields.get(b"event", b"{}"))
        except codec.JSONDecodeError:
            continue
        call_control_id = (fields.get(b"call_control_id") or b"").decode() or (
            event.get("call_control_id") if isinstance(event, dict) else None
        )
        if call_control_id and isinstance(event, dict):
            found[str(call_control_id)] = event
    return found


async def check_recordings(
    client: httpx.AsyncClient, ingest_url: str, api_url: str, redis: RedisClient, state: FakeTelnyxState,
    players: Sequence[CallPlayer], results: dict[str, CallResult], since_ms: int, deadline: float, partitions: int,
    headers: dict[str, str] | None = None,
) -> list[Check]:  # fmt: skip
    """Two checks: the media the stack asked for, and each call's recording (file and event);
    ``headers``: the bearer of ``VOICETAP_API_TOKEN`` when the stack has one."""
    media_problems: list[str] = []
    recorded: list[CallPlayer] = []
    for player in players:
        cid = player.call.call_control_id
        result = results[cid]
        asked = [
            r for r in state.requests_for(cid) if r.action in MEDIA_ACTIONS and r.status == 200
        ]
        result.media = [str(r.action) for r in asked]
        result.media_seconds = round(media_seconds(player), 3)
        if not asked:
            media_problems.append(
                f"call {cid}: media_ingest asked for no media (fork_start / streaming_start); "
                f"is the stack in local mode, with TELNYX_BASE_URL={api_url}/v2?"
            )
        elif result.media_seconds == 0:
            media_problems.append(
                f"call {cid}: {', '.join(result.media)} asked, but no audio was sent"
            )
        else:
            recorded.append(player)
    kinds = Counter(action for r in results.values() for action in r.media)
    media = Check(
        "media",
        "fail" if media_problems else "pass",
        f"{len(recorded)}/{len(players)} calls sent their audio as asked "
        f"({', '.join(f'{n}× {a}' for a, n in sorted(kinds.items())) or 'nothing asked'})",
        media_problems,
    )
    if not recorded:
        return [media, Check("recordings", "fail", "no call sent audio, so none can be recorded")]

    async def events() -> dict[str, dict[str, object]] | None:
        found = await _recording_events(redis, since_ms, partitions)
        return found if all(p.call.call_control_id in found for p in recorded) else None

    problems: list[str] = []
    try:
        completed = await poll(events, deadline) or await _recording_events(
            redis, since_ms, partitions
        )
    except REDIS_UNAVAILABLE as exc:
        completed = {}
        problems.append(f"could not read {RECORDING_COMPLETED}: {exc}")

    async def recording(player: CallPlayer) -> str | None:
        cid = player.call.call_control_id
        result = results[cid]
        url = result.recording_url = recording_url(ingest_url, cid)

        async def fetch() -> tuple[int, bytes] | None:
            try:
                response = await client.get(url, headers=headers, timeout=10.0)
            except httpx.HTTPError:
                return None
            return (response.status_code, response.content) if response.status_code == 200 else None

        got = await poll(fetch, deadline)
        if got is None:
            return f"call {cid}: no recording at {url}"
        try:
            result.recording_seconds = round(wav_seconds(got[1]), 3)
        except ValueError as exc:
            return f"call {cid}: {url} is not a usable WAV file ({exc})"
        paused = paused_seconds(completed.get(cid, {}))
        expected = result.media_seconds + paused
        if abs(result.recording_seconds - expected) > DURATION_TOLERANCE:
            also = f" and {paused:.2f} s paused" if paused else ""
            return (
                f"call {cid}: the recording lasts {result.recording_seconds:.2f} s, the audio sent "
                f"{result.media_seconds:.2f} s{also} (±{DURATION_TOLERANCE} s allowed)"
            )
        return None

    found = await asyncio.gather(*(recording(p) for p in recorded))
    problems += [problem for problem in found if problem]
    failed = {p.call.call_control_id for p, problem in zip(recorded, found, strict=True) if problem}
    for player in recorded:
        cid = player.call.call_control_id
        event = completed.get(cid)
        if event is None:
            problems.append(f"call {cid}: no {RECORDING_COMPLETED} event")
            failed.add(cid)
        elif not event.get("path") or event.get("duration", event.get("duration_seconds")) is None:
            problems.append(f"call {cid}: {RECORDING_COMPLETED} without path or duration")
            failed.add(cid)
    good = len(recorded) - len(failed)
    return [
        media,
        Check(
            "recordings",
            "fail" if problems else "pass",
            f"{good}/{len(recorded)} recordings present, as long as the audio sent and the "
            f"pauses (±{DURATION_TOLERANCE} s), each announced on {RECORDING_COMPLETED}",
            problems,
        ),
    ]


# -- transcripts -----------------------------------------------------------------------------------
def _normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w']+", " ", text.lower()).split())


def search_word(lines: Iterable[str]) -> str | None:
    """A word to search a transcript by: the longest word (ties: the first) of its lines."""
    words = [w for line in lines for w in re.findall(r"[A-Za-z]{4,}", line)]
    return max(words, key=len) if words else None


async def check_transcripts(
    client: httpx.AsyncClient, indexer_url: str, headers: dict[str, str],
    players: Sequence[CallPlayer], results: dict[str, CallResult], deadline: float,
) -> Check:  # fmt: skip
    transcribed = [p for p in players if p.finals]
    if not transcribed:
        return Check(
            "transcripts", "skip",
            "no call sent a final transcription (no script, no transcription started, or calls "
            "shorter than the script's first line)",
        )  # fmt: skip
    problems: list[str] = []
    failed: set[str] = set()

    async def transcript(player: CallPlayer) -> None:
        cid = player.call.call_control_id
        result = results[cid]
        url = result.transcript_url = transcript_url(indexer_url, cid)
        wanted = [line.text for line in player.finals]
        result.search_word = search_word(wanted[:1])
        missing: list[str] = list(wanted)

        async def fetch() -> bool | None:
            nonlocal missing
            try:
                response = await client.get(url, headers=headers, timeout=10.0)
            except httpx.HTTPError:
                return None
            if response.status_code != 200:
                return None
            body = _normalise(response.text)
            missing = [line for line in wanted if _normalise(line) not in body]
            return True if not missing else None

        if await poll(fetch, deadline) is None:
            shown = "; ".join(repr(m) for m in missing[:3])
            problems.append(f"call {cid}: {len(missing)}/{len(wanted)} lines not in {url}: {shown}")
            failed.add(cid)

    await asyncio.gather(*(transcript(p) for p in transcribed))

    by_word: dict[str, set[str]] = defaultdict(set)
    for player in transcribed:
        word = results[player.call.call_control_id].search_word
        if word:
            by_word[word].add(player.call.call_control_id)

    async def search(word: str, calls: set[str]) -> None:
        found: set[str] = set()

        async def fetch() -> bool | None:
            offset: int | None = 0
            while offset is not None:
                try:
                    response = await client.get(
                        f"{indexer_url}/search",
                        params={"q": word, "limit": 200, "offset": offset},
                        headers=headers,
                        timeout=10.0,
                    )
                    page = response.json() if response.status_code == 200 else None
                except (httpx.HTTPError, ValueError):
                    return None
                if not isinstance(page, dict):
                    return None
                found.update(str(hit.get("call_control_id")) for hit in page.get("items") or [])
                offset = page.get("next_offset") if not calls <= found else None
            return True if calls <= found else None

        if await poll(fetch, deadline) is None:
            for cid in sorted(calls - found):
                problems.append(f"call {cid}: not found by {search_url(indexer_url, word)}")
                failed.add(cid)

    await asyncio.gather(*(search(w, c) for w, c in by_word.items()))
    lines = sum(len(p.finals) for p in transcribed)
    words = ", ".join(f'"{w}"' for w in sorted(by_word))
    return Check(
        "transcripts",
        "fail" if problems else "pass",
        f"{len(transcribed) - len(failed)}/{len(transcribed)} transcripts hold every final line sent "
        f"({lines} lines in all) and are found by searching {words}",
        problems,
    )
