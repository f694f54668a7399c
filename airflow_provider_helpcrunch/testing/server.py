"""A local HelpCrunch REST API v1 stand-in: a real HTTP server on loopback, for tests and demos."""

from __future__ import annotations

import contextlib
import copy
import json
import math
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from airflow_provider_helpcrunch.testing.chats import (
    AGENTS,
    DEPARTMENTS,
    FilterError,
    check_filter,
    customers_of,
    make_chats,
    make_message,
    matches,
    message_order,
    seed_messages,
    sort_key,
)
from airflow_provider_helpcrunch.vocabulary import COMPARISONS, ORDERS, SORT_FIELDS

DEFAULT_API_KEY = "standin-api-key"
PAGE_LIMIT = 100
INVALID_REQUEST = {"code": "invalid_request", "message": "Invalid request"}
RATE_LIMIT_BODIES = (
    {"errors": [{"code": "too_many_requests", "message": "You have exceeded your requests limit"}]},
    {"errors": [INVALID_REQUEST, {"code": "too_many_requests", "message": "Too many requests"}]},
)


@dataclass(frozen=True)
class Fault:
    """
    What the stand-in does instead of answering normally.

    :param status: answer with this HTTP status and a HelpCrunch error body (e.g. 429, 500, 502, 503).
    :param drop: close the connection without answering.
    :param hang: wait this many seconds first (then answer normally, unless ``status`` or ``drop``).
    :param retry_after: with ``status=429``, the ``Retry-After`` header to send, in seconds.
    :param echo_auth: with ``status``, quote the request's ``Authorization`` header in the error message,
        as a careless server might.
    """

    status: int | None = None
    drop: bool = False
    hang: float = 0.0
    retry_after: float | None = None
    echo_auth: bool = False


@dataclass(frozen=True)
class RequestRecord:
    """One request the stand-in received, as it answered it."""

    number: int
    method: str
    path: str
    body: Any
    status: int | None  # None: the connection was dropped
    time: float  # time.monotonic() when the request arrived
    chat_id: int | None = None
    fault: Fault | None = None


@dataclass
class _PlannedFault:
    fault: Fault
    request: int | None = None
    chat_id: int | None = None
    path: str | None = None
    attempts: set[int] = field(default_factory=set)
    seen: int = 0  # requests so far at ``path``


