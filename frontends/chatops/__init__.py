"""Chat-ops: `/deploy` slash commands and buttons from Slack, and a bearer-token HTTP API,
both steering deployments through `frontends.client.operations` (see docs/CHATOPS.md)."""

__all__: list[str] = []
