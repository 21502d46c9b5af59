"""``voicetap console``: serve the console with uvicorn until SIGTERM or SIGINT."""

import uvicorn

from voicetap_common.logs import configure_logging
from voicetap_common.settings import access_settings, load_settings, refuse_open_bind
from voicetap_console.app import create_app
from voicetap_console.reader import BLOCK_MS
from voicetap_console.settings import ConsoleSettings
from voicetap_console.upstream import Upstreams
from voicetap_sdk.redis_client import connect


def main() -> None:
    settings = load_settings(ConsoleSettings, "voicetap console")
    configure_logging("console", settings.log_level, settings.log_format)
    access = access_settings(settings)
    refuse_open_bind(
        settings.console_host,
        access.tokens,
        access.insecure_no_auth,
        "voicetap console",
        "CONSOLE_HOST",
    )
    stack_token = access.tokens[0] if access.tokens else None
    indexer_token = settings.console_indexer_token
    app = create_app(
        redis=connect(
            settings.redis_url,
            cluster=settings.redis_cluster,
            timeout_seconds=settings.redis_timeout_seconds,
            blocking_ms=BLOCK_MS,
        ),
        upstreams=Upstreams(
            settings.console_indexer_url,
            indexer_token.get_secret_value() if indexer_token is not None else stack_token,
            settings.console_ingest_url,
            stack_token,
        ),
        service_urls={
            "gateway": settings.console_gateway_url,
            "ingest": settings.console_ingest_url,
            "indexer": settings.console_indexer_url,
        },
        partitions=settings.topic_partitions,
        recent_calls=settings.console_recent_calls,
        history_seconds=settings.console_history_seconds,
        redis_timeout_s=settings.redis_timeout_seconds,
        access=access,
        session_seconds=settings.console_session_seconds,
    )
    uvicorn.run(
        app,
        host=settings.console_host,
        port=settings.console_port,
        lifespan="on",
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_graceful_shutdown=2,
    )
