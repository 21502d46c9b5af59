"""The pure parts of access control: tokens, links, sessions, the open-bind rule."""

import pytest

from voicetap_common.access import (
    Verdict,
    check_link,
    check_session,
    check_session_keys,
    link_key,
    link_query,
    open_bind_refusal,
    parse_tokens,
    session_keys,
    session_value,
    token_accepted,
)


def test_tokens_are_comma_separated_and_each_is_accepted() -> None:
    tokens = parse_tokens(" old-token , new-token ,")
    assert tokens == ("old-token", "new-token")
    assert token_accepted("old-token", tokens) and token_accepted("new-token", tokens)
    for wrong in ("", "old", "old-token,new-token", "new-tokenx", "OLD-TOKEN"):
        assert not token_accepted(wrong, tokens), wrong
    assert parse_tokens(None) == () and parse_tokens(" , ") == ()
    assert not token_accepted("", ())


def _query(key: bytes, path: str, ttl: int, now: float) -> tuple[str, str]:
    expires, signature = (part.split("=")[1] for part in link_query(key, path, ttl, now).split("&"))
    return expires, signature


def test_a_link_opens_its_path_until_it_expires() -> None:
    key = link_key(None, ("token",))
    assert key is not None
    path = "/calls/v3:abc/recording.wav"
    expires, signature = _query(key, path, 60, now=1_000)
    assert check_link(key, path, expires, signature, now=1_059) is Verdict.OK
    assert check_link(key, path, expires, signature, now=1_061) is Verdict.EXPIRED_LINK
    assert check_link(key, "/calls/v3:abd/recording.wav", expires, signature, now=1_000) is (
        Verdict.TAMPERED_LINK
    )
    later = str(int(expires) + 3600)  # an expiry moved forward by hand
    assert check_link(key, path, later, signature, now=1_000) is Verdict.TAMPERED_LINK
    flipped = signature[:-1] + ("1" if signature.endswith("0") else "0")
    assert check_link(key, path, expires, flipped, now=1_000) is Verdict.TAMPERED_LINK
    assert check_link(key, path, "soon", signature, now=1_000) is Verdict.TAMPERED_LINK
    assert check_link(None, path, expires, signature, now=1_000) is Verdict.TAMPERED_LINK
    other = link_key(None, ("another-token",))
    assert other is not None
    assert check_link(other, path, expires, signature, now=1_000) is Verdict.TAMPERED_LINK


def test_the_link_key_is_the_secret_else_derived_from_the_first_token() -> None:
    assert link_key("secret", ("token",)) == b"secret"
    derived = link_key(None, ("token", "other"))
    assert derived is not None and derived != b"token" and len(derived) == 32
    assert link_key(None, ("token",)) == derived
    assert link_key(None, ()) is None


def test_a_session_value_is_valid_until_it_expires() -> None:
    key = b"k" * 32
    value = session_value(key, 60, now=1_000)
    assert check_session(key, value, now=1_030) is Verdict.OK
    assert check_session(key, value, now=1_061) is Verdict.EXPIRED_SESSION
    assert check_session(b"x" * 32, value, now=1_030) is Verdict.BAD_SESSION
    expires, _, signature = value.partition(".")
    assert check_session(key, f"{int(expires) + 1}.{signature}", now=1_030) is (Verdict.BAD_SESSION)
    assert check_session(key, "garbage", now=1_030) is Verdict.BAD_SESSION


def test_a_session_lasts_while_the_token_it_was_opened_with_is_configured() -> None:
    old, new = session_keys(("old-token", "new-token"))
    assert old != new and session_keys(("new-token",)) == (new,)
    opened_with_old = session_value(old, 60, now=1_000)
    opened_with_new = session_value(new, 60, now=1_000)
    for value in (opened_with_old, opened_with_new):
        assert check_session_keys((old, new), value, now=1_030) is Verdict.OK
    rotated = session_keys(("new-token",))
    assert check_session_keys(rotated, opened_with_new, now=1_030) is Verdict.OK
    assert check_session_keys(rotated, opened_with_old, now=1_030) is Verdict.BAD_SESSION
    assert check_session_keys(rotated, opened_with_new, now=1_061) is Verdict.EXPIRED_SESSION
    assert check_session_keys((), opened_with_new, now=1_030) is Verdict.BAD_SESSION
    assert session_keys(("token",))[0] != link_key(None, ("token",))


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"])
def test_loopback_needs_no_token(host: str) -> None:
    assert open_bind_refusal(host, (), False, "voicetap ingest", "INGEST_HOST") is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "ingest.internal"])
def test_beyond_loopback_needs_a_token_or_the_insecure_mode(host: str) -> None:
    refusal = open_bind_refusal(host, (), False, "voicetap ingest", "INGEST_HOST")
    assert refusal is not None
    assert refusal.startswith(f"voicetap ingest: INGEST_HOST={host} ")
    assert "set VOICETAP_API_TOKEN" in refusal and "VOICETAP_INSECURE_NO_AUTH=true" in refusal
    assert open_bind_refusal(host, ("t",), False, "voicetap ingest", "INGEST_HOST") is None
    assert open_bind_refusal(host, (), True, "voicetap ingest", "INGEST_HOST") is None
