"""The front ends people steer deployments with: the client library, chat-ops and the CLI."""

__all__: list[str] = []
