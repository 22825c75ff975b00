"""The one way to build a Temporal client (pydantic payloads, tracing, TLS, API key) for
the worker, the CLI and chat-ops alike."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime
from temporalio.service import TLSConfig

from sluicegate.errors import SluicegateError
from sluicegate.settings import Settings, SettingsError

DATA_CONVERTER = pydantic_data_converter
CONNECT_TIMEOUT = timedelta(seconds=10)


class TemporalUnreachable(SluicegateError):
    """The Temporal frontend did not answer, or refused the credentials."""


async def connect(
    settings: Settings | None = None, identity: str | None = None, runtime: Runtime | None = None
) -> Client:
    """A client of the Temporal the settings name; `runtime`: the Temporal runtime whose
    telemetry it uses (the worker's metrics, `workers.metrics.metrics_runtime`), else the
    process's default."""
    settings = settings or Settings()
    try:
        return await Client.connect(
            settings.temporal_address,
            namespace=settings.namespace,
            api_key=settings.api_key,
            tls=tls_config(settings),
            data_converter=DATA_CONVERTER,
            interceptors=[TracingInterceptor()],
            connect_timeout=CONNECT_TIMEOUT,
            identity=identity,
            runtime=runtime,
        )
    except RuntimeError as err:  # the SDK reports connection failures as RuntimeError
        raise TemporalUnreachable(
            f"cannot reach Temporal at {settings.temporal_address} "
            f"(namespace {settings.namespace}): {_first_line(err)}"
        ) from None


def tls_config(settings: Settings) -> TLSConfig | bool:
    """TLS from the settings: False for plain gRPC, True for system CAs, or the PEM files."""
    if not settings.uses_tls:
        return False
    if settings.tls_cert is None and settings.tls_ca is None and not settings.tls_server_name:
        return True
    return TLSConfig(
        server_root_ca_cert=_read_pem(settings.tls_ca, "tls_ca"),
        client_cert=_read_pem(settings.tls_cert, "tls_cert"),
        client_private_key=_read_pem(settings.tls_key, "tls_key"),
        domain=settings.tls_server_name,
    )


def _read_pem(path: Path | None, setting: str) -> bytes | None:
    if path is None:
        return None
    try:
        return path.expanduser().read_bytes()
    except OSError as err:
        raise SettingsError(f"{setting}: cannot read {path}: {err.strerror}") from None


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
