"""Where Sluicegate finds Temporal: SLUICEGATE_* environment variables over an optional
TOML file (SLUICEGATE_CONFIG, else ~/.config/sluicegate/config.toml), over the defaults.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from sluicegate.chatops_settings import ChatOpsSettings
from sluicegate.errors import SluicegateError
from sluicegate.evidence import StoreUrl
from sluicegate.notifications import NotificationChannel
from sluicegate.spec import ArgumentName, CommandName

CONFIG_ENV = "SLUICEGATE_CONFIG"
OFF = "off"  # evidence_url: keep no evidence
DEFAULT_CONFIG = Path("~/.config/sluicegate/config.toml")


class SettingsError(SluicegateError):
    """A setting is missing, malformed or points at something unreadable."""


class CommandSetting(BaseModel):
    """A command that command hooks may run by name (`[commands.<name>]`, docs/HOOKS.md).

    The spec only picks the command and gives values for the declared `arguments`; each
    given one is appended to `argv` as one `--name=value` item, in the declared order.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    argv: tuple[str, ...] = Field(
        min_length=1, description="the program (an absolute path) and its fixed arguments"
    )
    arguments: tuple[ArgumentName, ...] = Field(
        default=(), description="argument names a spec may give values for"
    )
    env: dict[str, str] = Field(
        default_factory=dict, description="extra environment variables for the command"
    )
    cwd: Path | None = Field(
        default=None, description="absolute working directory; default: the worker's"
    )

    @field_validator("argv")
    @classmethod
    def _absolute_program(cls, argv: tuple[str, ...]) -> tuple[str, ...]:
        if not Path(argv[0]).is_absolute():
            raise ValueError(f"the program must be an absolute path, got {argv[0]!r}")
        return argv

    @field_validator("arguments")
    @classmethod
    def _unique_arguments(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        if repeated := sorted({name for name in names if names.count(name) > 1}):
            raise ValueError(f"argument names must be unique: {', '.join(repeated)}")
        return names

    @field_validator("cwd")
    @classmethod
    def _absolute_cwd(cls, cwd: Path | None) -> Path | None:
        if cwd is not None and not cwd.is_absolute():
            raise ValueError(f"must be an absolute path, got {str(cwd)!r}")
        return cwd


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SLUICEGATE_", env_nested_delimiter="__", extra="forbid"
    )

    temporal_address: str = Field(
        default="127.0.0.1:7233", min_length=1, description="Temporal frontend host:port"
    )
    namespace: str = Field(default="default", min_length=1)
    task_queue: str = Field(default="sluicegate", min_length=1)
    api_key: str | None = Field(default=None, description="Temporal Cloud API key (implies TLS)")
    tls: bool = Field(default=False, description="use TLS with the system's trusted CAs")
    tls_cert: Path | None = Field(default=None, description="client certificate (PEM), for mTLS")
    tls_key: Path | None = Field(default=None, description="client private key (PEM), for mTLS")
    tls_ca: Path | None = Field(default=None, description="CA that signed the server (PEM)")
    tls_server_name: str | None = Field(default=None, description="override the TLS SNI name")
    ui_url: str = Field(
        default="http://localhost:8233", description="Temporal Web UI, for the links sluice prints"
    )
    max_watched_deployments: int = Field(
        # Half of the 1,000 one worker held at 10-s checks (docs/BENCHMARKS.md, "Scale").
        default=500,
        ge=1,
        description="health watchers one worker runs at once",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="worker log level; debug adds a line per HTTP request"
    )
    log_format: Literal["text", "json"] = Field(
        default="text", description="worker log lines as text, or one JSON object per line"
    )
    metrics_address: str | None = Field(
        default=None,
        description="IP:port where the worker serves Prometheus metrics at /metrics; default: off",
    )
    notifications: tuple[NotificationChannel, ...] = Field(
        default=(), description="where the worker sends deployment notifications"
    )
    chatops: ChatOpsSettings = Field(
        default=ChatOpsSettings(), description="`sluice chatops`: Slack and the HTTP API"
    )
    commands: dict[CommandName, CommandSetting] = Field(
        default_factory=dict, description="what command hooks may run, by name"
    )
    evidence_url: str = Field(
        default=".state/evidence.db",
        description="the evidence store (docs/REPORTS.md): a SQLite file, "
        "postgresql://user@host:port/db for several workers, or off",
    )
    evidence_retention: timedelta = Field(
        default=timedelta(days=90),
        description="how long the evidence store keeps checks and events; 0: for ever",
    )
    report_url: str | None = Field(
        default=None,
        description="where `sluice chatops` serves report pages, e.g. https://sluice.example.com;"
        " notifications link to them",
    )
    report_secret: SecretStr | None = Field(
        default=None,
        description="signs the report links of notifications, so a browser may open them "
        "without an API token; the same on the workers and `sluice chatops`",
    )

    @field_validator("metrics_address")
    @classmethod
    def _host_and_port(cls, address: str | None) -> str | None:
        if address is None:
            return None
        host, _, port = address.rpartition(":")
        try:  # Temporal's exporter binds an IP address, not a name
            ipaddress.ip_address(host[1:-1] if host.startswith("[") else host)
            valid = host.count(":") == 0 or host.startswith("[")
        except ValueError:
            valid = False
        if not (valid and port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(
                "must be IP:port, e.g. 127.0.0.1:9464, 0.0.0.0:9464 or [::1]:9464 "
                f"(an IP address, not a host name), got {address!r}"
            )
        return address

    @field_validator("evidence_url")
    @classmethod
    def _known_store(cls, url: str) -> str:
        if url != OFF:
            StoreUrl.parse(url)  # raises ValueError naming what is valid
        return url

    @field_validator("evidence_retention")
    @classmethod
    def _not_negative(cls, retention: timedelta) -> timedelta:
        if retention < timedelta(0):
            raise ValueError("must be 0 (keep for ever) or more, e.g. P90D or 7776000")
        return retention

    @field_validator("report_url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https://, got {url!r}")
        return url.rstrip("/") if url else url

    @model_validator(mode="after")
    def _unique_channel_names(self) -> Settings:
        names = [channel.name for channel in self.notifications]
        if repeated := sorted({name for name in names if names.count(name) > 1}):
            raise ValueError(f"notification channel names must be unique: {', '.join(repeated)}")
        return self

    @model_validator(mode="after")
    def _cert_and_key_together(self) -> Settings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together: set both for mTLS, or neither")
        return self

    @classmethod
    def defaults(cls) -> Settings:
        """Every setting at its default, whatever the environment and settings file say."""
        return cls.model_construct()

    def workflow_link(self, workflow_id: str, run_id: str | None = None) -> str:
        """The Web UI page of a workflow (of its latest run without `run_id`)."""
        base = f"{self.ui_url.rstrip('/')}/namespaces/{self.namespace}/workflows/{workflow_id}"
        return f"{base}/{run_id}/history" if run_id else base

    def report_link(self, service: str, deployment_id: str) -> str | None:
        """The report page of a deployment, when `report_url` says where pages are served;
        signed with `report_secret` if set."""
        if not self.report_url:
            return None
        link = f"{self.report_url}/reports/{service}/{deployment_id}"
        signature = self.report_signature(service, deployment_id)
        return f"{link}?signature={signature}" if signature else link

    def report_signature(self, service: str, deployment_id: str) -> str | None:
        """HMAC-SHA256 of the page's service and deployment; None without `report_secret`."""
        if self.report_secret is None:
            return None
        key = self.report_secret.get_secret_value().encode()
        message = f"{service}/{deployment_id}".encode()
        return hmac.new(key, message, hashlib.sha256).hexdigest()

    @property
    def evidence_store(self) -> StoreUrl | None:
        """Where the evidence store is; None when `evidence_url` is off."""
        return None if self.evidence_url == OFF else StoreUrl.parse(self.evidence_url)

    @property
    def uses_tls(self) -> bool:
        return any((self.tls, self.api_key, self.tls_cert, self.tls_ca, self.tls_server_name))

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_path())
        return (init_settings, env_settings, toml)


