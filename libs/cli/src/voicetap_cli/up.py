"""``voicetap up``: check everything a mistake could break, then run the stack.

Nothing starts until every check passed: one stack per data directory, every service's settings,
every port, a given ``REDIS_URL``. Each problem is one line on stderr naming what fixes it, and a
non-zero exit (2 for invalid settings, as each service's own start; 1 otherwise)."""

import logging
import os
import sys

from pydantic_settings import BaseSettings

from voicetap_cli import dev_keys
from voicetap_cli.embedded_redis import PORT_SETTING, EmbeddedRedis, EmbeddedRedisError
from voicetap_cli.exposure import loopback_defaults, open_bind_problems
from voicetap_cli.preflight import (
    Listener,
    listeners,
    load_service_settings,
    port_problems,
    redis_problem,
    without_password,
)
from voicetap_cli.services import installed_services, service_command
from voicetap_cli.settings import CliSettings
from voicetap_cli.stack_lock import StackLock, StackRunning
from voicetap_cli.stack_urls import base_url, endpoints, readiness_url, ready_block
from voicetap_common.supervisor import ChildSpec, Supervisor, child_env

log = logging.getLogger("voicetap.up")


def refuse(*lines: str) -> None:
    for line in lines:
        print(f"voicetap up: {line}", file=sys.stderr)


def local_mode(settings: CliSettings, overrides: dict[str, str]) -> list[str]:
    """Development keys in place of the Telnyx keys that are not set; the warnings to log."""
    data_dir = settings.voicetap_data_dir.resolve()
    warnings = []
    if not settings.telnyx_public_key:
        overrides["TELNYX_PUBLIC_KEY"] = dev_keys.load_or_create(data_dir).public_key
        warnings.append(
            f"TELNYX_PUBLIC_KEY is not set: trusting the local development key in "
            f"{data_dir / dev_keys.FILE_NAME} (the simulator signs with it). "
            "Set TELNYX_PUBLIC_KEY to your account's key to take real Telnyx webhooks."
        )
    if not settings.telnyx_api_key:
        overrides["TELNYX_API_KEY"] = dev_keys.load_or_create(data_dir).api_key
        overrides["TELNYX_BASE_URL"] = f"http://127.0.0.1:{settings.simulator_api_port}/v2"
        warnings.append(
            f"TELNYX_API_KEY is not set: local mode, Call Control commands go to the simulator at "
            f"{overrides['TELNYX_BASE_URL']} (`voicetap simulate` serves it). "
            "Set TELNYX_API_KEY to command real calls."
        )
    return warnings


def run_up(settings: CliSettings, demo: bool) -> int:
    data_dir = settings.voicetap_data_dir.resolve()
    if settings.redis_cluster and not settings.redis_url:
        refuse(
            "REDIS_CLUSTER needs REDIS_URL (a node of the cluster): the embedded Redis is a "
            "single server"
        )
        return 1
    lock = StackLock(data_dir)
    try:
        lock.acquire()
    except StackRunning as exc:
        refuse(str(exc))
        return 1
    try:
        return _checked_run(settings, demo)
    except (
        KeyboardInterrupt
    ):  # Ctrl-C before the supervisor took over the signal: stopped all the same
        return 130
    finally:
        lock.release()


def _checked_run(settings: CliSettings, demo: bool) -> int:
    data_dir = settings.voicetap_data_dir.resolve()
    overrides = {
        "VOICETAP_DATA_DIR": str(data_dir),
        "LOG_FORMAT": os.environ.get("LOG_FORMAT", "console"),
    }
    embedded = None
    if settings.redis_url:
        overrides["REDIS_URL"] = settings.redis_url
    else:
        embedded = EmbeddedRedis(data_dir / "redis", settings.voicetap_embedded_redis_port)
        overrides["REDIS_URL"] = embedded.url
    if "INGEST_WORKERS" not in os.environ:  # the ingest takes every core of the host
        overrides["INGEST_WORKERS"] = str(max(os.cpu_count() or 1, 1))
    warnings = local_mode(settings, overrides)
    env = child_env(os.environ, **overrides)

    names = list(installed_services())
    service_settings, problems = load_service_settings(names, env)
    if not problems and (loopback := loopback_defaults(service_settings)):
        overrides.update(loopback)
        env = child_env(os.environ, **overrides)
        service_settings, problems = load_service_settings(names, env)
    if problems:
        refuse(*(f"invalid setting {line}" for line in problems))
        return 2
    env.update(console_targets(service_settings, env))
    wanted = listeners(service_settings)
    if embedded is not None:
        wanted.insert(0, Listener(PORT_SETTING, "127.0.0.1", embedded.port))
    problems = port_problems(wanted)
    if settings.redis_url and (
        unanswered := redis_problem(settings.redis_url, cluster=settings.redis_cluster)
    ):
        problems.append(unanswered)
    if problems:
        refuse(*problems)
        return 1
    if exposed := open_bind_problems(service_settings):
        for line in exposed:
            print(line, file=sys.stderr)
        return 2

    for warning in warnings:
        log.warning(warning)
    if embedded is not None:
        try:
            embedded.start()
        except EmbeddedRedisError as exc:
            refuse(str(exc))
            return 1
        log.info("embedded Redis on %s, data in %s", embedded.url, embedded.data_dir)
    try:
        return _supervise(names, service_settings, env, overrides["REDIS_URL"], demo)
    finally:
        if embedded is not None:
            embedded.stop()


def console_targets(
    service_settings: dict[str, BaseSettings], env: dict[str, str]
) -> dict[str, str]:
    """The console reads the other services, and their `/` links to it: point each at the other
    where it really listens (a port set by the user included), unless a setting says otherwise."""
    if "console" not in service_settings:
        return {}
    targets = {}
    console = base_url("console", service_settings["console"])
    if console is not None and "VOICETAP_CONSOLE_URL" not in env:
        targets["VOICETAP_CONSOLE_URL"] = console + "/"  # the other services' `/` links to it
    for service, variable in (
        ("indexer", "CONSOLE_INDEXER_URL"),
        ("ingest", "CONSOLE_INGEST_URL"),
        ("gateway", "CONSOLE_GATEWAY_URL"),
    ):
        url = base_url(service, service_settings[service]) if service in service_settings else None
        if url is not None and variable not in env:
            targets[variable] = url
    return targets


def _supervise(
    names: list[str],
    service_settings: dict[str, BaseSettings],
    env: dict[str, str],
    redis_url: str,
    demo: bool,
) -> int:
    """Run the services until Ctrl-C; the block of URLs (and the demo) once all are ready."""
    specs = [
        ChildSpec(
            name,
            service_command(name),
            ready_url=readiness_url(name, service_settings[name])
            if name in service_settings
            else None,
        )
        for name in names
    ]
    supervisor: Supervisor

    def on_ready() -> None:
        found = [
            e
            for name in names
            if name in service_settings
            for e in endpoints(name, service_settings[name])
        ]
        print(ready_block(found, without_password(redis_url)), flush=True)
        if demo:
            # Every service started here must take part: one that never gets ready fails
            # the demo instead of being skipped as absent.
            supervisor.start(
                ChildSpec(
                    "simulator",
                    service_command("simulator", "--demo", "--require", ",".join(names)),
                    restart=False,
                )
            )

    supervisor = Supervisor(specs, env, on_ready)
    supervisor.start()
    return supervisor.run()
