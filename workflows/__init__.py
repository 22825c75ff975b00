"""The Temporal workflows (deployment, restore, checks), deterministic and free of I/O."""

__all__: list[str] = []
