"""
A raw HTTP server on loopback whose answers are scripted byte by byte: for servers that misbehave in ways
the stand-in does not (redirects, trickling, cut-off or oversized answers) and for a forwarding proxy.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

# A script yields what to do: bytes to write, a float to wait that many seconds, or None to close.
Step = bytes | float | None


@dataclass
class Received:
    """One request the server read."""

    method: str
    target: str  # the request line's target: a path, or an absolute URL when used as a proxy
    headers: dict[str, str]
    body: bytes
    time: float = 0.0


def answer(status: int, body: Any = b"", headers: dict[str, str] | None = None) -> bytes:
    """A whole HTTP/1.1 answer; a dict or list body is sent as JSON."""
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
    head = {"Content-Length": str(len(body)), "Connection": "close", **(headers or {})}
    lines = [f"HTTP/1.1 {status} Scripted"] + [f"{name}: {value}" for name, value in head.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass
class ScriptedServer:
    """Serve each request with ``script(received)``; one connection per request (``Connection: close``)."""

    script: Callable[[Received], Iterable[Step]]
    host: str = "127.0.0.1"
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._listener = socket.create_server((self.host, 0))
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="scripted-server")

    @property
    def port(self) -> int:
        return self._listener.getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        self._thread.join(timeout=5)

    def _serve(self) -> None:
        self._listener.settimeout(0.1)
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.settimeout(5)
            received = _read_request(conn)
            if received is None:
                return
            with self._lock:
                self.received.append(received)
            for step in self.script(received):
                if step is None:
                    return
                if isinstance(step, float):
                    if self._stopping.wait(step):
                        return
                    continue
                try:
                    conn.sendall(step)
                except OSError:
                    return


def _read_request(conn: socket.socket) -> Received | None:
    """One HTTP request off the socket, or ``None`` if the client hung up before its head."""
    import time

    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    method, target, _ = request_line.split(" ", 2)
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length") or 0)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return Received(method, target, headers, body, time.monotonic())
