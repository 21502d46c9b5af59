"""Settings of the recordings store, mixed into the services that write or serve recordings
(ingest, indexer); named and read the way the AWS SDKs read them."""

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings

from voicetap_common.recordings_store import StoreConfig, check_url
from voicetap_common.settings import CommonSettings


class RecordingsStoreSettings(BaseSettings):
    # The same reading as CommonSettings (see call_control.TelnyxApiSettings for why).
    model_config = CommonSettings.model_config

    voicetap_recordings_url: str = Field(
        default="",
        description="Where finished recordings are stored: `file:///directory` or `s3://bucket/prefix` (any "
        "S3-compatible store, configured with the `AWS_*` variables); default `file://` `VOICETAP_DATA_DIR/recordings`.",
    )
    aws_endpoint_url_s3: str | None = Field(
        default=None,
        description="S3 endpoint of an `s3://` store other than AWS (MinIO, SeaweedFS, a gateway); `http://` is allowed.",
    )
    aws_endpoint_url: str | None = Field(
        default=None,
        description="Endpoint of every AWS service; read when `AWS_ENDPOINT_URL_S3` is unset.",
    )
    aws_region: str | None = Field(
        default=None, description="Region of the bucket; default the library's (`us-east-1`)."
    )
    aws_access_key_id: SecretStr | None = Field(
        default=None,
        description="Access key of an `s3://` store; unset: the AWS SDK's other sources (`AWS_SESSION_TOKEN`, web identity, the instance's role).",
    )
    aws_secret_access_key: SecretStr | None = Field(
        default=None, description="Secret of `AWS_ACCESS_KEY_ID`."
    )

    @field_validator("voicetap_recordings_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_url(value) if value else value

    def store_config(self, data_dir: Path) -> StoreConfig:
        """The store's plain values; the default directory is under ``data_dir``."""
        url = self.voicetap_recordings_url or f"file://{(data_dir / 'recordings').resolve()}"
        key, secret = self.aws_access_key_id, self.aws_secret_access_key
        return StoreConfig(
            url=url,
            endpoint=self.aws_endpoint_url_s3 or self.aws_endpoint_url,
            region=self.aws_region,
            access_key_id=key.get_secret_value() if key else None,
            secret_access_key=secret.get_secret_value() if secret else None,
        )
