"""Call Control requests of the ingest, counted by action and outcome."""

from typing import TYPE_CHECKING, Any

from media_ingest.metrics import IngestMetrics
from voicetap_common.call_control import classify, send
from voicetap_sdk.commands import CallCommand

if TYPE_CHECKING:
    from telnyx import AsyncTelnyx


class CallControl:
    def __init__(self, client: "AsyncTelnyx | None", metrics: IngestMetrics) -> None:
        """``client`` None: TELNYX_API_KEY is not set, and every request fails saying so."""
        self._client = client
        self._metrics = metrics

    async def send(self, command: CallCommand, **overrides: Any) -> None:
        if self._client is None:
            raise RuntimeError(
                "TELNYX_API_KEY is not set: media ingest cannot send Call Control commands"
            )
        try:
            await send(self._client, command, **overrides)
        except Exception as exc:
            self._metrics.commands.labels(command.action, classify(exc)[0]).inc()
            raise
        self._metrics.commands.labels(command.action, "ok").inc()