class HelpCrunchStandIn:
    """
    A HelpCrunch API on loopback, faithful to the endpoints the provider uses.

    ``PUT /v1/chats/readByAgent|readByCustomer``, ``PUT /v1/chats/status|assignee|department|snooze``,
    ``GET /v1/chats/{id}``, ``GET /v1/chats`` and ``POST /v1/chats/search`` with bearer auth, HelpCrunch's
    validation and error bodies, pages of at most 100, and a sliding-window rate limit. A write moves the
    chat's ``updatedAt``, as HelpCrunch's search sees it. Faults can be scripted per request or per chat;
    every request is logged.

    >>> with HelpCrunchStandIn(chats=20) as api:
    ...     api.base_url  # doctest: +SKIP
    'http://127.0.0.1:40123/v1'

    :param chats: how many seeded chats to start with.
    :param seed: the seed of those chats (the same seed and ``now``, the same chats).
    :param now: UNIX time the chats' timestamps lead up to (default: a fixed moment, so that a seed alone
        reproduces the chats; pass ``int(time.time())`` for chats of the last weeks).
    :param api_key: the bearer token the stand-in accepts.
    :param requests_per_minute: the rate limit per ``window``; ``None`` or 0 turns it off.
    :param window: the rate-limit window in seconds (60; shorter makes fast tests).
    :param retry_after: add a ``Retry-After`` header to 429s: ``True`` for the seconds until a slot frees,
        or a fixed number of seconds.
    :param count_rejected: whether requests answered 429 count toward the limit.
    :param latency: seconds to wait before every answer.
    :param host: the address to listen on (loopback).
    :param port: the port; 0 picks a free one.
    :param on_request: called with each :class:`RequestRecord` once the request was answered (from the
        server's threads), e.g. to print the traffic as it happens.
    :param on_hold: the spelling of "on hold" that ``PUT /chats/status`` takes: ``"on hold"`` (HelpCrunch's
        current page) or ``"on-hold"`` (an older one); the other is refused as ``invalid_chat_value``.
    :param message_moves_updated_at: whether a new message moves its chat's ``updatedAt`` (as a search
        sees it) besides ``lastMessageAt``; HelpCrunch's docs do not say, so both are tried.
    """

    def __init__(
        self,
        *,
        chats: int = 50,
        seed: int = 0,
        now: int | None = None,
        api_key: str = DEFAULT_API_KEY,
        requests_per_minute: int | None = 120,
        window: float = 60.0,
        retry_after: bool | float = False,
        count_rejected: bool = True,
        latency: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        on_request: Callable[[RequestRecord], object] | None = None,
        on_hold: str = "on hold",
        message_moves_updated_at: bool = True,
    ) -> None:
        self.api_key = api_key
        self.message_moves_updated_at = message_moves_updated_at
        self.on_request = on_request
        self.on_hold = on_hold
        self.requests_per_minute = requests_per_minute
        self.window = window
        self.retry_after = retry_after
        self.count_rejected = count_rejected
        self.latency = latency
        self._host = host
        self._port = port
        self._lock = threading.RLock()
        seeded = make_chats(chats, seed=seed) if now is None else make_chats(chats, seed=seed, now=now)
        self._chats: dict[int, dict] = {chat["id"]: chat for chat in seeded}
        self._next_id = max(self._chats, default=5199) + 1
        self._requests: list[RequestRecord] = []
        self._messages: dict[int, list[dict]] = {}
        self._window_hits: deque[float] = deque()
        self._faults: list[_PlannedFault] = []
        self._attempts: dict[int, int] = {}
        self._count = 0
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ life cycle

    def start(self) -> HelpCrunchStandIn:
        """Start serving in a background thread; returns ``self``."""
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server((self._host, self._port), _Handler)
        server.standin = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="helpcrunch-standin",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake any hung request, and close the socket."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> HelpCrunchStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the stand-in is not started")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """The API base URL to put in the connection's host, e.g. ``http://127.0.0.1:40123/v1``."""
        return f"http://{self._host}:{self.port}/v1"

    def connection_json(self, **extra: Any) -> str:
        """Return the ``AIRFLOW_CONN_...`` JSON for a ``helpcrunch`` connection to this stand-in."""
        conn: dict[str, Any] = {"conn_type": "helpcrunch", "host": self.base_url, "password": self.api_key}
        if extra:
            conn["extra"] = extra
        return json.dumps(conn)

    # ------------------------------------------------------------------ state, for tests

    @property
    def chats(self) -> dict[int, dict]:
        """A copy of every chat, by id."""
        with self._lock:
            return copy.deepcopy(self._chats)

    def chat(self, chat_id: int) -> dict:
        """Return a copy of one chat."""
        with self._lock:
            return copy.deepcopy(self._chats[chat_id])

    def add_chat(self, **fields: Any) -> dict:
        """
        Add a chat (seeded defaults, overridden by ``fields``); return a copy of it.

        It has no messages until :meth:`add_message` (so no last message either, unless ``fields`` give one).
        """
        with self._lock:
            chat_id = fields.get("id", self._next_id)
            chat = make_chats(1, seed=chat_id, first_id=chat_id)[0]
            chat.update(lastMessageAt=None, lastMessageText=None, lastMessageId=None)
            chat.update(fields)
            self._chats[chat_id] = chat
            self._messages[chat_id] = []
            self._next_id = max(self._next_id, chat_id + 1)
            return copy.deepcopy(chat)

    def update_chat(self, chat_id: int, **fields: Any) -> dict:
        """Change fields of a chat, as HelpCrunch's own UI would; returns a copy of it."""
        with self._lock:
            self._chats[chat_id].update(fields)
            return copy.deepcopy(self._chats[chat_id])

    def remove_chat(self, chat_id: int) -> None:
        with self._lock:
            del self._chats[chat_id]

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request answered or dropped so far, in arrival order (a hanging one shows once it ends)."""
        with self._lock:
            return sorted(self._requests, key=lambda record: record.number)

    def clear_requests(self) -> None:
        """Forget the request log (request numbers keep counting)."""
        with self._lock:
            self._requests.clear()

    def inject(
        self,
        fault: Fault,
        *,
        request: int | None = None,
        chat_id: int | None = None,
        path: str | None = None,
        attempts: int | tuple[int, ...] = 1,
    ) -> None:
        """
        Script a fault.

        It is for the ``request``-th request from the start (1-based), for the given ``attempts`` (1-based,
        counted per chat) at chat ``chat_id``, or for the given ``attempts`` at a path (``"/v1/customers"``:
        counted over the requests whose path starts so).
        """
        if sum(given is not None for given in (request, chat_id, path)) != 1:
            raise ValueError("give exactly one of request=, chat_id= or path=")
        wanted = {attempts} if isinstance(attempts, int) else set(attempts)
        with self._lock:
            self._faults.append(
                _PlannedFault(fault, request=request, chat_id=chat_id, path=path, attempts=wanted)
            )

    @property
    def request_count(self) -> int:
        """How many requests arrived since the start (the number the next one gets, minus one)."""
        with self._lock:
            return self._count

    # ------------------------------------------------------------------ request handling

    def _admit(self, chat_id: int | None, path: str) -> tuple[int, Fault | None]:
        """Count the request and find the fault planned for it, if any."""
        with self._lock:
            self._count += 1
            number = self._count
            attempt = None
            if chat_id is not None:
                attempt = self._attempts[chat_id] = self._attempts.get(chat_id, 0) + 1
            found = None
            for planned in self._faults:
                if planned.path is not None and path.startswith(planned.path):
                    planned.seen += 1
                    if planned.seen in planned.attempts:
                        found = found or planned.fault
                elif planned.request == number or (
                    planned.chat_id is not None and planned.chat_id == chat_id and attempt in planned.attempts
                ):
                    found = found or planned.fault
            return number, found

    def _log(self, record: RequestRecord) -> None:
        with self._lock:
            self._requests.append(record)
        if self.on_request is not None:
            self.on_request(record)

    def _rate_limited(self, now: float) -> float | None:
        """``None`` if the request may pass, else the seconds until the window has a free slot."""
        limit = self.requests_per_minute
        if not limit:
            return None
        with self._lock:
            hits = self._window_hits
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) < limit:
                hits.append(now)
                return None
            if self.count_rejected:
                hits.append(now)
            return max(0.0, hits[0] + self.window - now)

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        try:
            return self._route_checked(method, path, query, body)
        except _BadRequest as err:
            return _bad_request(str(err))

    def _route_checked(
        self, method: str, path: str, query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any]:
        for route_method, pattern, answer in _ROUTES:
            match = pattern.fullmatch(path)
            if match and method == route_method:
                return answer(self, match, query, body)
        return 404, None  # an unknown route: a bare 404, not HelpCrunch's error body

    def _get_chat(self, chat_id: int) -> tuple[int, Any]:
        with self._lock:
            chat = self._chats.get(chat_id)
            return (200, copy.deepcopy(chat)) if chat else _not_found(chat_id)

    def _mark_read(self, endpoint: str, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict):
            return _bad_request("The request body must be a JSON object")
        chat_id, read = body.get("id"), body.get("read")
        if isinstance(chat_id, bool) or not isinstance(chat_id, int):
            return _bad_request('"id" is required and must be an integer')
        if not isinstance(read, bool):
            return _bad_request('"read" is required and must be a boolean')
        with self._lock:
            chat = self._chats.get(chat_id)
            if chat is None:
                return _not_found(chat_id)
            chat[endpoint] = read
            return 200, copy.deepcopy(chat)

    def _write(self, path: str, body: Any) -> tuple[int, Any]:
        """``PUT /chats/status|assignee|department|snooze``, validated as HelpCrunch does."""
        field, check = _WRITES[path]
        if not isinstance(body, dict):
            return _bad_request("The request body must be a JSON object")
        chat_id = body.get("id")
        if isinstance(chat_id, bool) or not isinstance(chat_id, int):
            return _bad_request('"id" is required and must be an integer')
        if field not in body:
            return _bad_request(f'"{field}" is required')
        value = check(self, body[field])
        if value is _INVALID:
            return _invalid_value(field)
        with self._lock:
            chat = self._chats.get(chat_id)
            if chat is None:
                return 404, _errors({"code": "chat_not_found", "message": "Chat is missing"})
            now = int(time.time())
            chat[field] = value
            if field == "status" and value == "closed" and not chat.get("closedAt"):
                chat["closedAt"] = now
            chat["updatedAt"] = now
            return 200, copy.deepcopy(chat)

    # ------------------------------------------------------------------ messages and customers

    def messages(self, chat_id: int) -> list[dict]:
        """Return a copy of a chat's messages, newest first (seeded the first time they are asked for)."""
        with self._lock:
            return copy.deepcopy(self._messages_of(chat_id))

    def add_message(self, chat_id: int, **fields: Any) -> dict:
        """
        Add a message to a chat (created now unless ``createdAt`` says otherwise), as a new message would.

        The chat's last-message fields move to it, and its ``updatedAt`` unless the stand-in was made with
        ``message_moves_updated_at=False``.
        """
        with self._lock:
            chat = self._chats[chat_id]
            messages = self._messages_of(chat_id)
            created = fields.pop("createdAt", None)
            created = int(time.time()) if created is None else created
            message = make_message(chat, len(messages) + 1, created)
            message.update(fields)
            messages.append(message)
            messages.sort(key=message_order)
            newest = messages[0]
            chat["lastMessageAt"] = newest["createdAt"]
            chat["lastMessageText"] = newest["text"]
            chat["lastMessageId"] = newest["id"]
            if self.message_moves_updated_at:
                chat["updatedAt"] = created
            return copy.deepcopy(message)

    def _messages_of(self, chat_id: int) -> list[dict]:
        """Call with the lock held."""
        if chat_id not in self._messages:
            self._messages[chat_id] = seed_messages(self._chats[chat_id])
        return self._messages[chat_id]

    def _messages_page(self, chat_id: int, query: dict[str, list[str]]) -> tuple[int, Any]:
        offset, limit = self._page(query.get("offset", [None])[-1], query.get("limit", [None])[-1])
        with self._lock:
            if chat_id not in self._chats:
                return 404, _errors({"code": "chat_not_found", "message": "Chat is missing"})
            messages = self._messages_of(chat_id)
            return 200, {"data": copy.deepcopy(messages[offset : offset + limit]), "total": len(messages)}

    def _post_message(self, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict):
            return _bad_request("The request body must be a JSON object")
        chat_id, text = body.get("chat"), body.get("text")
        if isinstance(chat_id, bool) or not isinstance(chat_id, int):
            return _bad_request('"chat" is required and must be an integer')
        if not isinstance(text, str) or not text:
            return _bad_request('"text" is required')
        if body.get("type", "message") not in ("message", "private"):
            return _invalid_value("type")
        with self._lock:
            if chat_id not in self._chats:
                return 404, _errors({"code": "chat_not_found", "message": "Chat is missing"})
            return 200, self.add_message(chat_id, text=text, type=body.get("type", "message"))

    def _customers(self, query: dict[str, list[str]]) -> tuple[int, Any]:
        def one(name: str) -> str | None:
            return query.get(name, [None])[-1]

        offset, limit = self._page(one("offset"), one("limit"))
        sort, order = one("sort"), one("order") or "asc"
        if sort not in (None, "customers.firstSeen", "customers.lastSeen") or order not in ORDERS:
            raise _BadRequest(f"Unknown sort {sort!r} or order {order!r}")
        with self._lock:
            found = customers_of(self._chats.values())
        if sort:
            field_name = sort.removeprefix("customers.")
            found.sort(key=lambda customer: (customer[field_name], customer["id"]), reverse=order == "desc")
        return 200, {"data": found[offset : offset + limit], "total": len(found)}

    def _status(self, value: Any) -> Any:
        allowed = {"new", "opened", "pending", "no communication", "closed", self.on_hold}
        return value if isinstance(value, str) and value in allowed else _INVALID

    def _page(self, offset: Any, limit: Any) -> tuple[int, int]:
        """Return the page asked for, its limit capped at HelpCrunch's 100; raises :class:`_BadRequest`."""
        try:
            offset = int(offset if offset is not None else 0)
            limit = int(limit if limit is not None else PAGE_LIMIT)
        except (TypeError, ValueError):
            raise _BadRequest("offset and limit must be integers") from None
        if offset < 0 or limit < 1:
            raise _BadRequest("offset must be >= 0 and limit >= 1")
        return offset, min(limit, PAGE_LIMIT)

    def _sorted(self, sort: Any, order: Any) -> list[dict]:
        """Every chat, in the order asked for; raises :class:`_BadRequest`."""
        if sort is not None and sort not in SORT_FIELDS:
            raise _BadRequest(f"Unknown sort field {sort!r}")
        if order is not None and order not in ORDERS:
            raise _BadRequest(f"Unknown order {order!r}")
        with self._lock:  # the chats themselves: only the page answered is copied (see _answer_page)
            chats = list(self._chats.values())
            if sort:
                chats.sort(key=sort_key(sort), reverse=order == "desc")
            elif order == "desc":
                chats.reverse()
        return chats

    def _list(self, query: dict[str, list[str]]) -> tuple[int, Any]:
        def one(name: str) -> str | None:
            return query.get(name, [None])[-1]

        offset, limit = self._page(one("offset"), one("limit"))
        chats = self._sorted(one("sort"), one("order"))
        return self._answer_page(chats, offset, limit)

    def _search(self, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict):
            raise _BadRequest("The request body must be a JSON object")
        raw_filters = body.get("filter", [])
        if not isinstance(raw_filters, list):
            raise _BadRequest('"filter" must be a list')
        comparison = body.get("comparison", "AND")
        if comparison not in COMPARISONS:
            raise _BadRequest(f"Unknown comparison {comparison!r}")
        try:
            filters = [check_filter(entry) for entry in raw_filters]
        except FilterError as err:
            raise _BadRequest(str(err)) from None
        offset, limit = self._page(body.get("offset"), body.get("limit"))
        chats = self._sorted(body.get("sort"), body.get("order"))
        with self._lock:
            found = [chat for chat in chats if matches(chat, filters, comparison)]
        return self._answer_page(found, offset, limit)

    def _answer_page(self, chats: list[dict], offset: int, limit: int) -> tuple[int, Any]:
        """Return a page of chats, copied under the lock (a write may change a chat at any moment)."""
        with self._lock:
            page = copy.deepcopy(chats[offset : offset + limit])
        return 200, {"data": page, "meta": {"total": len(chats)}}


