"""`python -m sluicegate.cli` is `sluice`."""

from sluicegate.cli.app import entry

entry()
