"""The `sluice` command line."""

__all__: list[str] = []
