"""Where Sluicegate finds Temporal; read from SLUICEGATE_* environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SLUICEGATE_", extra="ignore")

    temporal_address: str = Field(
        default="127.0.0.1:7233", description="Temporal frontend host:port"
    )
    namespace: str = "default"
    task_queue: str = "sluicegate"
    max_watched_deployments: int = Field(
        default=100, ge=1, description="health watchers one worker runs at once"
    )
