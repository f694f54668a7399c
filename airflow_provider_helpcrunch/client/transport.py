"""
One HTTP attempt at HelpCrunch.

The bearer token as the request's auth, no redirects, a body of bounded size, and a deadline on the whole
attempt (a server that trickles bytes cannot hold it past the deadline).
"""

from __future__ import annotations

import io
import json
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

if TYPE_CHECKING:
    import socket
    from collections.abc import Mapping

    from urllib3.poolmanager import PoolManager

#: the wall-clock moment (``time.monotonic()``) by which the current thread's attempt must end.
_DEADLINE: ContextVar[float | None] = ContextVar("helpcrunch_attempt_deadline", default=None)
_CHUNK = 64 * 1024


class AttemptTimeout(requests.Timeout):
    """The attempt ran past its deadline (the server was too slow, or trickled its answer)."""


class ResponseTooLarge(requests.RequestException):
    """The answer's body is larger than the provider reads."""


class BearerAuth(requests.auth.AuthBase):
    """
    ``Authorization: Bearer <token>`` as the request's auth.

    Being the session's auth, it also keeps requests from taking credentials out of ``~/.netrc``; proxy
    settings from the environment still apply.
    """

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self._header
        return request

    def __repr__(self) -> str:
        return "BearerAuth(***)"


@dataclass(frozen=True)
class Answer:
    """What HelpCrunch answered to one attempt: the status, the headers and the whole body."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """Return the body as JSON; ``ValueError`` when it is not, ``RecursionError`` when nested too deep."""
        # NaN and Infinity are not JSON (RFC 8259): an answer holding them is not read as if it were
        return json.loads(self.body, parse_constant=_not_json)


def send_once(
    session: requests.Session,
    method: str,
    url: str,
    *,
    timeout: float,
    max_body_bytes: int,
    json: Any = None,
    params: Mapping[str, Any] | None = None,
) -> Answer:
    """
    Send one request and read the whole answer within ``timeout`` seconds of wall time.

    Redirects are not followed (the 3xx is the answer). Raises ``requests`` exceptions for transport
    failures: :class:`AttemptTimeout` past the deadline, :class:`ResponseTooLarge` over ``max_body_bytes``.
    """
    deadline = time.monotonic() + timeout
    token = _DEADLINE.set(deadline)
    try:
        response = session.request(
            method,
            url,
            json=json,
            params=params,
            timeout=timeout,
            allow_redirects=False,
            stream=True,
        )
        try:
            body = _read_body(response, max_body_bytes, deadline)
        finally:
            response.close()
    except requests.RequestException as err:
        if time.monotonic() >= deadline and not isinstance(err, (AttemptTimeout, ResponseTooLarge)):
            raise AttemptTimeout(f"no whole answer within {timeout:g} s") from err
        raise
    finally:
        _DEADLINE.reset(token)
    return Answer(response.status_code, response.headers, body)


def _read_body(response: requests.Response, max_bytes: int, deadline: float) -> bytes:
    body = BodyReader(response.headers, max_bytes)
    for chunk in response.iter_content(_CHUNK):
        body.add(chunk)
        if time.monotonic() >= deadline:
            raise AttemptTimeout("the answer was still arriving at the attempt's deadline")
    return body.read()


class BodyReader:
    """
    An answer's body, read chunk by chunk up to ``max_bytes`` (the sync and async transports share it).

    :raises ResponseTooLarge: as soon as the declared length or the bytes read pass ``max_bytes``.
    """

    def __init__(self, headers: Mapping[str, str], max_bytes: int) -> None:
        declared = headers.get("Content-Length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > max_bytes:
            raise ResponseTooLarge(
                f"the answer's body is {int(declared):,} bytes; at most {max_bytes:,} are read"
            )
        self._max = max_bytes
        self._chunks: list[bytes] = []
        self._size = 0

    def add(self, chunk: bytes) -> None:
        """Take one chunk of the body."""
        self._size += len(chunk)
        if self._size > self._max:
            raise ResponseTooLarge(f"the answer's body is over {self._max:,} bytes, the most that is read")
        self._chunks.append(chunk)

    def read(self) -> bytes:
        """Return the whole body."""
        return b"".join(self._chunks)


# ---------------------------------------------------------------------- the deadline, at the socket


class _DeadlineReader(io.RawIOBase):
    """Reads a socket so that no read waits past the deadline: each read's timeout is the time left."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._raw = sock.makefile("rb", buffering=0)  # holds a reference: the socket stays open for it
        self._deadline = deadline
        self._timeout = sock.gettimeout()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the attempt's deadline passed")
        self._sock.settimeout(left if self._timeout is None else min(self._timeout, left))
        return self._raw.readinto(buffer)

    def close(self) -> None:
        self._raw.close()
        super().close()


class _DeadlineSocket:
    """The connection's socket as ``http.client`` sees it while reading one answer."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _DeadlineConnectionMixin:
    """Reads the answer (status, headers and body) under the current attempt's deadline, if one is set."""

    sock: Any

    def getresponse(self) -> Any:
        deadline = _DEADLINE.get()
        if deadline is None or self.sock is None:
            return super().getresponse()  # type: ignore[misc]
        real = self.sock
        self.sock = _DeadlineSocket(real, deadline)
        try:
            return super().getresponse()  # type: ignore[misc]
        finally:
            if self.sock is not None:  # None: http.client closed it and handed the socket to the answer
                self.sock = real


class _HTTPConnection(_DeadlineConnectionMixin, HTTPConnection):
    pass


class _HTTPSConnection(_DeadlineConnectionMixin, HTTPSConnection):
    pass


class _HTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOL_CLASSES = {"http": _HTTPConnectionPool, "https": _HTTPSConnectionPool}


def _use_deadline_pools(manager: PoolManager) -> PoolManager:
    manager.pool_classes_by_scheme = _POOL_CLASSES
    return manager


class HelpCrunchAdapter(HTTPAdapter):
    """A pooling adapter whose connections honour the attempt's deadline; it never retries on its own."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        _use_deadline_pools(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if proxy.lower().startswith("socks"):  # SOCKS pools have connection classes of their own
            return manager
        return _use_deadline_pools(manager)


class _NoRedirectSession(requests.Session):
    """
    A session that sees no redirect at all.

    With ``allow_redirects=False`` a plain session still reads a 3xx's whole body (unbounded) to prepare the
    next hop; here the 3xx is simply the answer.
    """

    def get_redirect_target(self, resp: requests.Response) -> None:
        return None


def make_session(*, token: str, headers: Mapping[str, str], pool_size: int) -> requests.Session:
    """Return a session with the bearer auth, the given headers and a deadline-aware pool of ``pool_size``."""
    session = _NoRedirectSession()
    session.auth = BearerAuth(token)
    session.headers.update(headers)
    adapter = HelpCrunchAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")
