"""The gateway's verifier accepts exactly when the official SDK's ``webhooks.unwrap`` accepts.

``unwrap`` verifies the signature and then parses the body with ``json.loads``; a body that is
signed but not JSON raises ``JSONDecodeError`` after the signature was accepted. That is the
signature's verdict "yes" (the gateway then answers 415 and dead-letters the body, tested in
test_gateway_http.py), so it counts as accepted here.
"""

import base64
import json
import time
from collections.abc import Callable

import httpx
import pytest
import telnyx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey
from redis.asyncio import Redis

from telnyx_simulator.serve import serve
from telnyx_simulator.signing import WebhookSigner
from webhook_gateway.main import build_app
from webhook_gateway.settings import GatewaySettings
from webhook_gateway.signature import (
    InvalidPublicKey,
    SignatureError,
    SignatureVerifier,
    load_public_key,
)

BODY = b'{"data":{"event_type":"call.answered","id":"0ccc7b54-4df3-4bca-a65a-3da1ecc777f0","payload":{"call_control_id":"v3:x"}},"meta":{"attempt":1}}'
SIGNER = WebhookSigner(SigningKey(b"\x07" * 32))
OTHER = WebhookSigner(SigningKey(b"\x09" * 32))


@pytest.fixture(scope="module")
def sdk() -> telnyx.Telnyx:
    return telnyx.Telnyx(api_key="KEY_unused", public_key=SIGNER.public_key)


def ours(headers: dict[str, str], body: bytes) -> bool:
    verifier = SignatureVerifier(load_public_key(SIGNER.public_key), 300)
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        verifier.verify(
            lowered.get("telnyx-signature-ed25519"), lowered.get("telnyx-timestamp"), body
        )
    except SignatureError:
        return False
    return True


def theirs(sdk: telnyx.Telnyx, headers: dict[str, str], body: bytes) -> bool:
    try:
        sdk.webhooks.unwrap(body.decode(), headers=headers)
    except json.JSONDecodeError:
        return True
    except ValueError:
        return False
    return True


def now() -> int:
    return int(time.time())


def signed(
    ts: int | str | None = None, body: bytes = BODY, signer: WebhookSigner = SIGNER
) -> dict[str, str]:
    headers = signer.sign(body, now() if ts is None else ts)
    headers.pop("content-type")
    return headers


def case_headers() -> list[tuple[str, dict[str, str], bytes]]:
    good = signed()
    sig = good["telnyx-signature-ed25519"]
    raw_sig = base64.b64decode(sig)
    return [
        ("valid", good, BODY),
        (
            "header names in other case",
            {"Telnyx-Signature-Ed25519": sig, "TELNYX-TIMESTAMP": good["telnyx-timestamp"]},
            BODY,
        ),
        ("tampered body", good, BODY.replace(b"answered", b"hangup")),
        ("body with trailing newline", good, BODY + b"\n"),
        ("tampered timestamp", {**good, "telnyx-timestamp": str(now() - 1)}, BODY),
        ("stale", signed(now() - 301), BODY),
        ("just inside tolerance", signed(now() - 295), BODY),
        ("future", signed(now() + 301), BODY),
        ("wrong key", signed(signer=OTHER), BODY),
        ("missing signature", {"telnyx-timestamp": good["telnyx-timestamp"]}, BODY),
        ("missing timestamp", {"telnyx-signature-ed25519": sig}, BODY),
        ("no headers", {}, BODY),
        ("non-integer timestamp", {**good, "telnyx-timestamp": "12.5"}, BODY),
        ("empty timestamp", {**good, "telnyx-timestamp": ""}, BODY),
        ("non-base64 signature", {**good, "telnyx-signature-ed25519": "not base64!!"}, BODY),
        ("base64 without padding", {**good, "telnyx-signature-ed25519": sig.rstrip("=")}, BODY),
        (
            "short signature",
            {**good, "telnyx-signature-ed25519": base64.b64encode(raw_sig[:63]).decode()},
            BODY,
        ),
        (
            "long signature",
            {**good, "telnyx-signature-ed25519": base64.b64encode(raw_sig + b"\0").decode()},
            BODY,
        ),
        (
            "zero signature",
            {**good, "telnyx-signature-ed25519": base64.b64encode(b"\0" * 64).decode()},
            BODY,
        ),
        ("timestamp with spaces, signed as sent", signed(f" {now()} "), BODY),
        ("timestamp with plus sign, signed as sent", signed(f"+{now()}"), BODY),
        ("empty body signed", signed(body=b""), b""),
        (
            "unicode body",
            signed(body='{"data":{"t":"héllo ☎"}}'.encode()),
            '{"data":{"t":"héllo ☎"}}'.encode(),
        ),
    ]


