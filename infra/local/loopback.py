"""The HTTP plumbing the embedded stack's servers share: the token API front and the broker simulators.

`LoopbackServer` is a ThreadingHTTPServer that binds without a DNS lookup and knows its open
connections, so that stopping it can cut them: a keep-alive client would otherwise hold a handler
thread until its idle timeout. `LoopbackHandler` speaks HTTP/1.1 with keep-alive, logs nothing, keeps
the server's list of connections, and hands every request of the methods it serves to `_dispatch`.

Example:
    >>> class NoContent(LoopbackHandler):
    ...     def _dispatch(self) -> None:
    ...         self.send_response(204)
    ...         self.end_headers()
    >>> server = LoopbackServer(("127.0.0.1", 0), NoContent)
    >>> server.server_name
    '127.0.0.1'
    >>> server.server_close()
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# How long a keep-alive connection may sit idle before its handler thread gives up on it.
IDLE_CONNECTION_SECONDS = 30.0


class LoopbackServer(ThreadingHTTPServer):
    """A threading HTTP server that binds without a DNS lookup and can cut its open connections.

    Example:
        >>> server = LoopbackServer(("127.0.0.1", 0), LoopbackHandler)
        >>> server.cut_connections()  # none open: nothing to do
        >>> server.server_close()
    """

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def server_bind(self) -> None:
        """Bind and name the server by its address: HTTPServer looks up the FQDN, which stalls without DNS."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def track(self, connection: socket.socket) -> None:
        """Remember an open connection (its handler has started)."""
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        """Forget a connection (its handler has finished)."""
        with self._connections_lock:
            self._connections.discard(connection)

    def cut_connections(self) -> None:
        """Shut down every open connection, so that no handler thread outlives a stop."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the peer
                connection.shutdown(socket.SHUT_RDWR)


class LoopbackHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive and no log lines; GET, POST, PUT, PATCH and DELETE go to `_dispatch`.

    A subclass implements `_dispatch` and adds a `do_*` method for any other method it serves.

    Example:
        >>> class Teapot(LoopbackHandler):
        ...     def _dispatch(self) -> None:
        ...         self.send_response(418)
        ...         self.end_headers()
    """

    server: LoopbackServer
    protocol_version = "HTTP/1.1"
    sys_version = ""
    timeout = IDLE_CONNECTION_SECONDS
    disable_nagle_algorithm = True  # headers and body go out in separate writes

    def setup(self) -> None:
        """Open the connection and let the server know of it."""
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        """Close the connection; the server forgets it even when closing fails."""
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: a request line can carry a secret (a request token, a code)."""

    def do_GET(self) -> None:
        """Answer a GET."""
        self._dispatch()

    def do_POST(self) -> None:
        """Answer a POST."""
        self._dispatch()

    def do_PUT(self) -> None:
        """Answer a PUT."""
        self._dispatch()

    def do_PATCH(self) -> None:
        """Answer a PATCH."""
        self._dispatch()

    def do_DELETE(self) -> None:
        """Answer a DELETE."""
        self._dispatch()

    def _dispatch(self) -> None:
        """Read the request and send the answer; every subclass has its own."""
        raise NotImplementedError
