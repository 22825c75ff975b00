"""The worker process that runs the workflows and activities, and how it connects and logs."""

__all__: list[str] = []
