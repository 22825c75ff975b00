"""Small threaded HTTP servers on 127.0.0.1 for tests, stopped with `close()`."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class QuietHandler(BaseHTTPRequestHandler):
    """A keep-alive HTTP/1.1 handler that sends without Nagle delays and logs nothing."""

    protocol_version = "HTTP/1.1"  # keep-alive, as real services
    disable_nagle_algorithm = True  # no 40 ms delayed-ACK stalls

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output clean."""


class LocalServer:
    """`handler` served on a free port of 127.0.0.1 from a daemon thread until `close()`."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], poll_interval: float = 0.5) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": poll_interval}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        """Stop serving and release the port."""
        self.server.shutdown()
        self.server.server_close()
