"""The deployment spec: what to deploy, through which router, in which stages, judged how.

Pure pydantic models, safe to import from workflow code. `load_spec` reads YAML or JSON
and turns every validation problem into one `SpecError` that names each bad field.
"""

from __future__ import annotations

import itertools
import json
import re
import string
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from sluicegate.errors import SpecError

Percent = Annotated[int, Field(ge=0, le=100, description="share of traffic, 0-100")]
_ADDRESS = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:\d{1,5}$")
_SERVICE = re.compile(r"^[a-z0-9]([a-z0-9\-_.]{0,61}[a-z0-9])?$")


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


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Version(_Model):
    """One build of the service and the address its instances listen on."""

    version: str = Field(min_length=1, description="label shown everywhere, e.g. v2 or a git sha")
    address: str = Field(description="host:port of the upstream serving this version")

    @field_validator("address")
    @classmethod
    def _host_port(cls, value: str) -> str:
        if not _ADDRESS.match(value) or not 0 < int(value.rsplit(":", 1)[1]) < 65536:
            raise ValueError(f"must be host:port with a port 1-65535, got {value!r}")
        return value


class EnvoyRouter(_Model):
    """Envoy: weights through the admin runtime, upstream addresses through EDS files."""

    type: Literal["envoy"] = "envoy"
    admin_url: AdminUrl
    endpoints_dir: str = Field(
        description="directory Envoy watches for the <cluster>.yaml EDS files"
    )
    runtime_key: str = "sluicegate.canary_weight"
    stable_cluster: str = "stable"
    canary_cluster: str = "canary"


# One member per router module. With a second router this becomes a union discriminated by
# `type`, so an unknown type stays a validation error, never a silent fallback.
class HAProxyRouter(_Model):
    """HAProxy: server weights and addresses through the runtime API, no reload."""

    type: Literal["haproxy"] = "haproxy"
    runtime_api: str = Field(
        min_length=1,
        description="the admin-level stats socket: a unix socket path, or host:port for TCP",
    )
    backend: str = Field(min_length=1, description="the backend holding both servers")
    stable_server: str = "stable"
    canary_server: str = "canary"


class NginxRouter(_Model):
    """nginx: a weighted upstream in a file Sluicegate owns, checked with `nginx -t` and
    applied with a graceful reload."""

    type: Literal["nginx"] = "nginx"
    upstream_file: str = Field(
        min_length=1, description="the file Sluicegate writes; nginx.conf includes it"
    )
    upstream: str = Field(min_length=1, description="name of the upstream block in that file")
    main_config: str = Field(min_length=1, description="nginx.conf, for `nginx -t` and reload")
    nginx_binary: str = Field(default="nginx", min_length=1)


class WebhookRouter(_Model):
    """Any platform: Sluicegate POSTs the desired weights as JSON and GETs them back."""

    type: Literal["webhook"] = "webhook"
    url: UrlWithPath
    token_env: EnvName | None = Field(
        default=None, description="worker environment variable holding a bearer token"
    )
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)


RouterSpec = Annotated[
    EnvoyRouter | HAProxyRouter | NginxRouter | WebhookRouter, Field(discriminator="type")
]


class EnvoyStats(_Model):
    """Per-cluster request counts and latency histograms from Envoy's admin /stats."""

    type: Literal["envoy"] = "envoy"
    admin_url: AdminUrl
    stable_cluster: str = "stable"
    canary_cluster: str = "canary"
    measures_latency: ClassVar[bool] = True


class HAProxyStats(_Model):
    """Per-server response counts and times from HAProxy's Prometheus exporter."""

    type: Literal["haproxy"] = "haproxy"
    metrics_url: UrlWithPath = Field(description="e.g. http://127.0.0.1:8404/metrics")
    backend: str = Field(min_length=1)
    stable_server: str = "stable"
    canary_server: str = "canary"
    # HAProxy 2.6 exports per-server averages, not histograms: no percentiles to judge.
    measures_latency: ClassVar[bool] = False


