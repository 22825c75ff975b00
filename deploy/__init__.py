"""The local stack (Temporal dev server, data planes, sample services, load) and the demo."""

__all__: list[str] = []
