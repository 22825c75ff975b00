"""A tiny HTTP service to deploy in the demo and end-to-end tests, with injectable faults.

    python -m deploy.sample_service --port 8081 --version v2 [--error-rate 0.05] [--delay-ms 250]

`GET /` answers 200 `{"version": ...}`, or 500 with probability `error_rate`, after
`delay_ms` of added latency. `POST /fault?error_rate=0.5&delay_ms=100` changes the faults
of the running service (`GET /fault` shows them); `GET /healthz` is always 200 and fast.
Standard library only, so it starts fast.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import threading
import time
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qs, urlsplit

from deploy.arguments import number_in

if TYPE_CHECKING:
    from deploy.processes import Process

JITTER = 0.1  # each delayed response waits delay_ms * uniform(1, 1 + JITTER)


@dataclass
class Faults:
    error_rate: float = 0.0
    delay_ms: float = 0.0


parse_error_rate = number_in(float, 0, 1)  # a probability; also the /fault parameter
parse_delay_ms = number_in(float, 0, 600_000)  # milliseconds; also the /fault parameter
parse_port = number_in(int, 1, 65535)


class SampleServer(ThreadingHTTPServer):
    """Serves one version; `faults` is shared by all request threads, guarded by `lock`."""

    daemon_threads = True

    def __init__(self, port: int, version: str, faults: Faults) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.version = version
        self.faults = faults
        self.lock = threading.Lock()

    def current_faults(self) -> Faults:
        with self.lock:
            return Faults(self.faults.error_rate, self.faults.delay_ms)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so Envoy and the load generator reuse connections
    disable_nagle_algorithm = True  # else headers and body, written apart, wait ~40 ms for an ACK

    @property
    def sample_server(self) -> SampleServer:
        """The server that made this handler: socketserver types it as any BaseServer."""
        return cast(SampleServer, self.server)

    def log_message(self, format: str, *args: Any) -> None:
        """No per-request log lines."""

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/healthz":
            self.reply(200, {"status": "ok", "version": self.sample_server.version})
        elif path == "/fault":
            self.reply(200, asdict(self.sample_server.current_faults()))
        elif path == "/":
            self.serve_root()
        else:
            self.reply(404, {"error": f"no such path: {path}"})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))  # drain any body
        url = urlsplit(self.path)
        if url.path != "/fault":
            self.reply(404, {"error": f"no such path: {url.path}"})
            return
        params = parse_qs(url.query)
        try:
            error_rate = [parse_error_rate(v) for v in params.get("error_rate", [])]
            delay_ms = [parse_delay_ms(v) for v in params.get("delay_ms", [])]
        except argparse.ArgumentTypeError as err:
            self.reply(400, {"error": str(err)})
            return
        with self.sample_server.lock:
            if error_rate:
                self.sample_server.faults.error_rate = error_rate[-1]
            if delay_ms:
                self.sample_server.faults.delay_ms = delay_ms[-1]
        faults = self.sample_server.current_faults()
        print(f"faults now error_rate={faults.error_rate} delay_ms={faults.delay_ms}", flush=True)
        self.reply(200, asdict(faults))

    def serve_root(self) -> None:
        faults = self.sample_server.current_faults()
        if faults.delay_ms > 0:
            time.sleep(faults.delay_ms / 1000 * random.uniform(1.0, 1.0 + JITTER))
        if random.random() < faults.error_rate:
            self.reply(500, {"version": self.sample_server.version, "error": "injected fault"})
        else:
            self.reply(200, {"version": self.sample_server.version})

    def reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.sample_service",
        description="Sample HTTP service on 127.0.0.1 that reports its version, with "
        "faults (errors, latency) that can be changed at runtime via POST /fault.",
    )
    parser.add_argument(
        "--port", type=parse_port, required=True, help="TCP port to listen on (127.0.0.1)."
    )
    parser.add_argument(
        "--version",
        required=True,
        help='Version string to report, e.g. v2: GET / answers {"version": "v2"}.',
    )
    parser.add_argument(
        "--error-rate",
        type=parse_error_rate,
        default=0.0,
        help="Probability (0..1) that GET / answers 500 instead of 200. Default 0.",
    )
    parser.add_argument(
        "--delay-ms",
        type=parse_delay_ms,
        default=0.0,
        help="Latency added to every GET / response, in milliseconds (>= 0, "
        f"plus up to {JITTER * 100:.0f}%% jitter). Default 0.",
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    server = SampleServer(args.port, args.version, Faults(args.error_rate, args.delay_ms))

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_sigterm)
    print(
        f"sample service {args.version} listening on http://127.0.0.1:{args.port}/ "
        f"(error_rate={args.error_rate}, delay_ms={args.delay_ms}, pid={os.getpid()})",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


# Helpers for the demo and tests. They import httpx lazily: the service itself stays stdlib-only.


def start_sample_service(
    version: str, port: int, log_dir: Path, error_rate: float = 0.0, delay_ms: float = 0
) -> Process:
    """Start the service as a child process (log in `log_dir`); return once /healthz answers."""
    from deploy.processes import http_ok, start_module, wait_until

    args = [
        "--port",
        str(port),
        "--version",
        version,
        "--error-rate",
        str(error_rate),
        "--delay-ms",
        str(delay_ms),
    ]
    process = start_module(f"sample-{version}", "deploy.sample_service", args, log_dir)
    try:
        wait_until(http_ok(f"http://127.0.0.1:{port}/healthz"), process, timeout=15)
    except BaseException:
        process.stop()
        raise
    return process


def set_fault(port: int, error_rate: float, delay_ms: float) -> dict[str, float]:
    """Change the faults of the service on `port`; returns the faults now in force."""
    import httpx

    response = httpx.post(
        f"http://127.0.0.1:{port}/fault",
        params={"error_rate": error_rate, "delay_ms": delay_ms},
        timeout=5,
    )
    response.raise_for_status()
    return response.json()


if __name__ == "__main__":
    main()
