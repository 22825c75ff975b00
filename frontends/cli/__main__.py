"""`python -m frontends.cli` is `sluice`."""

from frontends.cli.app import entry

entry()
