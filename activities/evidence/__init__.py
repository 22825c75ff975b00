"""The evidence store: every check and event of every deployment, in SQLite or PostgreSQL
(docs/REPORTS.md). Activities hand records to the recorder, which never blocks them."""

from activities.evidence.recorder import Recorder, record, use_recorder
from activities.evidence.store import EvidenceStore, StoreUnavailable

__all__ = ["EvidenceStore", "Recorder", "StoreUnavailable", "record", "use_recorder"]
