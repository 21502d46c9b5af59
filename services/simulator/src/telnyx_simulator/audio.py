"""The two legs of a simulated call's audio, 16-bit PCM at 8 kHz, and their G.711 framing.

``inbound`` is what Telnyx receives from the caller, ``outbound`` what Telnyx sends to the caller.
A stereo WAV file gives one leg per channel (left inbound, right outbound); a mono file gives the
inbound leg, with silence on the outbound one.
"""

import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from telnyx_simulator.g711 import Samples, alaw_encode, ulaw_encode

SAMPLE_RATE = 8000
FRAME_SAMPLES = 160  # 20 ms at 8 kHz
Codec = Literal["PCMU", "PCMA"]
PAYLOAD_TYPES: dict[Codec, int] = {"PCMU": 0, "PCMA": 8}
Track = Literal["inbound", "outbound"]


@dataclass(frozen=True)
class CallAudio:
    inbound: Samples
    outbound: Samples

    @property
    def seconds(self) -> float:
        return max(len(self.inbound), len(self.outbound)) / SAMPLE_RATE

    @classmethod
    def from_wav(cls, path: str | Path) -> "CallAudio":
        with wave.open(str(path), "rb") as wav:
            if (
                wav.getframerate() != SAMPLE_RATE
                or wav.getsampwidth() != 2
                or wav.getnchannels() not in (1, 2)
            ):
                raise ValueError(f"{path}: need 16-bit PCM at {SAMPLE_RATE} Hz, mono or stereo")
            channels = wav.getnchannels()
            samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.int16)
        if channels == 1:
            return cls(samples, np.zeros_like(samples))
        return cls(np.ascontiguousarray(samples[0::2]), np.ascontiguousarray(samples[1::2]))

    @classmethod
    def tones(
        cls, seconds: float, inbound_hz: float = 440.0, outbound_hz: float = 660.0
    ) -> "CallAudio":
        """A distinct sine tone on each leg: audio without a file, easy to tell apart."""
        t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
        return cls(
            *(
                np.round(8000 * np.sin(2 * np.pi * hz * t)).astype(np.int16)
                for hz in (inbound_hz, outbound_hz)
            )
        )

    def looped(self, seconds: float) -> "CallAudio":
        """This audio repeated (both legs together, so they stay aligned) to last ``seconds``."""
        period = max(len(self.inbound), len(self.outbound))
        wanted = int(round(seconds * SAMPLE_RATE))
        if period == 0 or wanted <= period:
            return self
        repeats = -(-wanted // period)

        def tile(leg: Samples) -> Samples:
            padded = np.concatenate([leg, np.zeros(period - len(leg), dtype=np.int16)])
            return np.tile(padded, repeats)[:wanted]

        return CallAudio(tile(self.inbound), tile(self.outbound))

    def frame(self, track: Track, index: int) -> Samples:
        """The ``index``-th 20 ms frame of a leg; silence past its end."""
        leg = self.inbound if track == "inbound" else self.outbound
        chunk = leg[index * FRAME_SAMPLES : (index + 1) * FRAME_SAMPLES]
        if len(chunk) < FRAME_SAMPLES:
            chunk = np.concatenate([chunk, np.zeros(FRAME_SAMPLES - len(chunk), dtype=np.int16)])
        return chunk


def encode(codec: Codec, samples: Samples) -> bytes:
    return ulaw_encode(samples) if codec == "PCMU" else alaw_encode(samples)
