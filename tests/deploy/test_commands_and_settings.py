"""Every command the deployment files run exists in the `voicetap` CLI, and every variable they set is a setting."""

import argparse
import tomllib
from typing import Any

import pytest

from tests.deploy.manifests import (
    COMPOSE,
    PORTS,
    ROOT,
    SERVICES,
    all_setting_names,
    compose_raw,
    compose_resolved,
    dockerfile_stages,
    exec_form,
    interpolation_variables,
    k8s_by_kind,
    setting_names,
    settings_class,
    stage_env,
    voicetap_compose_services,
)
from voicetap_cli.main import build_parser

# Compose-only knobs (host ports) and the PostgreSQL image's own variable: not voicetap settings.
COMPOSE_ONLY = {"POSTGRES_PASSWORD"}
IMAGE_RUNTIME = {"PATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE"}


def _cli_commands() -> set[str]:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(subparsers.choices)


def _commands_used() -> dict[str, str]:
    """command -> where it is used."""
    used = {}
    for command in voicetap_compose_services(compose_raw()):
        used[command] = "compose.yaml"
    for target in ("gateway", "ingest", "indexer", "all"):
        used[exec_form(dockerfile_stages()[target].all("CMD")[0])[0]] = (
            f"deploy/Dockerfile target {target}"
        )
    for name, deployment in k8s_by_kind("Deployment").items():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            if container["image"].startswith("voicetap-"):
                used[container["args"][0]] = f"deploy/k8s Deployment {name}"
    return used


def test_every_service_command_exists_in_the_cli() -> None:
    commands = _cli_commands()
    used = _commands_used()
    assert {"gateway", "ingest", "indexer", "up"} <= set(used)
    missing = {command: where for command, where in used.items() if command not in commands}
    assert not missing, f"not `voicetap` commands: {missing}"


def test_every_service_command_is_a_declared_service_entry_point() -> None:
    declared = set()
    for pyproject in ROOT.glob("services/*/pyproject.toml"):
        project = tomllib.loads(pyproject.read_text())["project"]
        declared |= set(project.get("entry-points", {}).get("voicetap.services", {}))
    assert set(SERVICES) <= declared, (
        "`voicetap <service>` runs the service's `voicetap.services` entry point"
    )


def _assert_settings(names: set[str], allowed: set[str], where: str) -> None:
    unknown = sorted(names - allowed)
    assert not unknown, f"{where} sets variables that no settings class reads: {unknown}"


@pytest.mark.parametrize("command", list(SERVICES))
def test_compose_environment_names_are_settings(command: str) -> None:
    allowed = setting_names(settings_class(command))
    service = voicetap_compose_services(compose_resolved())[command]
    _assert_settings(set(service["environment"]), allowed, f"compose.yaml service {command}")


def test_compose_interpolates_only_settings_and_host_ports() -> None:
    variables = interpolation_variables(COMPOSE.read_text())
    knobs = {v for v in variables if v.startswith("PUBLISH_")}
    _assert_settings(
        variables - knobs - COMPOSE_ONLY, all_setting_names(), "compose.yaml interpolation"
    )


@pytest.mark.parametrize("command", list(SERVICES))
def test_dockerfile_environment_names_are_settings(command: str) -> None:
    allowed = setting_names(settings_class(command))
    _assert_settings(
        set(stage_env(command)) - IMAGE_RUNTIME, allowed, f"deploy/Dockerfile target {command}"
    )


def test_all_image_environment_names_are_settings() -> None:
    _assert_settings(
        set(stage_env("all")) - IMAGE_RUNTIME, all_setting_names(), "deploy/Dockerfile target all"
    )


@pytest.mark.parametrize("command", list(SERVICES))
def test_kubernetes_environment_names_are_settings(command: str) -> None:
    allowed = setting_names(settings_class(command))
    container: dict[str, Any] = k8s_by_kind("Deployment")[command]["spec"]["template"]["spec"][
        "containers"
    ][0]
    _assert_settings(
        {e["name"] for e in container.get("env", [])}, allowed, f"deploy/k8s Deployment {command}"
    )


def test_config_map_and_secret_keys_are_settings() -> None:
    everything = all_setting_names()
    _assert_settings(
        set(k8s_by_kind("ConfigMap")["voicetap-config"]["data"]), everything, "deploy/k8s ConfigMap"
    )
    _assert_settings(
        set(k8s_by_kind("Secret")["voicetap-secrets"]["stringData"]),
        everything,
        "deploy/k8s Secret",
    )


@pytest.mark.parametrize("command", list(SERVICES))
def test_ports_are_the_settings_defaults(command: str) -> None:
    cls = settings_class(command)
    field = {"gateway": "gateway_port", "ingest": "ingest_port", "indexer": "indexer_port"}[command]
    assert cls.model_fields[field].default == PORTS[command]
