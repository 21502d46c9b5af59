"""Which of the stack's HTTP servers hold call content (behind ``VOICETAP_API_TOKEN``), where
``voicetap up`` binds them, and its refusal to expose them without a token.

``voicetap up`` binds them to 127.0.0.1 unless the user set their host: the ingest's HTTP host
defaults to 0.0.0.0 for containers, but on a laptop its recordings must not be served to the
network by a command that asks for no token (docs/DESIGN.md). The gateway is not among them: its
webhooks are signed and it holds no call content."""

from collections.abc import Mapping

from pydantic_settings import BaseSettings

from voicetap_common.access import open_bind_refusal
from voicetap_common.settings import CommonSettings, access_settings, env_name

GUARDED_HOSTS = {  # service -> its host field
    "ingest": "ingest_host",
    "indexer": "indexer_host",
    "console": "console_host",
}
LOOPBACK = "127.0.0.1"


def loopback_defaults(settings: Mapping[str, BaseSettings]) -> dict[str, str]:
    """``INGEST_HOST=127.0.0.1`` (and the indexer's) for each guarded service whose host was not
    set by the user (environment or ``.env``)."""
    found = {}
    for service, field in GUARDED_HOSTS.items():
        values = settings.get(service)
        if values is not None and field not in values.model_fields_set:
            found[env_name(type(values), field)] = LOOPBACK
    return found


def open_bind_problems(settings: Mapping[str, BaseSettings]) -> list[str]:
    """One line per guarded server that would listen beyond loopback with no token (as each
    service's own start refuses it)."""
    problems = []
    for service, field in GUARDED_HOSTS.items():
        values = settings.get(service)
        if not isinstance(values, CommonSettings):
            continue
        access = access_settings(values, getattr(values, "indexer_api_token", None))
        refusal = open_bind_refusal(
            str(getattr(values, field)),
            access.tokens,
            access.insecure_no_auth,
            "voicetap up",
            env_name(type(values), field),
        )
        if refusal is not None:
            problems.append(refusal)
    return problems
