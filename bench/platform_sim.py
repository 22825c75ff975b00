"""The scale bench's one simulated part: a platform that routes many services and reports
their traffic, as a real one (and its exporter) would.

    python -m bench.platform_sim --port 8080 [--rps 50] [--seed 1]

- `GET`/`POST /routing/<service>`: Sluicegate's webhook router contract
  (docs/routers/webhook.md), a RouterState per service, held in memory.
- `GET /metrics`: Prometheus text for every service and version: requests by status class
  (`sim_requests_total{service,version,code}`) and a latency histogram
  (`sim_request_duration_seconds_bucket{service,version,le}`). Each service serves `rps`
  requests/s, split by its routing: traffic follows the weights, so the canary's counters
  grow with its share, and a rollback stops them.
- `POST /fault/<service>?error_rate=0.3&slow=1`: that service's canary starts failing.
- `GET /log`: per service, when each routing `GET` and `POST` arrived (Unix seconds), with
  the weight posted, and when each fault began: what the bench measures from.

Counts are random (Poisson arrivals, binomial errors, multinomial latencies), so a check
sees the noise a real service has; a healthy version fails 0.1% of requests.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field

import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from sluicegate.contracts import RouterState

LE = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "+Inf")
# Share of a healthy version's requests in each latency bucket (not cumulative).
HEALTHY_LATENCY = np.array([0.30, 0.30, 0.25, 0.10, 0.04, 0.009, 0.0009, 0.0001, 0.0])
SLOW_LATENCY = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.05, 0.90, 0.05, 0.0])  # +250 ms or so
HEALTHY_ERROR_RATE = 0.001
ARMS = ("stable", "canary")


@dataclass
class Service:
    """One service: its routing, versions, faults and cumulative counters per arm."""

    routing: RouterState
    versions: tuple[str, str]  # (stable, canary)
    error_rate: list[float] = field(default_factory=lambda: [HEALTHY_ERROR_RATE] * 2)
    slow: list[bool] = field(default_factory=lambda: [False, False])
    ok: np.ndarray = field(default_factory=lambda: np.zeros(2))
    failed: np.ndarray = field(default_factory=lambda: np.zeros(2))
    buckets: np.ndarray = field(default_factory=lambda: np.zeros((2, len(LE))))
    reads: list[float] = field(default_factory=list[float])
    writes: list[tuple[float, int]] = field(default_factory=list[tuple[float, int]])
    faults: list[float] = field(default_factory=list[float])


class Platform:
    def __init__(self, rps: float, seed: int) -> None:
        self.rps = rps
        self.rng = np.random.default_rng(seed)
        self.services: dict[str, Service] = {}
        self.advanced = time.time()

    def advance(self) -> None:
        """Serve the requests of every service since the last call, split by its routing."""
        now = time.time()
        seconds, self.advanced = now - self.advanced, now
        for service in self.services.values():
            canary = service.routing.canary_weight / 100
            expected = self.rps * seconds * np.array([1 - canary, canary])
            served = self.rng.poisson(expected)
            for arm in (0, 1):
                if not served[arm]:
                    continue
                errors = self.rng.binomial(served[arm], service.error_rate[arm])
                service.failed[arm] += errors
                service.ok[arm] += served[arm] - errors
                latency = SLOW_LATENCY if service.slow[arm] else HEALTHY_LATENCY
                hits = self.rng.multinomial(served[arm], latency)
                service.buckets[arm] += np.cumsum(hits)

    def metrics(self) -> str:
        self.advance()
        lines = [
            "# TYPE sim_requests_total counter",
            "# TYPE sim_request_duration_seconds histogram",
        ]
        for name, service in self.services.items():
            for arm in (0, 1):
                labels = f'service="{name}",version="{service.versions[arm]}"'
                lines.append(f'sim_requests_total{{{labels},code="2xx"}} {service.ok[arm]:.0f}')
                lines.append(f'sim_requests_total{{{labels},code="5xx"}} {service.failed[arm]:.0f}')
                lines.extend(
                    f'sim_request_duration_seconds_bucket{{{labels},le="{le}"}} {count:.0f}'
                    for le, count in zip(LE, service.buckets[arm], strict=True)
                )
        return "\n".join(lines) + "\n"


def app(platform: Platform) -> Starlette:
    async def routing(request: Request) -> Response:
        name = request.path_params["service"]
        service = platform.services.get(name)
        if request.method == "GET":
            if service is None:
                return PlainTextResponse(f"no service {name}", status_code=404)
            service.reads.append(time.time())
            return JSONResponse(service.routing.model_dump(mode="json"))
        state = RouterState.model_validate_json(await request.body())
        platform.advance()  # the traffic so far went by the old routing
        versions = (request.query_params.get("stable"), request.query_params.get("canary"))
        if service is None:
            if None in versions:
                return PlainTextResponse("seed a service with ?stable=V&canary=V", 400)
            platform.services[name] = Service(state, (str(versions[0]), str(versions[1])))
        else:
            service.routing = state
            service.writes.append((time.time(), state.canary_weight))
        return Response(status_code=204)

    async def fault(request: Request) -> Response:
        service = platform.services[request.path_params["service"]]
        platform.advance()
        service.error_rate[1] = float(request.query_params.get("error_rate", "0"))
        service.slow[1] = request.query_params.get("slow") == "1"
        service.faults.append(time.time())
        return Response(status_code=204)

    async def metrics(_: Request) -> Response:
        return PlainTextResponse(platform.metrics())

    async def log(_: Request) -> Response:
        return JSONResponse(
            {
                name: {"reads": s.reads, "writes": s.writes, "faults": s.faults}
                for name, s in platform.services.items()
            }
        )

    return Starlette(
        routes=[
            Route("/routing/{service}", routing, methods=["GET", "POST"]),
            Route("/fault/{service}", fault, methods=["POST"]),
            Route("/metrics", metrics),
            Route("/log", log),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rps", type=float, default=50.0, help="requests/s per service")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    platform = Platform(args.rps, args.seed)
    uvicorn.run(app(platform), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
