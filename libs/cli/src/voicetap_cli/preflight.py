"""What ``voicetap up`` checks before it starts anything: every service's settings, the ports the
stack will listen on, and a given ``REDIS_URL``. Each problem is one line naming the setting that
fixes it, so a mistake stops the stack before a service crash-loops on it."""

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from urllib.parse import urlsplit, urlunsplit

from pydantic import ValidationError
from pydantic_settings import BaseSettings

from voicetap_cli.ports import bind_problem
from voicetap_common.settings import env_name, settings_errors
from voicetap_sdk.redis_client import REDIS_UNAVAILABLE, sync_client_for

SETTINGS_GROUP = "voicetap.settings"  # service name -> its settings class
_REDIS_FAILURES: tuple[type[Exception], ...] = (*REDIS_UNAVAILABLE, ValueError)  # ValueError: URL


@contextlib.contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` is ``env`` inside: settings are read exactly as the child processes will."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def load_service_settings(
    names: list[str], env: Mapping[str, str]
) -> tuple[dict[str, BaseSettings], list[str]]:
    """Each named service's settings as its process will read them (environment ``env``, ``.env``
    of the working directory), and one line per bad setting, each said once even when several
    services read it."""
    classes = {ep.name: ep for ep in entry_points(group=SETTINGS_GROUP)}
    loaded: dict[str, BaseSettings] = {}
    problems: list[str] = []
    with _environment(env):
        for name in names:
            if name not in classes:
                continue
            model: type[BaseSettings] = classes[name].load()
            try:
                loaded[name] = model()
            except ValidationError as exc:
                problems += [line for line in settings_errors(model, exc) if line not in problems]
    return loaded, problems


@dataclass(frozen=True)
class Listener:
    """A port the stack will listen on, and the setting that chose it."""

    setting: str
    host: str
    port: int


def listeners(settings: Mapping[str, BaseSettings]) -> list[Listener]:
    """Every ``*_port`` setting of the services, with the address of its ``*_host`` setting (all
    addresses when it has none); port 0 (any free port) is left out."""
    found = []
    for values in settings.values():
        model = type(values)
        for field in model.model_fields:
            port = getattr(values, field)
            if not field.endswith("_port") or not isinstance(port, int) or port == 0:
                continue
            host = getattr(values, field.removesuffix("_port") + "_host", "0.0.0.0")
            found.append(Listener(env_name(model, field), str(host), port))
    return found


def port_problems(wanted: list[Listener]) -> list[str]:
    """One line per port that is set twice, or that a server could not listen on now."""
    problems = []
    first_of: dict[int, Listener] = {}
    for listener in wanted:
        earlier = first_of.setdefault(listener.port, listener)
        if earlier is not listener:
            problems.append(
                f"port {listener.port} is set for both {earlier.setting} and {listener.setting}: "
                f"set one of them to another port"
            )
            continue
        why = bind_problem(listener.host, listener.port)
        if why is not None:
            problems.append(
                f"port {listener.port} ({listener.setting}) {why}: stop what listens there, "
                f"or set {listener.setting} to a free port"
            )
    return problems


def without_password(url: str) -> str:
    """``url`` fit for a log line: its password, if any, replaced by ``***``."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def redis_problem(url: str, *, cluster: bool) -> str | None:
    """Why the Redis at ``url`` cannot be used by the stack, or ``None`` when it answers."""
    try:
        with sync_client_for(
            url, cluster=cluster, socket_connect_timeout=2, socket_timeout=2
        ) as client:
            client.ping()
    except _REDIS_FAILURES as exc:
        text = str(exc).strip()
        reason = text.splitlines()[0].rstrip(".") if text else type(exc).__name__
        return (
            f"Redis at {without_password(url)} (REDIS_URL) does not answer: {reason}; "
            "start it, fix REDIS_URL, or unset REDIS_URL to use the embedded Redis"
        )
    return None