class HttpProbe(_Model):
    """Synthetic requests to the stable and canary endpoints, for services without metrics."""

    type: Literal["http_probe"] = "http_probe"
    stable_url: UrlWithPath
    canary_url: UrlWithPath
    requests_per_check: int = Field(default=20, ge=1, le=1000)
    timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    measures_latency: ClassVar[bool] = True


QUERY_VARIABLES = ("service", "version", "arm", "interval")


def _promql_template(value: str) -> str:
    """A PromQL query with $service, $version, $arm (stable or canary) and $interval."""
    template = string.Template(value)
    if not template.is_valid():
        raise ValueError(f"not a valid template (write $$ for a literal $): {value!r}")
    if unknown := sorted(set(template.get_identifiers()) - set(QUERY_VARIABLES)):
        known = ", ".join(f"${name}" for name in QUERY_VARIABLES)
        raise ValueError(f"unknown variable ${unknown[0]} in {value!r}; known: {known}")
    return value


PromQL = Annotated[str, Field(min_length=1), AfterValidator(_promql_template)]
MetricLabel = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]


class PrometheusSource(_Model):
    """Instant PromQL queries per arm: traffic counters and/or business metrics."""

    type: Literal["prometheus"] = "prometheus"
    url: UrlWithPath = Field(description="Prometheus's base URL, e.g. http://127.0.0.1:9090")
    requests: PromQL | None = Field(
        default=None, description="the arm's cumulative request count (one series)"
    )
    errors: PromQL | None = Field(
        default=None, description="the arm's cumulative failed requests (one series)"
    )
    latency_buckets: PromQL | None = Field(
        default=None, description="the arm's cumulative histogram: one series per `le`"
    )
    latency_unit: Literal["seconds", "milliseconds"] = "seconds"
    business: dict[MetricLabel, PromQL] = Field(
        default_factory=dict, description="name → query giving one number per arm"
    )
    token_env: EnvName | None = Field(default=None, description="bearer token, from the worker")
    username: str | None = None
    password_env: EnvName | None = Field(default=None, description="basic auth password")

    @model_validator(mode="after")
    def _something_to_ask(self) -> PrometheusSource:
        if (self.requests is None) != (self.errors is None):
            raise ValueError("give requests and errors together (or neither)")
        if self.requests is None and not self.business:
            raise ValueError("give requests and errors queries, business queries, or both")
        if self.latency_buckets is not None and self.requests is None:
            raise ValueError("latency_buckets needs requests and errors too")
        if (self.username is None) != (self.password_env is None):
            raise ValueError("username and password_env go together")
        return self

    @property
    def counts_requests(self) -> bool:
        return self.requests is not None

    @property
    def measures_latency(self) -> bool:
        return self.latency_buckets is not None


# One member per metric-source module, as RouterSpec.
MetricSourceSpec = Annotated[
    EnvoyStats | HAProxyStats | HttpProbe | PrometheusSource, Field(discriminator="type")
]

MetricName = Literal[
    "error_rate", "availability", "latency_p50_ms", "latency_p90_ms", "latency_p99_ms"
]


class MetricCheck(_Model):
    """One health rule: a limit on the share of the canary's requests that are bad.

    `error_rate ≤ b`: at most b of the requests fail; `availability ≥ a`: at most 1 − a
    fail; `latency_pNN_ms ≤ L`: at most 1 − NN% are slower than L. A rule breaches once
    the evidence that the canary's share is above that shows beyond reasonable doubt.
    `window: check` weighs the most damning recent run of checks (a failure that starts
    after an hour of health is caught within a check or two); `window: stage` adds up
    everything since the stage began (small, persistent excesses).
    """

    metric: MetricName
    max: float | None = None
    min: float | None = None
    window: Literal["check", "stage"] = "check"

    @model_validator(mode="after")
    def _one_bound(self) -> MetricCheck:
        if (self.max is None) == (self.min is None):
            raise ValueError(f"{self.metric}: give exactly one of max or min")
        bound = self.max if self.max is not None else self.min
        assert bound is not None
        wanted = "min" if self.metric == "availability" else "max"
        if (self.max if wanted == "max" else self.min) is None:
            meaning = {"max": "the most it may reach", "min": "the least it must keep"}[wanted]
            raise ValueError(f"{self.metric}: give {wanted} ({meaning}), not the other bound")
        if self.metric in ("error_rate", "availability") and not 0 <= bound <= 1:
            raise ValueError(f"{self.metric}: bound is a fraction between 0 and 1, got {bound}")
        if bound < 0:
            raise ValueError(f"{self.metric}: bound must not be negative, got {bound}")
        return self


