"""What a call's recording tick publishes: analytics windows and (optionally) its PCM audio."""

import base64
from typing import Any

import numpy as np

from media_ingest.calls.call import LEGS, Call
from media_ingest.events import EventPublisher
from voicetap_sdk.media_events import LegLevels, MediaAnalytics, MediaAudio
from voicetap_sdk.topics import MEDIA_ANALYTICS, MEDIA_AUDIO

_FRAME_SECONDS = 0.020  # CallAnalytics' frame


class MediaOutputs:
    """Offers ``voicetap.media.analytics`` (and ``voicetap.media.audio``) events of a call."""

    def __init__(self, publisher: EventPublisher, *, sample_rate: int, publish_audio: bool) -> None:
        self._publisher = publisher
        self._rate = sample_rate
        self._publish_audio = publish_audio

    def publish(self, call: Call, frames: np.ndarray, windows: list[dict[str, Any]]) -> None:
        ccid = call.call_control_id
        analytics = call.recording.analytics
        for window in windows:
            legs = {}
            for index, leg in enumerate(LEGS):
                w = window[leg]
                legs[leg] = LegLevels(
                    rms_dbfs=w["rms_dbfs"],
                    peak_dbfs=w["peak_dbfs"],
                    talk=w["talk"],
                    silence=w["silence"],
                    voice_active=w["talk"] > 0,
                    talk_total=round(int(analytics.talk_frames[index]) * _FRAME_SECONDS, 3),
                )
            event = MediaAnalytics(
                id=f"analytics:{ccid}:{window['start']}",
                call_control_id=ccid,
                start=window["start"],
                end=window["end"],
                overtalk=window["overtalk"],
                overtalk_total=round(analytics.overtalk_frames * _FRAME_SECONDS, 3),
                inbound=legs["inbound"],
                outbound=legs["outbound"],
            )
            self._publisher.offer(
                MEDIA_ANALYTICS, event.id, MEDIA_ANALYTICS, event, call_control_id=ccid
            )
        if self._publish_audio and len(frames):
            start = call.audio_sent
            for index, leg in enumerate(LEGS):
                pcm = np.ascontiguousarray(frames[:, index], "<i2").tobytes()
                audio = MediaAudio(
                    id=f"audio:{ccid}:{leg}:{start}",
                    call_control_id=ccid,
                    leg=leg,
                    sample_rate=self._rate,
                    start=round(start / self._rate, 4),
                    samples=len(frames),
                    payload=base64.b64encode(pcm).decode(),
                )
                self._publisher.offer(
                    MEDIA_AUDIO, audio.id, MEDIA_AUDIO, audio, call_control_id=ccid, leg=leg
                )
            call.audio_sent += len(frames)
