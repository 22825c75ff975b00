"""The deployment spec: what to deploy, through which router, in which stages, judged how.

Pure pydantic models, safe to import from workflow code. `load_spec` reads YAML or JSON
and turns every validation problem into one `SpecError` that names each bad field.
Sections: `routers`, `sources` (metric sources), `analysis`, `hooks` (lifecycle hooks),
`deployment` (versions, stages, backups, the whole spec) and `loading`; `fields` holds
what they share.
"""

from sluicegate.spec.analysis import (
    DEFAULT_METRICS,
    AnalysisSpec,
    BusinessCheck,
    MetricCheck,
    MetricName,
    SequentialPolicy,
)
from sluicegate.spec.deployment import (
    DEFAULT_STAGES,
    BackupSpec,
    Deadline,
    DeploymentSpec,
    Percent,
    PostPromotionSpec,
    Stage,
    Version,
    service_name_problem,
    workflow_id_for,
)
from sluicegate.spec.fields import AdminUrl, EnvName, UrlWithPath
from sluicegate.spec.hooks import (
    ArgumentName,
    CommandHook,
    CommandName,
    HookEvent,
    HookName,
    HookSpec,
    HooksSpec,
    HttpHook,
    SmokeHook,
)
from sluicegate.spec.loading import load_spec, parse_spec
from sluicegate.spec.routers import (
    EnvoyRouter,
    HAProxyRouter,
    NginxRouter,
    RouterSpec,
    WebhookRouter,
)
from sluicegate.spec.sources import (
    QUERY_VARIABLES,
    EnvoyStats,
    HAProxyStats,
    HttpProbe,
    MetricLabel,
    MetricSourceSpec,
    PrometheusSource,
    PromQL,
)

__all__ = [
    "DEFAULT_METRICS",
    "DEFAULT_STAGES",
    "QUERY_VARIABLES",
    "AdminUrl",
    "AnalysisSpec",
    "ArgumentName",
    "BackupSpec",
    "BusinessCheck",
    "CommandHook",
    "CommandName",
    "Deadline",
    "DeploymentSpec",
    "EnvName",
    "EnvoyRouter",
    "EnvoyStats",
    "HAProxyRouter",
    "HAProxyStats",
    "HookEvent",
    "HookName",
    "HookSpec",
    "HooksSpec",
    "HttpHook",
    "HttpProbe",
    "MetricCheck",
    "MetricLabel",
    "MetricName",
    "MetricSourceSpec",
    "NginxRouter",
    "Percent",
    "PostPromotionSpec",
    "PromQL",
    "PrometheusSource",
    "RouterSpec",
    "SequentialPolicy",
    "SmokeHook",
    "Stage",
    "UrlWithPath",
    "Version",
    "WebhookRouter",
    "load_spec",
    "parse_spec",
    "service_name_problem",
    "workflow_id_for",
]
