"""Sluicegate's ground floor: the spec, the contracts between floors, the analysis, settings
and errors, imported by every other package and importing none of them."""

__all__: list[str] = []
