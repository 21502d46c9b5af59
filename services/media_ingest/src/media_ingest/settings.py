"""media_ingest's settings: one typed object, read from the environment."""

from typing import Literal

from pydantic import Field, field_validator

from voicetap_common.call_control import TelnyxApiSettings
from voicetap_common.recordings_settings import RecordingsStoreSettings
from voicetap_common.settings import CommonSettings


class IngestSettings(CommonSettings, TelnyxApiSettings, RecordingsStoreSettings):
    ingest_host: str = Field(default="0.0.0.0", description="Address of the HTTP/WebSocket server.")
    ingest_port: int = Field(
        default=8001,
        description="Port of the HTTP and WebSocket server (`/streams/telnyx`, recordings, probes).",
    )
    ingest_rtp_host: str = Field(
        default="0.0.0.0", description="Address the UDP receivers bind to."
    )
    ingest_rtp_ports: str = Field(
        default="40000-40999",
        description="UDP port range for forked RTP; each forked call holds two ports (rx, tx).",
    )
    ingest_public_host: str = Field(
        default="127.0.0.1",
        description="The address Telnyx sends forked RTP to (`udp:HOST:PORT` targets of fork_start).",
    )
    ingest_public_url: str = Field(
        default="ws://127.0.0.1:8001",
        description="The ws(s):// base Telnyx connects to for media streaming.",
    )
    ingest_mode: Literal["fork", "stream", "off"] = Field(
        default="fork",
        description="What to start on `call.answered`: RTP fork, WebSocket stream, or nothing.",
    )
    ingest_stream_codec: str = Field(
        default="PCMU", description="`stream_codec` asked for on streaming_start."
    )
    ingest_port_lease_seconds: int = Field(
        default=30,
        gt=0,
        description="Lease of an allocated port pair in Redis; renewed while the call lives, so a dead instance's ports come back.",
    )
    ingest_takeover_seconds: float = Field(
        default=5.0,
        gt=0,
        description="An instance silent this long (no liveness beat; it beats five times as often) loses its live calls "
        "to the surviving instances, which move the media to themselves and record the rest of each call.",
    )
    ingest_media_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        description="A call whose media has been silent this long is closed and its ports released.",
    )
    ingest_jitter_ms: int = Field(
        default=60,
        ge=0,
        description="Reordering depth of each leg's jitter buffer (also how long the first packets of a stream are held, in case an earlier one is still on its way).",
    )
    ingest_recording_rate: int = Field(default=8000, description="Sample rate of recordings (Hz).")
    ingest_analytics_interval_seconds: float = Field(
        default=1.0, gt=0, description="Period of `voicetap.media.analytics` events."
    )
    ingest_publish_audio: bool = Field(
        default=False, description="Publish PCM chunks on `voicetap.media.audio`."
    )
    ingest_audio_maxlen: int = Field(
        default=100_000, gt=0, description="Length bound of the audio topic."
    )
    ingest_analytics_maxlen: int = Field(
        default=100_000, gt=0, description="Length bound of the analytics topic."
    )
    ingest_event_queue: int = Field(
        default=10_000,
        gt=0,
        description="Bound of the in-memory queue of analytics/audio events waiting for Redis; what overflows is dropped and counted.",
    )
    ingest_paused_timeout_seconds: float = Field(
        default=600.0,
        gt=0,
        description="A call whose media stopped (fork or stream stopped, stream failed: paused) and gets no resume or hang-up this long is closed; the pause is listed up to the end.",
    )
    ingest_instance_id: str = Field(
        default="",
        description="This instance's name in Redis (call routing, port leases); default `<hostname>-<pid>`.",
    )
    ingest_workers: int = Field(
        default=1,
        ge=0,
        description="Worker processes of this host (`voicetap ingest --workers N`; 0: one per core), each "
        "`<host>-w<k>` with its own share of `INGEST_RTP_PORTS`, all on `INGEST_PORT` "
        '(docs/DEPLOY.md, "Every core of a host"); `voicetap up` takes the host\'s core count.',
    )
    ingest_ws_ping_seconds: float = Field(
        default=20.0, gt=0, description="Keep-alive ping period of media-stream WebSockets."
    )
    ingest_stream_bidirectional_mode: Literal["rtp", "mp3", "off"] = Field(
        default="rtp",
        description="`stream_bidirectional_mode` asked for on streaming_start (playback into the call); `off` sends none.",
    )
    ingest_spool_max_recordings: int = Field(
        default=1000,
        ge=0,
        description="Finished recordings waiting in the local spool for the store (`VOICETAP_RECORDINGS_URL` down) "
        "above which `/readyz` says not ready; none is dropped.",
    )
    ingest_upload_concurrency: int = Field(
        default=4,
        ge=1,
        description="Finished recordings uploaded (and verified) to `VOICETAP_RECORDINGS_URL` at a time.",
    )
    ingest_dynamic_payload_types: str = Field(
        default="", description="Dynamic RTP payload types, e.g. `96=OPUS/48000,97=AMR-WB/16000`."
    )

    @field_validator("ingest_rtp_ports")
    @classmethod
    def _range(cls, value: str) -> str:
        first, _, last = value.partition("-")
        if not (first.isdigit() and last.isdigit() and 0 < int(first) < int(last) < 65536):
            raise ValueError("must be a range of UDP ports FIRST-LAST, e.g. 40000-40999")
        return value

    def rtp_port_range(self) -> range:
        first, _, last = self.ingest_rtp_ports.partition("-")
        return range(int(first), int(last) + 1)