_INVALID = object()


def _reference(known: list[dict[str, Any]], *, nullable: bool) -> Callable[[Any, Any], Any]:
    """Check an agent or department ID against the account's: the object it stands for, or _INVALID."""

    def check(_standin: Any, value: Any) -> Any:
        if value is None:
            return None if nullable else _INVALID
        if isinstance(value, bool) or not isinstance(value, int):
            return _INVALID
        found = next((ref for ref in known if ref["id"] == value), None)
        return copy.deepcopy(found) if found is not None else _INVALID

    return check


def _snooze(_standin: Any, value: Any) -> Any:
    """UNIX seconds as an int or a string (both documented), or null; answered as ``"1603864800.000"``."""
    if value is None:
        return None
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,12}", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return _INVALID
    return f"{value}.000"


#: each write's endpoint: the chat field it sets and how its value is checked.
_WRITES: dict[str, tuple[str, Callable[[Any, Any], Any]]] = {
    "/v1/chats/status": ("status", lambda standin, value: standin._status(value)),
    "/v1/chats/assignee": ("assignee", _reference(AGENTS, nullable=True)),
    "/v1/chats/department": ("department", _reference(DEPARTMENTS, nullable=False)),
    "/v1/chats/snooze": ("snoozedUntil", _snooze),
}


