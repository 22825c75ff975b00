"""Small threaded HTTP servers on 127.0.0.1 for tests, stopped with `close()`."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


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


class WebhookReceiver:
    """Records the JSON posted to /<channel>, answering like a Slack incoming webhook;
    `/hang` holds each request until `stop()`."""

    def __init__(self) -> None:
        self.posts: dict[str, list[dict[str, Any]]] = {}
        self.held = 0
        self.release = threading.Event()
        receiver = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.0"  # one request per connection, as webhooks

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                channel = self.path.strip("/")
                if channel == "hang":
                    receiver.held += 1
                    receiver.release.wait()
                receiver.posts.setdefault(channel, []).append(body)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")  # what Slack's incoming webhooks answer

        self.server = LocalServer(Handler)
        self.url = f"http://{self.server.address}"

    def events(self, channel: str) -> list[str]:
        return [post.get("event") or post["text"] for post in self.posts.get(channel, [])]

    def stop(self) -> None:
        self.release.set()
        self.server.close()
