"""``voicetap gateway``: serve the gateway with uvicorn (uvloop, httptools, no access log)."""

import sys

import uvicorn
from pydantic import ValidationError

from voicetap_common.logs import configure_logging
from webhook_gateway.settings import GatewaySettings


def main() -> None:
    try:
        settings = GatewaySettings()
    except ValidationError as exc:
        sys.exit(f"voicetap gateway: invalid settings:\n{exc}")
    configure_logging("gateway", settings.log_level, settings.log_format)
    uvicorn.run(
        "webhook_gateway.main:app_factory",
        factory=True,
        host=settings.gateway_host,
        port=settings.gateway_port,
        workers=settings.gateway_workers if settings.gateway_workers > 1 else None,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_graceful_shutdown=5,
    )


def app_factory():  # type: ignore[no-untyped-def]
    """Called by uvicorn in each worker process."""
    from webhook_gateway.app import create_app

    settings = GatewaySettings()
    configure_logging("gateway", settings.log_level, settings.log_format)
    return create_app(settings)


if __name__ == "__main__":
    main()
