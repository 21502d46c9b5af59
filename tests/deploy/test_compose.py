"""compose.yaml against the Compose Specification's JSON Schema, and the stack's deployment rules."""

import copy
import json
from importlib.resources import files
from typing import Any

import pytest

from tests.deploy.manifests import (
    PORTS,
    REQUIRED_ENV,
    MissingVariable,
    compose_raw,
    compose_resolved,
    dockerfile_stages,
    interpolate,
    require,
    voicetap_compose_services,
)


@pytest.fixture(scope="module")
def compose_validator() -> Any:
    # The Compose Specification's schema, as vendored by check-jsonschema (`--builtin-schema vendor.compose-spec`).
    require("check_jsonschema")
    validators = require("jsonschema.validators")
    schema = json.loads(
        files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text()
    )
    cls = validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def _errors(validator: Any, document: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def test_compose_file_follows_the_compose_specification(compose_validator: Any) -> None:
    assert _errors(compose_validator, compose_raw()) == []
    assert _errors(compose_validator, compose_resolved()) == [], (
        "after interpolation with the defaults"
    )
    scaled = compose_resolved(
        {"PUBLISH_GATEWAY_PORT": "8000-8003", "INGEST_RTP_PORTS": "41000-41099"}
    )
    assert _errors(compose_validator, scaled) == []


def test_the_schema_check_can_fail(compose_validator: Any) -> None:
    broken = copy.deepcopy(compose_raw())
    broken["services"]["gateway"]["helthcheck"] = broken["services"]["gateway"].pop("healthcheck")
    assert _errors(compose_validator, broken)
    broken = copy.deepcopy(compose_raw())
    broken["services"]["indexer"]["depends_on"]["redis"]["condition"] = "service_happy"
    assert any("service_happy" in error for error in _errors(compose_validator, broken))


def test_redis_is_durable_and_checked() -> None:
    document = compose_resolved()
    redis = document["services"]["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command and "--maxmemory-policy noeviction" in command
    volume, _, target = redis["volumes"][0].partition(":")
    assert volume in document["volumes"] and target == "/data", (
        "a named volume holds the append-only file"
    )
    assert redis["healthcheck"]["test"] and redis["restart"]
    for service in voicetap_compose_services(document).values():
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        assert service["environment"]["REDIS_URL"].startswith("redis://redis:6379")


def test_each_service_is_built_checked_restarted_and_configured() -> None:
    document = compose_resolved()
    services = voicetap_compose_services(document)
    assert set(services) == set(PORTS), "gateway, ingest and indexer run from the project's image"
    targets = dockerfile_stages()
    for command, service in services.items():
        assert service["build"]["target"] in targets
        assert service["build"]["target"] == command
        check = " ".join(service["healthcheck"]["test"])
        assert f"127.0.0.1:{PORTS[command]}/healthz" in check, command
        assert service["restart"] in ("unless-stopped", "always", "on-failure")
        assert any(
            entry["path"] == ".env" and entry["required"] is False for entry in service["env_file"]
        ), command
        assert service["environment"]["VOICETAP_DATA_DIR"] == "/data"
        container_ports = {
            int(str(p).rsplit(":", 1)[-1].split("/")[0])
            for p in service["ports"]
            if not str(p).endswith("/udp")
        }
        assert container_ports == {PORTS[command]}, command
        # the Telnyx key each service reads is passed from the shell (a value-less entry: compose
        # takes the shell's value when set, else leaves `.env`'s alone)
        key = "TELNYX_PUBLIC_KEY" if command == "gateway" else "TELNYX_API_KEY"
        assert key in service["environment"] and service["environment"][key] is None, command


def test_nothing_prevents_scaling_the_workers() -> None:
    document = compose_resolved()
    for name, service in document["services"].items():
        assert "container_name" not in service, f"{name}: a fixed container name prevents --scale"
    indexer = voicetap_compose_services(document)["indexer"]
    host = indexer["ports"][0].rsplit(":", 1)[0]
    first, _, last = host.partition("-")
    assert last and int(last) > int(first), (
        "each indexer replica takes its own host port from a range"
    )
    scaled = compose_resolved({"PUBLISH_GATEWAY_PORT": "8000-8003"})
    assert voicetap_compose_services(scaled)["gateway"]["ports"] == ["8000-8003:8000"]


def test_ingest_publishes_its_rtp_range_one_to_one() -> None:
    for env, expected in (
        ({}, "40000-40999"),
        ({"INGEST_RTP_PORTS": "41000-41099"}, "41000-41099"),
    ):
        ingest = voicetap_compose_services(compose_resolved(env))["ingest"]
        assert f"{expected}:{expected}/udp" in ingest["ports"], (
            "host ports = the ports ingest hands Telnyx"
        )
        assert ingest["environment"]["INGEST_RTP_PORTS"] == expected
        assert ingest["environment"]["INGEST_PUBLIC_HOST"]


def test_ingest_range_default_is_the_settings_default() -> None:
    from tests.deploy.manifests import settings_class

    settings = settings_class("ingest")
    assert settings.model_fields["ingest_rtp_ports"].default == "40000-40999"


def test_an_s3_store_is_an_optional_profile_for_the_ingest_and_the_indexer() -> None:
    document = compose_resolved()
    for name in ("s3", "s3-bucket"):
        assert document["services"][name]["profiles"] == ["s3"]
    assert "-s3" in document["services"]["s3"]["command"]
    services = voicetap_compose_services(document)
    for name in ("ingest", "indexer"):
        assert services[name]["depends_on"]["s3-bucket"] == {
            "condition": "service_completed_successfully",
            "required": False,
        }, name


def test_postgres_is_an_optional_profile_for_the_indexer() -> None:
    document = compose_resolved(
        {"INDEXER_DATABASE_URL": "postgresql://voicetap:voicetap@postgres:5432/voicetap"}
    )
    postgres = document["services"]["postgres"]
    assert postgres["profiles"] == ["postgres"]
    assert "pg_isready" in postgres["healthcheck"]["test"]
    indexer = voicetap_compose_services(document)["indexer"]
    assert indexer["depends_on"]["postgres"] == {"condition": "service_healthy", "required": False}
    assert indexer["environment"]["INDEXER_DATABASE_URL"].startswith("postgresql://")
    assert (
        voicetap_compose_services(compose_resolved())["indexer"]["environment"][
            "INDEXER_DATABASE_URL"
        ]
        == ""
    )
    for name, service in document["services"].items():
        if name not in ("postgres", "prometheus", "s3", "s3-bucket"):
            assert "profiles" not in service, f"{name} runs without a profile"


def test_the_servers_of_call_content_take_a_required_token() -> None:
    services = voicetap_compose_services(compose_resolved())
    for command in ("ingest", "indexer"):
        environment = services[command]["environment"]
        assert environment["VOICETAP_API_TOKEN"] == REQUIRED_ENV["VOICETAP_API_TOKEN"], command
    assert "VOICETAP_API_TOKEN" not in services["gateway"]["environment"]  # signed webhooks only
    for unset in ({}, {"VOICETAP_API_TOKEN": ""}):
        with pytest.raises(
            MissingVariable, match=r"set VOICETAP_API_TOKEN \(openssl rand -hex 32\)"
        ):
            interpolate(compose_raw(), unset)
