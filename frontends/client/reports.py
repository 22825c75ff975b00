"""What `sluice report` and `sluice chatops` read of the evidence store: one deployment's
evidence and its page, and the DORA figures (docs/REPORTS.md).

The store's calls block: the chat-ops server runs these in a thread.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from activities.evidence.store import EvidenceStore
from frontends.client.report import report_page
from sluicegate.errors import DeploymentNotFound, SluicegateError
from sluicegate.evidence import DeploymentEvidence, DoraFigures, dora
from sluicegate.settings import Settings, SettingsError
from sluicegate.spec import workflow_id_for

_SINCE = re.compile(r"^(\d+)([hdw])$")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


def parse_since(text: str) -> timedelta:
    """`30d`, `12h`, `2w`: how far back the DORA figures look."""
    match = _SINCE.match(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise SluicegateError(
            f"--since {text!r}: give a number and a unit, h (hours), d (days) or w (weeks), "
            "e.g. 30d"
        )
    return int(match.group(1)) * _UNITS[match.group(2)]


def open_store(settings: Settings) -> EvidenceStore:
    """The evidence store the settings name; an error if they turn it off."""
    url = settings.evidence_store
    if url is None:
        raise SettingsError(
            "evidence_url is off (SLUICEGATE_EVIDENCE_URL): no evidence is kept; set it to "
            "the workers' store, e.g. .state/evidence.db or postgresql://user@host/db"
        )
    return EvidenceStore(url, create=False)


def deployment_evidence(
    settings: Settings, service: str, run: str | None = None
) -> DeploymentEvidence:
    """What the store kept of `service`'s deployment `run` (a run id or its start), or of
    its latest one."""
    with open_store(settings) as store:
        try:
            deployment_id = store.find(service, run) if run else store.latest(service)
        except LookupError as err:
            raise SluicegateError(str(err)) from None
        evidence = store.evidence(deployment_id) if deployment_id else None
    if evidence is None:
        which = f"run {run!r} of {service}" if run else f"any deployment of {service}"
        raise DeploymentNotFound(
            f"the evidence store ({store.url.describe()}) has nothing of {which}"
        )
    return evidence


def page(settings: Settings, evidence: DeploymentEvidence) -> str:
    """The report page, linking to the deployment's workflow in the Web UI."""
    summary = evidence.summary
    link = settings.workflow_link(workflow_id_for(summary.service), summary.deployment_id)
    return report_page(evidence, link)


def dora_figures(
    settings: Settings, since: timedelta, service: str | None = None
) -> list[DoraFigures]:
    """The DORA figures of every service (or of `service`) over `since`, then all together."""
    now = datetime.now(UTC)
    start = now - since
    with open_store(settings) as store:
        summaries = store.summaries(start, service)
    services = sorted({s.service for s in summaries})
    figures = [
        dora((s for s in summaries if s.service == name), start, now, name) for name in services
    ]
    if service is None and len(figures) != 1:
        figures.append(dora(summaries, start, now))
    return figures
