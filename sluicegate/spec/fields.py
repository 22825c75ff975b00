"""The frozen base model and the field types the spec's sections share."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


class SpecModel(BaseModel):
    """Base of every spec model: unknown fields are errors, values never change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _http_url(value: str) -> str:
    if not re.match(r"^https?://[^/\s]+$", value.rstrip("/")):
        raise ValueError(f"must be an http(s) URL like http://127.0.0.1:9901, got {value!r}")
    return value.rstrip("/")


AdminUrl = Annotated[
    str,
    AfterValidator(_http_url),
    Field(description="Envoy admin endpoint, e.g. http://127.0.0.1:9901"),
]


def _url_with_path(value: str) -> str:
    if not re.match(r"^https?://[^/\s]+(/\S*)?$", value):
        raise ValueError(f"must be an http(s) URL like http://127.0.0.1:8080/path, got {value!r}")
    return value


UrlWithPath = Annotated[str, AfterValidator(_url_with_path)]
EnvName = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="name of an environment variable on the worker (secrets stay out of history)",
    ),
]