class BusinessCheck(_Model):
    """A business metric of the canary against stable's at the same moment, e.g. accuracy
    at most 5% below stable's. The number comes from a source's `business` queries."""

    metric: MetricLabel
    max_drop: float | None = Field(
        default=None, gt=0, lt=1, description="the canary may be at most this share below stable"
    )
    max_rise: float | None = Field(
        default=None, gt=0, description="the canary may be at most this share above stable"
    )

    @model_validator(mode="after")
    def _one_bound(self) -> BusinessCheck:
        if (self.max_drop is None) == (self.max_rise is None):
            raise ValueError(f"{self.metric}: give exactly one of max_drop or max_rise")
        return self


DEFAULT_METRICS = (
    MetricCheck(metric="error_rate", max=0.01),
    MetricCheck(metric="latency_p99_ms", max=200),
    MetricCheck(metric="availability", min=0.999, window="stage"),
)


class SequentialPolicy(_Model):
    """How the canary is compared with stable: the false-alarm budget and what is tolerated."""

    alpha: float = Field(
        default=0.005,
        gt=0,
        lt=1,
        description="per stage: the chance of ever rolling back a canary no worse",
    )
    error_tolerance: float = Field(
        default=1.0, ge=1, description="canary error rate allowed, as a multiple of stable's"
    )
    latency_tolerance: float = Field(
        default=1.0, ge=1, description="canary share of slow requests allowed, × stable's share"
    )
    slow_quantile: float = Field(
        default=0.9, gt=0, lt=1, description="a request is slow above this quantile of stable"
    )
    error_share_of_alpha: float = Field(
        default=0.8,
        gt=0,
        lt=1,
        description="of alpha, the part spent on errors; slow requests get the rest",
    )


class AnalysisSpec(_Model):
    """How health is judged while traffic is on the canary."""

    source: MetricSourceSpec = Field(description="where requests, errors and latency come from")
    extra_sources: tuple[MetricSourceSpec, ...] = Field(
        default=(), description="more sources, for business metrics"
    )
    business: tuple[BusinessCheck, ...] = Field(
        default=(), description="business metrics of the canary against stable's"
    )
    interval: timedelta = Field(default=timedelta(seconds=10), description="time between checks")
    mode: Literal["thresholds", "sequential", "both"] = Field(
        default="both",
        description="absolute thresholds, the canary-versus-stable comparison, or both",
    )
    metrics: tuple[MetricCheck, ...] = DEFAULT_METRICS
    sequential: SequentialPolicy = SequentialPolicy()
    failed_checks_tolerated: int = Field(
        default=0, ge=0, description="failed checks allowed per stage; one more rolls back"
    )
    inconclusive_checks_tolerated: int = Field(
        default=6,
        ge=0,
        description="consecutive checks without enough data allowed; one more acts "
        "as on_inconclusive says",
    )
    on_inconclusive: Literal["rollback", "pause"] = Field(
        default="rollback",
        description=(
            "past inconclusive_checks_tolerated: roll back, or pause for a person "
            "(traffic stays where it is; resume, promote or abort)"
        ),
    )
    min_requests: int = Field(
        default=20, ge=1, description="canary requests a stage needs before it can be healthy"
    )
    limits_alpha: float = Field(
        default=0.001,
        gt=0,
        lt=0.5,
        description="per rule and stage: the chance of ever breaching a limit the canary "
        "keeps (also the confidence of stable's baseline bound)",
    )
    baseline: timedelta = Field(
        default=timedelta(seconds=60),
        description="how long stable is watched before any traffic moves (0: not at all)",
    )

    @field_validator("interval")
    @classmethod
    def _positive_interval(cls, value: timedelta) -> timedelta:
        if value < timedelta(milliseconds=100):
            raise ValueError(f"must be at least 0.1 s, got {value.total_seconds()} s")
        return value

    @field_validator("baseline")
    @classmethod
    def _baseline_length(cls, value: timedelta) -> timedelta:
        if value < timedelta(0) or value > timedelta(hours=1):
            raise ValueError(f"must be 0 to 1 hour, got {value.total_seconds():g} s")
        return value

    @field_validator("metrics")
    @classmethod
    def _some_metrics(cls, value: tuple[MetricCheck, ...]) -> tuple[MetricCheck, ...]:
        if not value:
            raise ValueError("needs at least one metric check")
        return value

    @model_validator(mode="after")
    def _sources_serve_the_checks(self) -> AnalysisSpec:
        if isinstance(self.source, PrometheusSource) and not self.source.counts_requests:
            raise ValueError(
                "source: needs requests and errors queries (business-only Prometheus "
                "sources go in extra_sources)"
            )
        latency = [m.metric for m in self.metrics if m.metric.startswith("latency_")]
        if latency and not self.source.measures_latency:
            raise ValueError(
                f"metrics: {', '.join(latency)} need latency histograms, which this "
                f"{self.source.type} source does not provide; list metrics without "
                "latency rules (e.g. error_rate and availability) or use a source with "
                "latency (envoy, http_probe, prometheus with latency_buckets)"
            )
        offered = {
            name
            for source in (self.source, *self.extra_sources)
            if isinstance(source, PrometheusSource)
            for name in source.business
        }
        for check in self.business:
            if check.metric not in offered:
                known = ", ".join(sorted(offered)) or "none"
                raise ValueError(
                    f"business metric {check.metric!r} comes from no source; add a query for "
                    f"it to a prometheus source's business (offered: {known})"
                )
        return self


