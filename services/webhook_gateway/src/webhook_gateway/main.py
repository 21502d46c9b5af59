"""``voicetap gateway``: settings read once, then the app served by uvicorn (uvloop, httptools, no
access log). With ``GATEWAY_WORKERS`` above 1 uvicorn starts the worker processes, and each builds
its app through :func:`app_factory`, which takes the same three steps."""

import uvicorn

from voicetap_common.logs import configure_logging
from voicetap_common.settings import load_settings
from webhook_gateway.app import GatewayApp, create_app
from webhook_gateway.settings import GatewaySettings
from webhook_gateway.signature import SignatureVerifier, load_public_key

PROGRAM = "voicetap gateway"


def build_app(settings: GatewaySettings) -> GatewayApp:
    """The app, its arguments taken from ``settings`` (the only place that reads them)."""
    verifier = (
        None
        if settings.gateway_insecure_skip_verification
        else SignatureVerifier(
            load_public_key(settings.telnyx_public_key or ""),
            settings.gateway_signature_tolerance_seconds,
        )
    )
    return create_app(
        verifier=verifier,
        redis_url=settings.redis_url,
        redis_cluster=settings.redis_cluster,
        redis_timeout_seconds=settings.redis_timeout_seconds,
        topic_maxlen=settings.topic_maxlen,
        topic_partitions=settings.topic_partitions,
        topic_max_age_seconds=settings.topic_max_age_seconds,
        dedupe_window_seconds=settings.gateway_dedupe_window_seconds,
        max_body_bytes=settings.gateway_max_body_bytes,
        answer_deadline_seconds=settings.gateway_answer_deadline_seconds,
        console_url=settings.voicetap_console_url,
        metrics_token=settings.voicetap_metrics_token.get_secret_value()
        if settings.voicetap_metrics_token is not None
        else None,
    )


def main() -> None:
    settings = load_settings(GatewaySettings, PROGRAM)
    configure_logging("gateway", settings.log_level, settings.log_format)
    several = settings.gateway_workers > 1
    uvicorn.run(
        "webhook_gateway.main:app_factory" if several else build_app(settings),
        factory=several,
        host=settings.gateway_host,
        port=settings.gateway_port,
        workers=settings.gateway_workers if several else None,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_graceful_shutdown=5,
    )


def app_factory() -> GatewayApp:
    """Called by uvicorn in each worker process when ``GATEWAY_WORKERS`` is above 1."""
    settings = load_settings(GatewaySettings, PROGRAM)
    configure_logging("gateway", settings.log_level, settings.log_format)
    return build_app(settings)


if __name__ == "__main__":
    main()