_Answer = Callable[[HelpCrunchStandIn, re.Match[str], dict[str, list[str]], Any], tuple[int, Any]]
#: the API's routes: method, path, and how the stand-in answers.
_ROUTES: list[tuple[str, re.Pattern[str], _Answer]] = [
    ("PUT", re.compile(r"/v1/chats/(readByAgent|readByCustomer)"), lambda s, m, q, b: s._mark_read(m[1], b)),
    (
        "PUT",
        re.compile(r"/v1/chats/(status|assignee|department|snooze)"),
        lambda s, m, q, b: s._write(m[0], b),
    ),
    ("GET", re.compile(r"/v1/customers"), lambda s, m, q, b: s._customers(q)),
    ("POST", re.compile(r"/v1/messages"), lambda s, m, q, b: s._post_message(b)),
    ("GET", re.compile(r"/v1/chats/(\d+)/messages"), lambda s, m, q, b: s._messages_page(int(m[1]), q)),
    ("GET", re.compile(r"/v1/chats"), lambda s, m, q, b: s._list(q)),
    ("POST", re.compile(r"/v1/chats/search"), lambda s, m, q, b: s._search(b)),
    ("GET", re.compile(r"/v1/chats/(\d+)"), lambda s, m, q, b: s._get_chat(int(m[1]))),
]