class Stage(_Model):
    """One step of the rollout: a canary weight held for a bake time and/or a manual gate."""

    name: str = Field(min_length=1)
    weight: Percent
    bake: timedelta = Field(default=timedelta(0), description="how long to hold and watch")
    manual_gate: bool = Field(default=False, description="after baking, wait for promote")

    @field_validator("bake")
    @classmethod
    def _not_negative(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            raise ValueError(f"must not be negative, got {value.total_seconds():g} s")
        return value

    @model_validator(mode="after")
    def _holds_somehow(self) -> Stage:
        problems = []
        if self.weight == 0:
            problems.append("weight must be 1-100 (0 sends no traffic)")
        if self.bake == timedelta(0) and not self.manual_gate:
            problems.append("give a bake time, a manual_gate, or both")
        if problems:
            raise ValueError(f"stage {self.name!r}: " + "; ".join(problems))
        return self


DEFAULT_STAGES = (
    Stage(name="canary", weight=5, bake=timedelta(minutes=30)),
    Stage(name="pilot", weight=25, bake=timedelta(minutes=60)),
    Stage(name="gradual", weight=50, bake=timedelta(minutes=120)),
)


class BackupSpec(_Model):
    directory: str = Field(default=".state/backups", description="where router backups go")


class DeploymentSpec(_Model):
    """Everything one canary deployment of one service needs."""

    service: str = Field(description="lowercase name; the workflow id is deploy-<service>")
    stable: Version
    canary: Version
    router: RouterSpec
    analysis: AnalysisSpec
    stages: tuple[Stage, ...] = DEFAULT_STAGES
    backup: BackupSpec = BackupSpec()

    @field_validator("service")
    @classmethod
    def _service_name(cls, value: str) -> str:
        if problem := service_name_problem(value):
            raise ValueError(problem)
        return value

    @field_validator("stages")
    @classmethod
    def _increasing(cls, stages: tuple[Stage, ...]) -> tuple[Stage, ...]:
        if not stages:
            raise ValueError("needs at least one stage")
        problems = [
            f"weights must increase: stage {after.name!r} has {after.weight}% "
            f"after {before.name!r} at {before.weight}%"
            for before, after in itertools.pairwise(stages)
            if after.weight <= before.weight
        ]
        names = [stage.name for stage in stages]
        if len(set(names)) != len(names):
            problems.append(f"stage names must be unique, got {names}")
        if problems:
            raise ValueError("; ".join(problems))
        return stages

    @field_validator("canary")
    @classmethod
    def _canary_elsewhere(cls, canary: Version, info: ValidationInfo) -> Version:
        stable = info.data.get("stable")
        if stable is not None and canary.address == stable.address:
            raise ValueError(
                f"canary.address equals stable.address ({stable.address}): "
                "the canary must run somewhere else"
            )
        return canary

    @property
    def workflow_id(self) -> str:
        return workflow_id_for(self.service)


def service_name_problem(name: str) -> str | None:
    """Why `name` cannot be a service name, or None if it can."""
    if _SERVICE.match(name):
        return None
    return (
        "must be 1-63 characters of a-z, 0-9, '-', '_' or '.', "
        f"starting and ending with a letter or digit, got {name!r}"
    )


def workflow_id_for(service: str) -> str:
    return f"deploy-{service}"


def parse_spec(data: Any) -> DeploymentSpec:
    """Validate a decoded spec; every problem is reported at once in a `SpecError`."""
    try:
        return DeploymentSpec.model_validate(data)
    except ValidationError as err:
        raise SpecError([_describe(e) for e in err.errors()]) from None


def load_spec(path: str | Path) -> DeploymentSpec:
    """Read a YAML or JSON spec file."""
    import yaml  # a file-reading helper, never used from workflow code

    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as err:
        raise SpecError([f"{path}: cannot read ({err.strerror})"]) from None
    except UnicodeDecodeError as err:
        raise SpecError([f"{path}: not UTF-8 ({err.reason} at byte {err.start})"]) from None
    try:
        data = json.loads(text) if file.suffix == ".json" else yaml.safe_load(text)
        if not isinstance(data, dict):
            raise SpecError([f"{path}: expected a mapping at the top level"])
        return parse_spec(data)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        kind = file.suffix.lstrip(".") or "YAML"
        raise SpecError([f"{path}: not valid {kind}: {_syntax_error(err)}"]) from None
    except RecursionError:
        raise SpecError([f"{path}: nested too deeply to be a spec"]) from None


def _syntax_error(err: Exception) -> str:
    """One line: what is wrong and where (YAML's own message quotes the file over lines)."""
    import yaml

    mark = getattr(err, "problem_mark", None)
    if isinstance(err, yaml.MarkedYAMLError) and mark is not None:
        return f"{err.problem} (line {mark.line + 1}, column {mark.column + 1})"
    return " ".join(str(err).split())


# Fields holding a union chosen by `type`: pydantic puts the chosen type in the location.
_BY_TYPE = ("router", "source")


def _type_names(union: Any) -> tuple[str, ...]:
    members = get_args(get_args(union)[0])
    return tuple(member.model_fields["type"].default for member in members)


_TYPES = {"router": _type_names(RouterSpec), "source": _type_names(MetricSourceSpec)}
_TYPES["extra_sources"] = _TYPES["source"]


def _is_type_tag(loc: tuple[Any, ...], index: int) -> bool:
    if index == 0 or index == len(loc) - 1:
        return False
    before = loc[index - 1]
    in_list = isinstance(before, int) and index > 1 and loc[index - 2] == "extra_sources"
    return before in _BY_TYPE or in_list


def _describe(error: Any) -> str:
    loc = error["loc"]
    location = [part for index, part in enumerate(loc) if not _is_type_tag(loc, index)]
    where = ".".join(str(part) for part in location) or "spec"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        got = error.get("ctx", {}).get("tag")
        message = f"unknown type {got!r}" if got else "required"
        field = next(str(part) for part in reversed(location) if not isinstance(part, int))
        return f"{where}.type: {message}; valid: {', '.join(_TYPES[field])}"
    if error["type"] == "extra_forbidden":
        message = "unknown field (check the spelling)"
    elif error["type"] == "literal_error":
        message = f"{message}; got {error.get('input')!r}"
    return f"{where}: {message}"
