"""Realistic, distinct, validly signed Telnyx webhooks for the load generators.

Each webhook is a ~600-byte ``call.transcription`` (three in four) or ``call.answered`` envelope
shaped like Telnyx's (see ``../shared/TELNYX.md``) with its own ``data.id``, spread over a few
hundred calls, signed exactly as Telnyx signs: Ed25519 over ``f"{timestamp}|{raw_body}"``.
"""

import base64
import random
import time
import uuid
from dataclasses import dataclass

from harness.requestfile import http_post
from nacl.signing import SigningKey

PATH = "/webhooks/telnyx"

_TRANSCRIPTION = (
    '{"data":{"event_type":"call.transcription","id":"%(id)s","occurred_at":"%(at)s",'
    '"payload":{"call_control_id":"%(ccid)s","call_leg_id":"%(leg)s","call_session_id":"%(session)s",'
    '"client_state":"eyJ0ZW5hbnQiOiJhY21lIn0=","connection_id":"2587369431092118536",'
    '"transcription_data":{"confidence":%(confidence)s,"is_final":%(final)s,"transcript":"%(text)s",'
    '"transcription_track":"%(track)s"}},"record_type":"event"},'
    '"meta":{"attempt":1,"delivered_to":"https://voicetap.example.com/webhooks/telnyx"}}'
)
_ANSWERED = (
    '{"data":{"event_type":"call.answered","id":"%(id)s","occurred_at":"%(at)s",'
    '"payload":{"call_control_id":"%(ccid)s","call_leg_id":"%(leg)s","call_session_id":"%(session)s",'
    '"client_state":"eyJ0ZW5hbnQiOiJhY21lIn0=","connection_id":"2587369431092118536",'
    '"custom_headers":[{"name":"X-Account","value":"acme-42"}],"from":"+13125550123",'
    '"start_time":"%(at)s","state":"answered","tags":["support"],"to":"+18005550199"},'
    '"record_type":"event"},"meta":{"attempt":1,"delivered_to":"https://voicetap.example.com/webhooks/telnyx"}}'
)
_SENTENCES = (
    "I would like to change the delivery address on my last order.",
    "Sure, can you confirm the postcode and the name on the account?",
    "It is the one I placed on Tuesday morning, number four two seven.",
    "Thank you, I have updated it and you will get an email shortly.",
)


@dataclass(frozen=True)
class Call:
    ccid: str
    leg: str
    session: str


@dataclass(frozen=True)
class SignedBatch:
    requests: list[bytes]
    ids: set[str]
    mean_body_bytes: float
    signed_at: int


class WebhookFactory:
    def __init__(self, signing_key: SigningKey, calls: int = 200, seed: int = 7) -> None:
        self._key = signing_key
        rng = random.Random(seed)
        self._rng = rng
        self._calls = [
            Call(
                ccid="v3:" + base64.urlsafe_b64encode(rng.randbytes(30)).decode(),
                leg=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                session=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            )
            for _ in range(calls)
        ]

    @property
    def public_key(self) -> str:
        return base64.b64encode(bytes(self._key.verify_key)).decode()

    def body(self, index: int, event_id: str, occurred_at: str) -> bytes:
        call = self._calls[index % len(self._calls)]
        values = {
            "id": event_id,
            "at": occurred_at,
            "ccid": call.ccid,
            "leg": call.leg,
            "session": call.session,
        }
        if index % 4 == 3:
            return (_ANSWERED % values).encode()
        values |= {
            "confidence": f"{0.85 + (index % 15) / 100:.6f}",
            "final": "true" if index % 2 else "false",
            "text": _SENTENCES[index % len(_SENTENCES)],
            "track": "inbound" if index % 3 else "outbound",
        }
        return (_TRANSCRIPTION % values).encode()

    def signed_requests(self, count: int, host: str, port: int) -> SignedBatch:
        """``count`` POST requests with distinct ids, all signed now (valid for the 300 s tolerance)."""
        signed_at = int(time.time())
        timestamp = str(signed_at)
        prefix = timestamp.encode() + b"|"
        occurred_at = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(signed_at))
        requests, ids, body_bytes = [], set(), 0
        sign = self._key.sign
        for index in range(count):
            event_id = str(uuid.uuid4())
            body = self.body(index, event_id, occurred_at)
            signature = base64.b64encode(sign(prefix + body).signature).decode()
            headers = {
                "User-Agent": "telnyx-webhooks",
                "Accept": "*/*",
                "Content-Type": "application/json",
                "Telnyx-Signature-Ed25519": signature,
                "Telnyx-Timestamp": timestamp,
            }
            requests.append(http_post(host, port, PATH, headers, body))
            ids.add(event_id)
            body_bytes += len(body)
        return SignedBatch(requests, ids, body_bytes / max(count, 1), signed_at)
