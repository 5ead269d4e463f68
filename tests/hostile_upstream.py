"""A misbehaving Alibaba endpoint: a proxy in front of the simulator that rewrites its
answers, so the real client meets hostile answers to calls the simulator really served
(an account really created, then an answer no schema allows)."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

# (action, the simulator's answer as JSON) -> the answer to send instead.
Rewrite = Callable[[str, dict], dict]


def _action(headers, body: bytes, path: str) -> str:
    if headers.get("x-acs-action"):
        return headers["x-acs-action"]
    query = parse_qs(path.partition("?")[2]) | parse_qs(body.decode("utf-8", "replace"))
    return (query.get("Action") or [""])[0]


@contextmanager
def hostile_endpoint(target: str, rewrite: Rewrite) -> Iterator[str]:
    """An endpoint URL whose answers are the simulator's at `target`, rewritten."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._forward()

        def do_POST(self) -> None:
            self._forward()

        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            upstream = urllib.request.Request(
                target + self.path, data=body or None, method=self.command
            )
            for name, value in self.headers.items():
                if name.lower() not in ("content-length", "connection"):
                    upstream.add_header(name, value)
            try:
                with urllib.request.urlopen(upstream, timeout=5) as answer:
                    status, data = answer.status, answer.read()
            except urllib.error.HTTPError as answer:
                status, data = answer.code, answer.read()
            rewritten = rewrite(_action(self.headers, body, self.path), json.loads(data))
            payload = json.dumps(rewritten).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json;charset=utf-8")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
