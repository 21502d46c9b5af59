"""Loading the deployment files the way their tools read them: compose.yaml, deploy/Dockerfile, deploy/k8s."""

import importlib
import json
import os
import re
import shlex
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
K8S = ROOT / "deploy" / "k8s"

# The voicetap services as every deployment file names them: CLI command -> settings class.
SERVICES = {
    "gateway": "webhook_gateway.settings:GatewaySettings",
    "ingest": "media_ingest.settings:IngestSettings",
    "indexer": "transcript_indexer.settings:IndexerSettings",
}
PORTS = {"gateway": 8000, "ingest": 8001, "indexer": 8002}

DEPLOY_GROUP = (
    "the `deploy` dependency group is not installed (uv sync --all-packages --group deploy)"
)


def require(module: str) -> Any:
    """Import a tool of the `deploy` dependency group, or skip saying how to install it."""
    return pytest.importorskip(module, reason=DEPLOY_GROUP)


_VARIABLE = re.compile(
    r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)


def compose_raw() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def interpolation_variables(text: str) -> set[str]:
    """The variables compose interpolates (``${NAME}``, ``${NAME:-default}``, ``$NAME``; ``$$`` escapes)."""
    return {m.group("name") or m.group("bare") for m in _VARIABLE.finditer(text.replace("$$", ""))}


class MissingVariable(ValueError):
    """A ``${NAME:?message}`` whose variable is unset: compose refuses to start with the message."""


# What a deployment must set (compose's `${NAME:?...}`), with a value for the tests that read the file.
REQUIRED_ENV = {"VOICETAP_API_TOKEN": "token-for-the-manifest-tests"}


def interpolate(node: Any, env: dict[str, str]) -> Any:
    """Compose's interpolation with ``env`` (unset variables take their defaults)."""
    if isinstance(node, dict):
        return {key: interpolate(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate(item, env) for item in node]
    if not isinstance(node, str):
        return node

    def substitute(match: re.Match[str]) -> str:
        name = match.group("name") or match.group("bare")
        value, op, arg = env.get(name), match.group("op"), match.group("arg") or ""
        if op in (":?", "?") and (value is None or (op == ":?" and value == "")):
            raise MissingVariable(f"required variable {name} is missing a value: {arg}")
        if op in (":-", "-"):
            return arg if value is None or (op == ":-" and value == "") else value
        return value or ""

    return _VARIABLE.sub(substitute, node.replace("$$", "\0")).replace("\0", "$")


def compose_resolved(env: dict[str, str] | None = None) -> dict[str, Any]:
    """compose.yaml as compose resolves it with ``env`` (the required variables set unless ``env``
    sets them otherwise)."""
    return interpolate(compose_raw(), {**REQUIRED_ENV, **(env or {})})


def voicetap_compose_services(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Compose services that run a voicetap command (built from deploy/Dockerfile), by command."""
    found: dict[str, dict[str, Any]] = {}
    for service in document["services"].values():
        if (
            isinstance(service.get("build"), dict)
            and service["build"].get("dockerfile") == "deploy/Dockerfile"
        ):
            found[service["command"][0]] = service
    return found


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


@cache
def dockerfile_stages() -> dict[str, Stage]:
    """The Dockerfile's stages by name, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            parts = args.split()
            name = parts[parts.index("AS") + 1] if "AS" in parts else f"stage{len(stages)}"
            current = stages[name] = Stage(name, parts[0])
        elif current is not None:
            current.instructions.append((keyword, args))
    return stages


def dockerfile_args() -> dict[str, str]:
    """Global ARG defaults (before the first FROM)."""
    found = {}
    for line in DOCKERFILE.read_text().split("\nFROM ", 1)[0].splitlines():
        if line.startswith("ARG ") and "=" in line:
            name, _, value = line[4:].strip().partition("=")
            found[name] = value
    return found


def stage_chain(name: str) -> list[Stage]:
    """A stage and the stages it is built FROM, nearest first."""
    stages = dockerfile_stages()
    chain = [stages[name]]
    while chain[-1].base in stages:
        chain.append(stages[chain[-1].base])
    return chain


def stage_env(name: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for stage in reversed(stage_chain(name)):
        for args in stage.all("ENV"):
            for token in shlex.split(args):
                key, _, value = token.partition("=")
                env[key] = value
    return env


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), (
        f"not exec form: {args}"
    )
    return value


# Examples the user applies (or not) by hand: never in the kustomization, checked all the same.
K8S_EXAMPLES = ("secret.example.yaml",)


def k8s_documents() -> list[tuple[str, dict[str, Any]]]:
    """Every resource of the files kustomization.yaml lists and of the examples, with its file name."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return [
        (name, document)
        for name in [*kustomization["resources"], *K8S_EXAMPLES]
        for document in yaml.safe_load_all((K8S / name).read_text())
        if document
    ]


def k8s_by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for _, doc in k8s_documents() if doc["kind"] == kind}


def settings_class(command: str) -> type:
    """The service's settings class; skips (naming it) while the service does not have one yet."""
    module_name, _, class_name = SERVICES[command].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        pytest.skip(
            f"{SERVICES[command]} is not importable yet ({exc}): its setting names are not checked"
        )
    if not hasattr(module, class_name):
        pytest.skip(f"{SERVICES[command]} does not exist yet: its setting names are not checked")
    return getattr(module, class_name)


def setting_names(cls: type) -> set[str]:
    """The environment variables a pydantic-settings class reads (no prefix: field names, upper-cased)."""
    names = set()
    for name, info in cls.model_fields.items():  # type: ignore[attr-defined]
        alias = info.validation_alias if isinstance(info.validation_alias, str) else None
        names.add((alias or name).upper())
    return names


def all_setting_names() -> set[str]:
    from voicetap_cli.settings import CliSettings

    names = setting_names(CliSettings)
    for command in SERVICES:
        module_name, _, class_name = SERVICES[command].partition(":")
        try:
            names |= setting_names(getattr(importlib.import_module(module_name), class_name))
        except (ImportError, AttributeError):
            continue
    return names


def hadolint_binary() -> str | None:
    import shutil
    import sys

    for candidate in (Path(sys.executable).parent / "hadolint", shutil.which("hadolint")):
        if candidate and os.access(candidate, os.X_OK):
            return str(candidate)
    return None
