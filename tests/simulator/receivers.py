"""Tiny servers the player's tests point it at: a webhook receiver and a WebSocket media endpoint."""

import asyncio
import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from nacl.signing import VerifyKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)

    @property
    def event_type(self) -> str:
        return str(self.json()["data"]["event_type"])

    def verify(self, public_key_b64: str) -> None:
        """Raise ``nacl.exceptions.BadSignatureError`` unless signed as Telnyx signs."""
        message = self.headers["telnyx-timestamp"].encode() + b"|" + self.body
        signature = base64.b64decode(self.headers["telnyx-signature-ed25519"], validate=True)
        VerifyKey(base64.b64decode(public_key_b64)).verify(message, signature)


@dataclass
class WebhookReceiver:
    """Records every POST to ``/webhooks/telnyx``; answers the ``statuses`` listed for an event type in turn, then 200."""

    statuses: dict[str, list[int]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    def app(self) -> Starlette:
        async def webhook(request: Request) -> Response:
            got = Received(dict(request.headers), await request.body())
            self.received.append(got)
            async with self._arrived:
                self._arrived.notify_all()
            pending = self.statuses.get(got.event_type)
            status = pending.pop(0) if pending else 200
            headers = {"location": "/elsewhere"} if 300 <= status < 400 else None
            return Response(status_code=status, headers=headers)

        return Starlette(routes=[Route("/webhooks/telnyx", webhook, methods=["POST"])])

    async def wait_for(self, event_type: str, timeout: float = 5.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout), self._arrived:
            while True:
                for got in self.received:
                    if got.event_type == event_type:
                        return dict(got.json())
                await self._arrived.wait()

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [got.json() for got in self.received if got.event_type == event_type]


@dataclass
class MediaEndpoint:
    """A WebSocket endpoint like the stack's: records the handshake headers and every frame.

    ``script`` runs once the ``start`` frame arrived, with a ``send`` for playback frames.
    """

    script: Callable[[Callable[[dict[str, Any]], Awaitable[None]]], Awaitable[None]] | None = None
    handshake: dict[str, str] = field(default_factory=dict)
    frames: list[dict[str, Any]] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> Starlette:
        async def endpoint(ws: WebSocket) -> None:
            self.handshake = dict(ws.headers)
            await ws.accept()

            async def send(frame: dict[str, Any]) -> None:
                await ws.send_text(orjson.dumps(frame).decode())

            task: asyncio.Task[None] | None = None
            try:
                while True:
                    message = await ws.receive()
                    if message["type"] == "websocket.disconnect":
                        break
                    frame = orjson.loads(message["text"])
                    self.frames.append(frame)
                    if frame["event"] == "start" and self.script is not None:
                        task = asyncio.create_task(self.script(send))
            finally:
                if task is not None:
                    task.cancel()
                self.closed.set()

        return Starlette(routes=[WebSocketRoute("/ws", endpoint)])
