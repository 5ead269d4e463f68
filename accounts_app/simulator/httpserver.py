"""The simulator over HTTP: a threaded stdlib server that hands API calls and control
calls to a Simulator and sends its replies (dripping, delaying or resetting as a fault
asks)."""

from __future__ import annotations

import logging
import os
import socket
import socketserver
import struct
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from .control import CONTROL_PREFIX
from .gateway import IncomingRequest, Reply, json_reply
from .server import Simulator

# Configured for the whole package by cli.py.
log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real endpoint
    server_version = "kvstore-simulator"
    sys_version = ""
    timeout = 60  # idle keep-alive connections end after a minute
    server: _HTTPServer

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def _handle(self) -> None:
        simulator = self.server.simulator
        target = urlsplit(self.path)
        body = self._read_body()
        if body is None:
            return
        if target.path.startswith(CONTROL_PREFIX):
            reply = simulator.handle_control(self.command, target.path, target.query, body)
        else:
            request = IncomingRequest(self.command, target.path, target.query, self.headers, body)
            reply = simulator.handle_api(request)
        self._send(reply)

    def _read_body(self) -> bytes | None:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            self._send(json_reply(411, {"error": "Send a Content-Length."}))
            self.close_connection = True
            return None
        try:
            length = int(self.headers.get("content-length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self._send(json_reply(413, {"error": "Body too large or bad Content-Length."}))
            self.close_connection = True
            return None
        return self.rfile.read(length) if length else b""

    def _send(self, reply: Reply) -> None:
        stop = self.server.simulator.stop_event
        if reply.reset:
            self._reset_connection()
            return
        if reply.delay_before_send and stop.wait(reply.delay_before_send):
            self._reset_connection()
            return
        head, body = self._encode(reply)
        try:
            if reply.drip_interval is None:
                self.wfile.write(head + body)
                self.wfile.flush()
            elif reply.drip_headers:
                self._drip(head + body, reply.drip_interval)
            else:
                self.wfile.write(head)
                self.wfile.flush()
                self._drip(body, reply.drip_interval)
        except OSError:
            self.close_connection = True

    def _encode(self, reply: Reply) -> tuple[bytes, bytes]:
        phrase = HTTPStatus(reply.status).phrase
        headers = {
            "Date": self.date_time_string(),
            "Server": self.server_version,
            "Content-Type": reply.content_type,
            "Content-Length": str(len(reply.body)),
            "Connection": "close" if self.close_connection else "keep-alive",
            **reply.headers,
        }
        lines = [f"{self.protocol_version} {reply.status} {phrase}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"), reply.body

    def _drip(self, data: bytes, interval: float) -> None:
        stop = self.server.simulator.stop_event
        for index in range(len(data)):
            self.wfile.write(data[index : index + 1])
            self.wfile.flush()
            if stop.wait(interval):
                self.close_connection = True
                return

    def _reset_connection(self) -> None:
        # SO_LINGER with a zero timeout makes close() send RST instead of FIN. The
        # descriptor is detached first so the handler's own cleanup finds nothing to close.
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            os.close(self.connection.detach())
        except OSError:
            pass

    # The default handler logs the request line, which can hold parameters (the official
    # SDKs put them in the query string, AccountPassword included). The simulator logs
    # its own line per call instead, without any parameter value.
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass

    def log_error(self, format: str, *args: Any) -> None:
        # A client's idle keep-alive connection closed after the handler's timeout is
        # routine (the demo printed six of these a minute after each sweep), not an error.
        if format.startswith("Request timed out"):
            log.debug("idle connection from %s closed", self.client_address[0])
            return
        log.warning("HTTP error from %s", self.client_address[0])

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    # socketserver's default backlog of 5 drops connections that arrive together (a
    # concurrency test, two app servers), and each dropped SYN costs a 1 s retransmit.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], simulator: Simulator) -> None:
        self.simulator = simulator
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN, which can hang without DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class SimulatorServer:
    """The simulator on a socket: ``start()`` in a thread, or ``serve_forever()``."""

    def __init__(self, simulator: Simulator, host: str = "127.0.0.1", port: int = 0) -> None:
        self.simulator = simulator
        self.httpd = _HTTPServer((host, port), simulator)
        self.host, self.port = self.httpd.server_address[:2]
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> SimulatorServer:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever,
            # stop() waits for the loop to notice: a short poll keeps test teardown quick.
            kwargs={"poll_interval": 0.01},
            name=f"kvstore-simulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.2)

    def stop(self) -> None:
        self.simulator.stop_event.set()
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=5)
        self.httpd.close_connections()
        self.httpd.server_close()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