def _invalid_value(field: str) -> tuple[int, Any]:
    return 400, _errors({"code": "invalid_chat_value", "message": f"{field} value is invalid"})


class _BadRequest(Exception):
    """A request HelpCrunch would answer with 400 and this message."""


def _errors(*entries: dict[str, str]) -> dict[str, Any]:
    return {"errors": list(entries)}


def _bad_request(message: str) -> tuple[int, Any]:
    return 400, _errors(INVALID_REQUEST, {"code": "validation_error", "message": message})


def _not_found(chat_id: int) -> tuple[int, Any]:
    return 404, _errors(
        INVALID_REQUEST, {"code": "not_found", "message": f'Chat for ID "{chat_id}" was not found'}
    )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    standin: HelpCrunchStandIn

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._sockets: set[socket.socket] = set()
        self._sockets_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._sockets_lock:
            self._sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._sockets_lock:
            self._sockets.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Close kept-alive connections so that no handler thread outlives the server."""
        with self._sockets_lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without this, Nagle's algorithm and the client's delayed
    # ACK hold every kept-alive response back by about 40 ms.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        return

    def do_GET(self) -> None:
        self._handle("GET")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        standin = self.server.standin
        arrived = time.monotonic()
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/") or "/"
        body, malformed = self._read_body()
        chat_id = _chat_of(path, body)
        number, fault = standin._admit(chat_id, path)

        def record(status: int | None) -> None:
            standin._log(RequestRecord(number, method, self.path, body, status, arrived, chat_id, fault))

        delay = standin.latency + (fault.hang if fault else 0.0)
        if delay and standin._stopping.wait(delay):
            record(None)
            self.close_connection = True
            return
        if fault and fault.drop:
            record(None)
            self._drop()
            return
        headers: dict[str, str] = {}
        if fault and fault.status:
            status, payload = fault.status, self._faulty(fault, fault.status, headers)
        elif self.headers.get("Authorization") != f"Bearer {standin.api_key}":
            status, payload = 401, _errors({"code": "unauthorized", "message": "Invalid or missing API key"})
        elif (wait := standin._rate_limited(arrived)) is not None:
            status, payload = 429, RATE_LIMIT_BODIES[number % 2]
            if standin.retry_after is True:
                headers["Retry-After"] = _seconds_header(wait)
            elif standin.retry_after is not False:
                headers["Retry-After"] = _seconds_header(float(standin.retry_after))
        elif malformed:
            status, payload = (
                400,
                _errors(INVALID_REQUEST, {"code": "malformed_json", "message": "Malformed JSON"}),
            )
        else:
            status, payload = standin._route(method, path, parse_qs(parts.query), body)
        record(status)
        self._send(status, payload, headers)

    def _read_body(self) -> tuple[Any, bool]:
        """Read the request's body: its JSON (``None`` when empty), and whether it was not JSON."""
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None, False
        try:
            return json.loads(raw), False
        except ValueError:
            return raw.decode("utf-8", "replace"), True

    def _faulty(self, fault: Fault, status: int, headers: dict[str, str]) -> Any:
        """Return the body of a scripted fault's status (and its ``Retry-After``, or the echoed key)."""
        payload = _fault_body(status)
        if fault.echo_auth:
            said = f"Invalid credentials: {self.headers.get('Authorization')}"
            payload = _errors({"code": "unauthorized", "message": said})
        if fault.retry_after is not None:
            headers["Retry-After"] = _seconds_header(fault.retry_after)
        return payload

    def _send(self, status: int, payload: Any, headers: dict[str, str]) -> None:
        if payload is None:
            data, content_type = b"<html><body><h1>404 Not Found</h1></body></html>", "text/html"
        else:
            data, content_type = json.dumps(payload).encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


def _chat_of(path: str, body: Any) -> int | None:
    """Return the chat a request is about: its body's ``id``, or the chat in its path."""
    if isinstance(body, dict) and isinstance(body.get("id"), int):
        return int(body["id"])
    match = re.fullmatch(r"/v1/chats/(\d+)(?:/messages)?", path)
    return int(match.group(1)) if match else None


def _fault_body(status: int) -> Any:
    if status == 429:
        return RATE_LIMIT_BODIES[0]
    if status >= 500:
        return _errors({"code": "server_error", "message": "Internal server error"})
    return _errors(INVALID_REQUEST)


def _seconds_header(seconds: float) -> str:
    return str(max(0, math.ceil(seconds)))