@pytest.mark.parametrize(
    ("name", "headers", "body"), case_headers(), ids=[c[0] for c in case_headers()]
)
def test_named_cases_agree_with_sdk(
    sdk: telnyx.Telnyx, name: str, headers: dict[str, str], body: bytes
) -> None:
    assert ours(headers, body) == theirs(sdk, headers, body), name


def test_the_cases_cover_both_answers(sdk: telnyx.Telnyx) -> None:
    answers = {theirs(sdk, h, b) for _, h, b in case_headers()}
    assert answers == {True, False}


_mutation = st.sampled_from(["body", "timestamp", "signature", "drop"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.binary(max_size=200).map(lambda b: b.decode("utf-8", "ignore").encode()),
    skew=st.integers(min_value=-400, max_value=400),
    mutation=_mutation,
    index=st.integers(min_value=0, max_value=1000),
    junk=st.text(max_size=12),
)
def test_random_mutations_agree_with_sdk(
    sdk: telnyx.Telnyx, body: bytes, skew: int, mutation: str, index: int, junk: str
) -> None:
    headers = signed(now() + skew, body)
    if mutation == "body":
        position = index % (len(body) + 1)
        body = body[:position] + junk.encode() + body[position:]
    elif mutation == "timestamp":
        headers["telnyx-timestamp"] = junk or headers["telnyx-timestamp"]
    elif mutation == "signature":
        sig = headers["telnyx-signature-ed25519"]
        position = index % (len(sig) + 1)
        headers["telnyx-signature-ed25519"] = sig[:position] + junk + sig[position + 1 :]
    else:
        headers.pop(["telnyx-signature-ed25519", "telnyx-timestamp"][index % 2])
    assert ours(headers, body) == theirs(sdk, headers, body)


def test_tolerance_is_a_setting() -> None:
    verifier = SignatureVerifier(load_public_key(SIGNER.public_key), 30)
    headers = signed(now() - 60)
    with pytest.raises(SignatureError, match="old"):
        verifier.verify(headers["telnyx-signature-ed25519"], headers["telnyx-timestamp"], BODY)


@pytest.mark.parametrize("key", ["", "not base64", base64.b64encode(b"x" * 31).decode()])
def test_a_bad_public_key_is_refused(key: str) -> None:
    with pytest.raises(InvalidPublicKey):
        load_public_key(key)


async def test_the_http_endpoint_agrees_with_sdk(
    sdk: telnyx.Telnyx, redis: Redis, gateway_settings: Callable[..., GatewaySettings]
) -> None:
    """The same cases as real requests to a served gateway: refused with 401 exactly when the SDK
    refuses. (A header value with surrounding whitespace cannot be sent over HTTP/1.1 at all, so
    those cases stay at the verifier level.)"""
    sendable = [(n, h, b) for n, h, b in case_headers() if all(v == v.strip() for v in h.values())]
    assert len(sendable) >= len(case_headers()) - 1
    async with (
        serve(build_app(gateway_settings(telnyx_public_key=SIGNER.public_key))) as base_url,
        httpx.AsyncClient(base_url=base_url) as client,
    ):
        for name, headers, body in sendable:
            response = await client.post(
                "/webhooks/telnyx",
                content=body,
                headers={**headers, "content-type": "application/json"},
            )
            assert (response.status_code != 401) == theirs(sdk, headers, body), (
                name,
                response.status_code,
                response.text,
            )
