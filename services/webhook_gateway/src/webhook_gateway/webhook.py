"""``POST /webhooks/telnyx``: verify → validate → de-duplicate → publish, then answer.

A plain ASGI app, because it is the hot path: it reads the headers and the bounded body straight
from the ASGI messages and answers with prebuilt JSON, without a framework's request objects and
middleware layers (about a third of the CPU per webhook, measured in bench/). It answers 2xx only
after Redis stored the event, and 503 (so that Telnyx retries) when Redis does not confirm within
the answer deadline, well inside Telnyx's 2 s.

With ``TOPIC_PARTITIONS`` above 1 the event goes to its call's partition of the topic
(``voicetap_sdk.partitions``), and so does its de-duplication key: a re-delivery carries the
same call id, so it meets the key on the same partition. The answer names the topic; the entry id
is the partition's, which the call id tells.

A webhook about an erased call (its tombstone set, ``voicetap_common.erasure``) is answered 200 and
not stored: Telnyx delivers late and retries. The tombstone is checked by the publisher just before
the append, not inside the same script (on a cluster it lives in another slot than the stream); an
erasure that starts between the two is covered by its consumers, which ignore events of a
tombstoned call, and by the erasure's sweep of the topics, which runs after its tombstone is set.
"""

import logging
import time
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from voicetap_sdk.partitions import stream_for
from voicetap_sdk.streams import Fields, Producer
from voicetap_sdk.topics import WEBHOOK_DEAD_LETTERS, telnyx_topic
from webhook_gateway.envelope import EventKey, MalformedEvent, read_event_key
from webhook_gateway.metrics import GatewayMetrics
from webhook_gateway.publisher import ERASED, Publication, PublishBatcher
from webhook_gateway.signature import SignatureError, SignatureVerifier

log = logging.getLogger("voicetap.gateway")

_SIGNATURE = b"telnyx-signature-ed25519"
_TIMESTAMP = b"telnyx-timestamp"
_CONTENT_LENGTH = b"content-length"
_JSON_HEADERS = [(b"content-type", b"application/json")]


class BodyTooLarge(Exception):
    pass