def config_path() -> Path:
    """The TOML file settings are read from (it need not exist)."""
    return Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG).expanduser()


def load_settings(**overrides: object) -> Settings:
    """Settings from overrides, the environment and the TOML file; one clear error if bad."""
    path = config_path()
    if CONFIG_ENV in os.environ and not path.is_file():
        raise SettingsError(f"{CONFIG_ENV}={path}: no such file")
    # Any value may be given: Settings validates each one against its field.
    given: dict[str, Any] = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as err:
        problems = "; ".join(
            _problem(error["loc"], error["type"], error["msg"]) for error in err.errors()
        )
        raise SettingsError(f"bad setting: {problems} (settings file {path})") from None
    except ValueError as err:  # e.g. the TOML file does not parse
        raise SettingsError(f"cannot read settings file {path}: {err}") from None


def _problem(location: tuple[int | str, ...], kind: str, message: str) -> str:
    message = message.removeprefix("Value error, ")
    bad_key = "[key]" in location  # a bad dict key, e.g. a command's name
    location = tuple(part for part in location if part != "[key]")
    if not location:
        return message
    name = ".".join(str(part) for part in location)
    if kind == "extra_forbidden":
        known = ", ".join(_model_at(location[:-1]).model_fields)
        return f"unknown setting {name!r}; known: {known}"
    whole_section = _model_at(location) is not _model_at(location[:-1])
    if bad_key or whole_section or any(isinstance(part, int) for part in location):
        return f"{name}: {message}"
    variable = "SLUICEGATE_" + "__".join(str(part).upper() for part in location)
    return f"{name} (env {variable}): {message}"


def _model_at(location: tuple[int | str, ...]) -> type[BaseModel]:
    """The settings model that holds the field at `location` (list indexes and dict keys
    are skipped), so an unknown nested key can be answered with the known ones."""
    model: type[BaseModel] = Settings
    for part in location:
        field = model.model_fields.get(str(part))
        if field is not None:
            model = _inner_model(field.annotation) or model
    return model


def _inner_model(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in get_args(annotation):
        if found := _inner_model(argument):
            return found
    return None
