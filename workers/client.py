"""The one way to build a Temporal client: pydantic payloads and tracing, for every caller."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter

from sluicegate.settings import Settings

DATA_CONVERTER = pydantic_data_converter


async def connect(settings: Settings | None = None) -> Client:
    settings = settings or Settings()
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.namespace,
        data_converter=DATA_CONVERTER,
        interceptors=[TracingInterceptor()],
    )