class WebhookEndpoint:
    def __init__(
        self,
        *,
        verifier: SignatureVerifier | None,
        batcher: PublishBatcher,
        dead_letters: Producer,
        metrics: GatewayMetrics,
        max_body_bytes: int,
        answer_deadline_seconds: float,
        partitions: int,
    ) -> None:
        self._verifier = verifier
        self._batcher = batcher
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._max_body = max_body_bytes
        self._deadline = answer_deadline_seconds
        self._partitions = (
            partitions if partitions > 1 else None
        )  # None: every topic is its one stream
        self._outcomes = {
            name: metrics.webhooks.labels(name)
            for name in (
                "published",
                "duplicate",
                "erased",
                "unauthorized",
                "too_large",
                "malformed",
                "unavailable",
            )
        }
        self._published_by_type: dict[str, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "POST":
            await _answer(send, 405, {"error": "use POST"}, [(b"allow", b"POST")])
            return
        started = time.perf_counter()
        status, answer = await self._handle(scope, receive)
        await _answer(send, status, answer)
        self._metrics.latency.observe(time.perf_counter() - started)

    async def _handle(self, scope: Scope, receive: Receive) -> tuple[int, dict[str, Any]]:
        headers = _wanted_headers(scope)
        try:
            body = await _read_body(receive, headers.get(_CONTENT_LENGTH), self._max_body)
        except BodyTooLarge:
            self._outcomes["too_large"].inc()
            return 413, {"error": f"body larger than {self._max_body} bytes"}
        timestamp = headers.get(_TIMESTAMP)
        if self._verifier is not None:
            try:
                self._verifier.verify(headers.get(_SIGNATURE), timestamp, body)
            except SignatureError as exc:
                self._outcomes["unauthorized"].inc()
                log.warning(
                    "webhook refused: bad signature",
                    extra={"reason": str(exc), "client": _client(scope)},
                )
                return 401, {"error": f"invalid signature: {exc}"}
        try:
            key = read_event_key(body)
        except MalformedEvent as exc:
            self._outcomes["malformed"].inc()
            log.warning(
                "signed webhook is not a usable event; dead-lettered", extra={"reason": exc.reason}
            )
            await self._dead_letter(body, exc.reason, timestamp)
            return exc.status, {"error": exc.reason, "dead_letter_topic": WEBHOOK_DEAD_LETTERS}
        return await self._publish(key, body)

    async def _publish(self, key: EventKey, body: bytes) -> tuple[int, dict[str, Any]]:
        topic = telnyx_topic(key.event_type)
        stream = (
            topic
            if self._partitions is None
            else stream_for(topic, key.call_control_id, self._partitions)
        )
        fields: list[bytes | str] = [
            "id",
            key.event_id,
            "type",
            key.event_type,
            "event",
            body,
            "received_at",
            f"{time.time():.6f}",
        ]
        if key.call_control_id:
            fields += ["call_control_id", key.call_control_id]
        if key.attempt:
            fields += ["attempt", key.attempt]
        try:
            entry_id = await self._batcher.publish(
                Publication(stream, key.event_id, tuple(fields), key.call_control_id),
                self._deadline,
            )
        except Exception as exc:  # noqa: BLE001 - any failure to store means: Telnyx, retry
            self._outcomes["unavailable"].inc()
            self._metrics.redis_up.set(0)
            log.error(
                "redis did not store the webhook; answering 503 so Telnyx retries",
                extra={"error": repr(exc), "event_id": key.event_id},
            )
            return 503, {"error": "event store unavailable, retry later"}
        self._metrics.redis_up.set(1)
        self._metrics.batch_size.set(self._batcher.last_batch_size)
        if entry_id is ERASED:
            self._outcomes["erased"].inc()
            return 200, {"status": "erased", "id": key.event_id}
        if entry_id is None:
            self._outcomes["duplicate"].inc()
            return 200, {"status": "duplicate", "id": key.event_id}
        self._outcomes["published"].inc()
        counter = self._published_by_type.get(key.event_type)
        if counter is None:
            counter = self._published_by_type[key.event_type] = self._metrics.published.labels(
                key.event_type
            )
            self._metrics.telnyx_topics.set(len(self._published_by_type))
        counter.inc()
        return 200, {"status": "stored", "id": key.event_id, "topic": topic, "entry": entry_id}

    async def _dead_letter(self, body: bytes, reason: str, timestamp: str | None) -> None:
        """Keep a signed but unusable body: it came from Telnyx, and nothing from Telnyx is lost."""
        fields: Fields = {
            "reason": reason,
            "body": body,
            "telnyx_timestamp": timestamp or "",
            "received_at": f"{time.time():.6f}",
        }
        try:
            await self._dead_letters.publish_raw(WEBHOOK_DEAD_LETTERS, fields)
        except Exception as exc:  # noqa: BLE001 - the refusal is answered either way
            log.error("could not dead-letter a malformed webhook", extra={"error": repr(exc)})


def _wanted_headers(scope: Scope) -> dict[bytes, str]:
    """The three headers the gateway reads (ASGI gives names lower-cased)."""
    found: dict[bytes, str] = {}
    for name, value in scope["headers"]:
        if name in (_SIGNATURE, _TIMESTAMP, _CONTENT_LENGTH):
            found[name] = value.decode("latin-1")
    return found


async def _read_body(receive: Receive, declared: str | None, limit: int) -> bytes:
    """The body, refused as soon as it passes ``limit`` bytes (never buffered whole first)."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _answer(
    send: Send,
    status: int,
    answer: dict[str, Any],
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    body = orjson.dumps(answer)
    headers = [*_JSON_HEADERS, (b"content-length", str(len(body)).encode()), *(extra_headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "unknown"
