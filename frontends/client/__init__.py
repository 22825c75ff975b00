"""What every front end uses to start, steer and read deployments through Temporal."""

__all__: list[str] = []
