"""What the hooks of the history bench run against: local HTTP servers (the `http` hooks'
receiver and the canary endpoints the `smoke` check GETs) and one tiny command declared
in the worker's settings, so the REAL `activities.hooks.HookRunner(settings).run_hook`
runs every hook kind.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sluicegate.settings import CommandSetting, Settings

COMMAND = "bench-hook"
HOOK_ARGV = ("/bin/sh", "-c", "cat > /dev/null")  # reads the context on stdin, exits 0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:
        """No per-request log lines."""

    def do_GET(self) -> None:  # the smoke check's requests to a canary endpoint
        self._reply(200, b'{"status": "ok"}')

    def do_POST(self) -> None:  # an http hook's context
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._reply(204, b"")

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class HookTargets:
    """`count` HTTP servers on 127.0.0.1, each a canary endpoint and a hook receiver; stop
    them with `close()`."""

    def __init__(self, count: int = 1) -> None:
        self.servers: list[ThreadingHTTPServer] = []
        try:
            for _ in range(count):
                server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
                server.daemon_threads = True
                self.servers.append(server)
                threading.Thread(
                    target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
                ).start()
        except BaseException:
            self.close()
            raise

    @property
    def addresses(self) -> list[str]:
        return [f"127.0.0.1:{server.server_address[1]}" for server in self.servers]

    def url(self, path: str) -> str:
        return f"http://{self.addresses[0]}{path}"

    def settings(self) -> Settings:
        """Worker settings declaring the command the hooks run."""
        return Settings(commands={COMMAND: CommandSetting(argv=HOOK_ARGV)})

    def spec_fields(self) -> dict[str, Any]:
        """A spec's `hooks` and `smoke`: every hook kind at every turning point."""
        return {
            "hooks": {
                "pre_rollout": [{"type": "command", "name": "tell-ci", "command": COMMAND}],
                "pre_stage": [
                    {"type": "http", "name": "stage-gate", "url": self.url("/hooks/pre-stage")}
                ],
                "post_promotion": [
                    {"type": "command", "name": "retire-old-fleet", "command": COMMAND},
                    {"type": "http", "name": "tell-cd", "url": self.url("/hooks/promoted")},
                ],
                "on_rollback": [
                    {"type": "http", "name": "page-release", "url": self.url("/hooks/rollback")}
                ],
            },
            "smoke": [
                {"type": "smoke", "name": "canary-smoke", "requests": 3, "body_contains": "ok"}
            ],
        }

    def close(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()
