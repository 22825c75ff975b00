"""The Temporal activities: each I/O a workflow asks for (routing, metrics, backups, notices)."""

__all__: list[str] = []
