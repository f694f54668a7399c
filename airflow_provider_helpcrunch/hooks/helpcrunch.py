"""Hook for the HelpCrunch REST API v1: the Airflow side (connection, form, masking) and thin API methods."""

from __future__ import annotations

import heapq
import itertools
import math
import time
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowNotFoundException, BaseHook, mask_secret

from airflow_provider_helpcrunch.chat_values import (
    ASSIGNEE_FIELD,
    DEPARTMENT_FIELD,
    ON_HOLD,
    ON_HOLD_OLDER,
    SNOOZE_FIELD,
    STATUS_FIELD,
    check_id,
    check_snooze,
    check_status,
    shown,
    shows_reference,
    shows_snooze,
    shows_status,
)
from airflow_provider_helpcrunch.client import MAX_CONNECTIONS, HelpCrunchClient
from airflow_provider_helpcrunch.connection import (
    CONN_TYPE,
    DEFAULT_CONN_ID,
    HelpCrunchSettings,
    connection_form_widgets,
    resolve_settings,
    ui_field_behaviour,
)
from airflow_provider_helpcrunch.exceptions import HelpCrunchAPIError, HelpCrunchConfigError, HelpCrunchError
from airflow_provider_helpcrunch.filters import check_sort, normalize_filters
from airflow_provider_helpcrunch.outside_text import Scrubber, short_repr
from airflow_provider_helpcrunch.rate_limit import SlidingWindowRateLimiter
from airflow_provider_helpcrunch.search_fields import COMPARISONS
from airflow_provider_helpcrunch.shared_window import SharedWindow, account_key, redis_client
from airflow_provider_helpcrunch.timestamps import readable_seconds
from airflow_provider_helpcrunch.validation import (
    READ_FIELDS,
    ReadBy,
    check_by,
    check_chat_id,
    check_int,
    check_max_chats,
    check_read,
    check_unread_by,
)

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Iterable, Iterator

    import requests
    from airflow.providers.common.compat.sdk import Connection

__all__ = ["MAX_CONNECTIONS", "READ_ENDPOINTS", "HelpCrunchHook", "unread_filter"]

READ_ENDPOINTS: dict[str, str] = {"agent": "/chats/readByAgent", "customer": "/chats/readByCustomer"}
CUSTOMER_SORT_FIELDS = ("customers.firstSeen", "customers.lastSeen")


class HelpCrunchHook(BaseHook):
    """
    Interact with the HelpCrunch REST API v1, paced under the account's request limit.

    The connection holds the API key (``password``), the API base URL (``host``, default
    ``https://api.helpcrunch.com/v1``) and, in its extras, ``requests_per_minute``, ``timeout``,
    ``max_retries`` and ``redis_conn_id``. Each of those can also be passed here, which wins over the extra.

    :param helpcrunch_conn_id: the Airflow connection with the API key.
    :param requests_per_minute: the most requests this hook sends in any 60 s (default 120, the account
        limit).
    :param timeout: seconds one attempt may take in all, the whole answer read (default 30).
    :param max_retries: retries of one request after a 5xx, a timeout or a dropped connection (default 5).
    :param retry_backoff: first wait in seconds before a retry when the server gives no ``Retry-After``;
        doubled at each further retry, plus jitter (default 1).
    :param retry_backoff_max: the longest wait between two retries, in seconds (default 60).
    :param rate_limit_wait: how long one request may wait out 429s, in seconds, before it fails with
        :class:`HelpCrunchRateLimitError` (default 300): real time from its first 429, pacing included,
        whatever ``Retry-After`` says. 429s do not count against ``max_retries``: the limit is shared by
        everything that uses the key, and waiting is the answer to it.
    :param redis_conn_id: an Airflow ``redis`` connection through which every hook that uses the same
        account (base URL and key) draws on one request window, on every worker (default: the
        connection's extra ``redis_conn_id``; unset, this hook paces on its own). Needs the ``redis`` extra.
    :param rate_limit_window: the length of the account's rate-limit window in seconds (60: the limit is
        per minute; shorter only for tests against a scaled stand-in).
    :param rate_limiter: the pacer to use instead of one built from ``requests_per_minute`` (for example
        one shared by several hooks of a process).
    :param clock: a monotonic clock for pacing and for ``rate_limit_wait`` (injectable for tests).
    :param sleep: how to wait between attempts and at the pacer; by default real time, cut short when the
        caller cancels (injectable for tests).
    """

    conn_name_attr = "helpcrunch_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = CONN_TYPE
    hook_name = "HelpCrunch"

    def __init__(
        self,
        helpcrunch_conn_id: str = default_conn_name,
        *,
        requests_per_minute: int | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        retry_backoff: float = 1.0,
        retry_backoff_max: float = 60.0,
        rate_limit_wait: float = 300.0,
        rate_limit_window: float = 60.0,
        redis_conn_id: str | None = None,
        rate_limiter: SlidingWindowRateLimiter | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.helpcrunch_conn_id = helpcrunch_conn_id
        self._requests_per_minute = requests_per_minute
        self._timeout = timeout
        self._max_retries = max_retries
        self._redis_conn_id = redis_conn_id
        self.retry_backoff = retry_backoff
        self.retry_backoff_max = retry_backoff_max
        self.rate_limit_wait = rate_limit_wait
        self.rate_limit_window = rate_limit_window
        self._clock = clock
        self._sleep = sleep
        self._given_rate_limiter = rate_limiter
        # the spelling of "on hold" HelpCrunch takes: the current one until it refuses it
        self._on_hold = ON_HOLD

    # ------------------------------------------------------------------ connection form (Airflow < 3.2)
    # From Airflow 3.2 the form comes from ``get_provider_info()``; these two serve older versions.

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields of the connection form (Airflow 2.11 to 3.1)."""
        return connection_form_widgets()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Relabel, hide and fill in the standard fields of the connection form (Airflow 2.11 to 3.1)."""
        return ui_field_behaviour()

    # ------------------------------------------------------------------ settings and session

    @cached_property
    def _connection(self) -> Connection:
        return self.get_connection(self.helpcrunch_conn_id)

    @cached_property
    def _scrub(self) -> Scrubber:
        """Takes the API key, as stored and as used, out of any text built from outside."""
        raw = self._connection.password or ""
        return Scrubber(raw, raw.strip())

    @cached_property
    def settings(self) -> HelpCrunchSettings:
        """The connection resolved and checked; raises :class:`HelpCrunchConfigError` when unusable."""
        for form in self._scrub.forms:
            mask_secret(form)
        return resolve_settings(
            self._connection,
            self.helpcrunch_conn_id,
            requests_per_minute=self._requests_per_minute,
            timeout=self._timeout,
            max_retries=self._max_retries,
            redis_conn_id=self._redis_conn_id,
        )

    @cached_property
    def rate_limiter(self) -> SlidingWindowRateLimiter:
        """The pacer every request of this hook goes through."""
        if self._given_rate_limiter is not None:
            return self._given_rate_limiter
        settings = self.settings
        return SlidingWindowRateLimiter(
            settings.requests_per_minute,
            window=self.rate_limit_window,
            clock=self._clock,
            sleep=self._sleep,
            shared=self._shared_window(settings),
            log=self.log,
        )

    def _shared_window(self, settings: HelpCrunchSettings) -> SharedWindow | None:
        """The account's window in Redis, when the connection (or the hook) names a Redis connection."""
        if settings.redis_conn_id is None:
            return None
        try:
            client = redis_client(settings.redis_conn_id)
        except Exception as err:  # no task fails because of the shared window: it paces on its own
            self.log.warning(
                "Redis connection %r cannot be used (%s: %s); this hook paces on its own.",
                settings.redis_conn_id,
                type(err).__name__,
                self._scrub.quote(str(err)),
            )
            return None
        self.log.info(
            "Pacing shares the account's window of %d requests per %.0f s through Redis connection %r",
            settings.requests_per_minute,
            self.rate_limit_window,
            settings.redis_conn_id,
        )
        return SharedWindow(
            client,
            account_key(settings.api_key, settings.base_url),
            limit=settings.requests_per_minute,
            window=self.rate_limit_window,
            # an attempt ends within `timeout` (plus a second of slack): its slot frees a window after that
            lease=settings.timeout + 1 + self.rate_limit_window,
        )

    @property
    def pace(self) -> str:
        """How this hook paces, in words for a log line (the pacer is made if it was not yet)."""
        settings = self.settings
        if self.rate_limiter.is_shared:
            return (
                f"within the account's budget of {settings.requests_per_minute} requests/min, shared through "
                f"Redis connection {settings.redis_conn_id!r} with every task that uses the account"
            )
        return f"at up to {settings.requests_per_minute} requests/min"

    @cached_property
    def client(self) -> HelpCrunchClient:
        """The API client, built once from the connection's settings and this hook's arguments."""
        settings = self.settings
        mask_secret(f"Bearer {settings.api_key}")
        return HelpCrunchClient(
            base_url=settings.base_url,
            api_key=settings.api_key,
            rate_limiter=self.rate_limiter,
            scrub=self._scrub,
            timeout=settings.timeout,
            max_retries=settings.max_retries,
            retry_backoff=self.retry_backoff,
            retry_backoff_max=self.retry_backoff_max,
            rate_limit_wait=self.rate_limit_wait,
            where=f"Airflow connection {self.helpcrunch_conn_id!r}",
            clock=self._clock,
            sleep=self._sleep,
            log=self.log,
        )

    def get_conn(self) -> requests.Session:
        """
        Return the client's ``requests.Session``, made once: the bearer token as its auth (``~/.netrc`` is
        never used), no redirects, a connection pool. Requests sent through :attr:`client` are also paced,
        retried, and bounded in time and size.
        """
        return self.client.session

    def close(self) -> None:
        """Close the pooled connections, if a session was made."""
        if "client" in self.__dict__:
            self.client.close()

    # ------------------------------------------------------------------ API calls

    def mark_chat_read(
        self,
        chat_id: int,
        *,
        by: ReadBy = "agent",
        read: bool = True,
        cancel: threading.Event | None = None,
        ticket: int | None = None,
    ) -> dict[str, Any]:
        """
        Mark one chat read (or unread) by the agent or by the customer.

        :param chat_id: the HelpCrunch chat ID.
        :param by: ``"agent"`` (``PUT /chats/readByAgent``) or ``"customer"`` (``PUT /chats/readByCustomer``).
        :param read: ``False`` marks the chat unread.
        :param cancel: when set, no further attempt is sent (:class:`HelpCrunchCancelledError`).
        :param ticket: a place in the pacer's queue from ``rate_limiter.take_ticket()``, so that requests
            leave in the order their tickets were taken.
        :return: the Chat object HelpCrunch returns.
        :raises HelpCrunchNotFoundError: no chat has this ID.
        """
        check_by(by)
        check_chat_id(chat_id)
        check_read(read)
        field_name = READ_FIELDS[by]
        # done only when the chat HelpCrunch returns shows the state asked for
        return self._write(
            READ_ENDPOINTS[by],
            chat_id,
            {"read": read},
            field_name,
            lambda chat: chat.get(field_name) is read,
            f"{field_name}={read}",
            cancel=cancel,
            ticket=ticket,
        )

    def set_chat_status(
        self,
        chat_id: int,
        status: str,
        *,
        cancel: threading.Event | None = None,
        ticket: int | None = None,
    ) -> dict[str, Any]:
        """
        Set one chat's status (``PUT /chats/status``).

        :param chat_id: the HelpCrunch chat ID.
        :param status: ``new``, ``opened``, ``pending``, ``on hold``, ``no communication`` or ``closed``;
            ``on-hold`` and ``onhold`` are read as ``on hold``. ``on hold`` is sent as HelpCrunch's current
            page spells it; if HelpCrunch refuses that as ``invalid_chat_value``, the older ``on-hold`` is
            tried once, and this hook keeps to whichever HelpCrunch took.
        :param cancel: as for :meth:`mark_chat_read`.
        :param ticket: as for :meth:`mark_chat_read`.
        :return: the Chat object HelpCrunch returns, showing the status.
        :raises HelpCrunchNotFoundError: no chat has this ID.
        """
        check_chat_id(chat_id)
        status = check_status(status)

        def send(spelling: str, ticket: int | None) -> dict[str, Any]:
            return self._write(
                "/chats/status",
                chat_id,
                {"status": spelling},
                STATUS_FIELD,
                lambda chat: shows_status(chat, status),
                repr(status),
                cancel=cancel,
                ticket=ticket,
            )

        if status != ON_HOLD:
            return send(status, ticket)
        spelling = self._on_hold
        try:
            return send(spelling, ticket)
        except HelpCrunchAPIError as err:
            if err.status_code != 400 or "invalid_chat_value" not in err.codes or spelling != ON_HOLD:
                raise
        self.log.warning(
            "HelpCrunch refused status %r for chat %d as invalid_chat_value; trying its older spelling %r",
            ON_HOLD,
            chat_id,
            ON_HOLD_OLDER,
        )
        chat = send(ON_HOLD_OLDER, None)
        self._on_hold = ON_HOLD_OLDER
        return chat

    def set_chat_assignee(
        self,
        chat_id: int,
        assignee: int | None,
        *,
        cancel: threading.Event | None = None,
        ticket: int | None = None,
    ) -> dict[str, Any]:
        """
        Assign one chat to an agent, or unassign it (``PUT /chats/assignee``).

        :param chat_id: the HelpCrunch chat ID.
        :param assignee: the agent's ID; ``None`` unassigns the chat.
        :param cancel: as for :meth:`mark_chat_read`.
        :param ticket: as for :meth:`mark_chat_read`.
        :return: the Chat object HelpCrunch returns, showing the assignee.
        """
        check_chat_id(chat_id)
        agent = None if assignee is None else check_id(assignee, "assignee")
        return self._write(
            "/chats/assignee",
            chat_id,
            {"assignee": agent},
            ASSIGNEE_FIELD,
            lambda chat: shows_reference(chat, ASSIGNEE_FIELD, agent),
            "no assignee" if agent is None else f"agent {agent}",
            cancel=cancel,
            ticket=ticket,
        )

    def set_chat_department(
        self,
        chat_id: int,
        department: int,
        *,
        cancel: threading.Event | None = None,
        ticket: int | None = None,
    ) -> dict[str, Any]:
        """
        Move one chat to a department (``PUT /chats/department``).

        :param chat_id: the HelpCrunch chat ID.
        :param department: the department's ID.
        :param cancel: as for :meth:`mark_chat_read`.
        :param ticket: as for :meth:`mark_chat_read`.
        :return: the Chat object HelpCrunch returns, showing the department.
        """
        check_chat_id(chat_id)
        department = check_id(department, "department")
        return self._write(
            "/chats/department",
            chat_id,
            {"department": department},
            DEPARTMENT_FIELD,
            lambda chat: shows_reference(chat, DEPARTMENT_FIELD, department),
            f"department {department}",
            cancel=cancel,
            ticket=ticket,
        )

    def snooze_chat(
        self,
        chat_id: int,
        until: Any,
        *,
        cancel: threading.Event | None = None,
        ticket: int | None = None,
    ) -> dict[str, Any]:
        """
        Snooze one chat until a moment, or unsnooze it (``PUT /chats/snooze``). HelpCrunch marks a snoozed
        chat unread at that moment.

        :param chat_id: the HelpCrunch chat ID.
        :param until: UNIX seconds (an int or a numeric string), a datetime or a pendulum object; ``None``
            unsnoozes. Sent as a string of seconds, as HelpCrunch's current page shows it.
        :param cancel: as for :meth:`mark_chat_read`.
        :param ticket: as for :meth:`mark_chat_read`.
        :return: the Chat object HelpCrunch returns, showing ``snoozedUntil``.
        """
        check_chat_id(chat_id)
        seconds = check_snooze(until)
        return self._write(
            "/chats/snooze",
            chat_id,
            {"snoozedUntil": None if seconds is None else str(seconds)},
            SNOOZE_FIELD,
            lambda chat: shows_snooze(chat, seconds),
            "not snoozed" if seconds is None else f"snoozed until {seconds}",
            cancel=cancel,
            ticket=ticket,
        )

    def _write(
        self,
        path: str,
        chat_id: int,
        values: dict[str, Any],
        field_name: str,
        shows: Callable[[dict[str, Any]], bool],
        wanted: str,
        *,
        cancel: threading.Event | None,
        ticket: int | None,
    ) -> dict[str, Any]:
        """
        ``PUT path {"id": chat_id, **values}``, counted as done only if HelpCrunch's 200 returns this chat
        and the chat ``shows`` the change.
        """
        action = f"PUT {path}"
        chat = self.client.request(
            "PUT", path, json={"id": chat_id, **values}, chat_id=chat_id, cancel=cancel, ticket=ticket
        )
        if chat.get("id") != chat_id or isinstance(chat.get("id"), bool):
            returned = f"chat {short_repr(chat['id'])}" if "id" in chat else "no chat id"
            raise HelpCrunchAPIError(
                f"HelpCrunch answered {action} for chat {chat_id} with {returned} (status 200): the change "
                "is not confirmed, so it is not counted as done",
                status_code=200,
                chat_id=chat_id,
            )
        if not shows(chat):
            raise HelpCrunchAPIError(
                f"HelpCrunch answered {action} for chat {chat_id} with 200, but the chat it returned has "
                f"{self._scrub.quote(shown(chat, field_name), 200)}, not {wanted}",
                status_code=200,
                chat_id=chat_id,
            )
        return chat

    def get_chat(self, chat_id: int) -> dict[str, Any]:
        """
        Fetch one chat (``GET /chats/{id}``).

        :raises HelpCrunchNotFoundError: no chat has this ID.
        """
        check_chat_id(chat_id)
        return self.client.request("GET", f"/chats/{chat_id}", chat_id=chat_id)

    def list_chats(
        self,
        *,
        sort: str | None = None,
        order: str | None = None,
        max_chats: int | None = None,
        unread_by: ReadBy | None = None,
    ) -> Iterator[dict[str, Any]]:
        """
        Every chat of the account, page by page (``GET /chats``), as a generator of Chat dicts.

        :param sort: ``chats.createdAt``, ``chats.lastCustomerMessageAt``, ``chats.lastMessageAt`` or
            ``chats.closedAt`` (the ``chats.`` prefix may be left out).
        :param order: ``"asc"`` or ``"desc"``.
        :param max_chats: stop after this many chats (of those kept by ``unread_by``).
        :param unread_by: ``"agent"`` or ``"customer"``: keep only the chats not read by them yet.
        """
        sort, order = check_sort(sort, order)
        check_max_chats(max_chats)
        keep = unread_filter(check_unread_by(unread_by))

        def fetch(offset: int, limit: int) -> Any:
            params = {"offset": offset, "limit": limit, "sort": sort, "order": order}
            return self.client.request(
                "GET", "/chats", params={k: v for k, v in params.items() if v is not None}
            )

        return self.client.paginate(fetch, max_chats, "GET /chats", keep)

    def search_chats(
        self,
        filters: Any,
        *,
        comparison: str = "AND",
        sort: str | None = None,
        order: str | None = None,
        max_chats: int | None = None,
        unread_by: ReadBy | None = None,
    ) -> Iterator[dict[str, Any]]:
        """
        Chats matching ``filters`` (``POST /chats/search``), as a generator of Chat dicts.

        Filters are checked before anything is sent; timestamps may be ints, numeric strings, datetimes
        or pendulum objects. Pages are read on the chats' ``createdAt`` (each page from the last one read
        on), not by offset: a chat that stops matching while the search pages (an agent closed it, its
        ``updatedAt`` moved) shifts nothing, so no chat that matched from the first page to the last is
        missed, and none is yielded twice. ``"OR"`` over several filters is read as one such search per
        filter, merged.

        :param filters: a list of ``{"field": ..., "operator": ..., "value": ...}`` dicts or
            ``(field, operator, value)`` tuples, e.g. ``("closedAt", "<", 1700000000)``.
        :param comparison: ``"AND"`` (every filter) or ``"OR"`` (any filter).
        :param sort: ``chats.createdAt`` (the default) or, ordered here once every match is read,
            ``chats.lastCustomerMessageAt``, ``chats.lastMessageAt`` or ``chats.closedAt`` (the ``chats.``
            prefix may be left out).
        :param order: ``"asc"`` (the default) or ``"desc"``.
        :param max_chats: stop after this many chats (of those kept by ``unread_by``).
        :param unread_by: ``"agent"`` or ``"customer"``: keep only the chats not read by them yet (search
            cannot filter on it; the pages are filtered as they arrive).
        """
        checked = normalize_filters(filters)
        if comparison not in COMPARISONS:
            raise HelpCrunchConfigError(f"comparison must be 'AND' or 'OR', got {comparison!r}")
        sort, order = check_sort(sort, order)
        check_max_chats(max_chats)
        keep = unread_filter(check_unread_by(unread_by))
        descending = order == "desc"
        if comparison == "OR" and checked:
            # one comparison per search: an added key filter would be OR-ed too, so each filter is paged apart
            parts = [self._search_by_key([entry], descending) for entry in checked]
            found = _once(heapq.merge(*parts, key=created_key, reverse=descending))
        else:
            found = self._search_by_key(checked, descending)
        if keep is not None:
            found = filter(keep, found)
        if sort not in (None, CREATED_AT):
            found = _sorted_lazily(found, _sort_key(sort), descending)
        return itertools.islice(found, max_chats)

    def _search_by_key(self, checked: list[dict[str, Any]], descending: bool) -> Iterator[dict[str, Any]]:
        """One search of every filter (``AND``, the key's included), paged on ``createdAt`` in that order."""

        def fetch(key_filters: list[dict[str, Any]], offset: int, limit: int) -> Any:
            body: dict[str, Any] = {
                "filter": [*checked, *key_filters],
                "comparison": "AND",
                "sort": CREATED_AT,
                "order": "desc" if descending else "asc",
                "offset": offset,
                "limit": limit,
            }
            return self.client.request("POST", "/chats/search", json=body)

        return self.client.paginate_by_key(
            fetch, key_field=CREATED_AT, key=created_key, descending=descending, action="POST /chats/search"
        )

    def list_chat_messages(
        self, chat_id: int, *, max_messages: int | None = None, cancel: threading.Event | None = None
    ) -> Iterator[dict[str, Any]]:
        """
        The messages of one chat, newest first (``GET /chats/{id}/messages``), page by page, as a generator
        of Message dicts: stop iterating and no further page is fetched.

        :param chat_id: the HelpCrunch chat ID.
        :param max_messages: stop after this many messages.
        :param cancel: when set, no further request is sent (:class:`HelpCrunchCancelledError`).
        :raises HelpCrunchNotFoundError: no chat has this ID.
        """
        check_chat_id(chat_id)
        if max_messages is not None:
            check_int(max_messages, "max_messages")
        path = f"/chats/{chat_id}/messages"

        def fetch(offset: int, limit: int) -> Any:
            return self.client.request(
                "GET", path, params={"offset": offset, "limit": limit}, chat_id=chat_id, cancel=cancel
            )

        # the list is under "data" (one older revision of the docs shows it under "messages")
        return self.client.paginate(
            fetch, max_messages, f"GET {path}", kind="message", list_keys=("data", "messages")
        )

    def list_customers(
        self, *, sort: str | None = None, order: str | None = None, max_customers: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """
        Every customer of the account, page by page (``GET /customers``), as a generator of Customer dicts.

        :param sort: ``customers.firstSeen`` or ``customers.lastSeen`` (the ``customers.`` prefix may be
            left out).
        :param order: ``"asc"`` or ``"desc"``.
        :param max_customers: stop after this many customers.
        """
        sort, order = check_sort(sort, order, fields=CUSTOMER_SORT_FIELDS, prefix="customers.")
        if max_customers is not None:
            check_int(max_customers, "max_customers")

        def fetch(offset: int, limit: int) -> Any:
            params = {"offset": offset, "limit": limit, "sort": sort, "order": order}
            given = {name: value for name, value in params.items() if value is not None}
            return self.client.request("GET", "/customers", params=given)

        return self.client.paginate(fetch, max_customers, "GET /customers", kind="customer")

    def test_connection(self) -> tuple[bool, str]:
        """Check the key and the base URL with one cheap authenticated request (``GET /chats?limit=1``)."""
        try:
            self._connection  # noqa: B018 - read it first: its failure is told apart from HelpCrunch's
        except AirflowNotFoundException as err:  # "The conn_id `...` isn't defined": no secret in it
            return False, str(err)
        except Exception as err:  # a secrets backend's failure may quote what it read: say only its type
            return False, (
                f"{type(err).__name__} while reading Airflow connection {self.helpcrunch_conn_id!r} (its "
                "details are withheld: they may quote the connection's secrets)"
            )
        try:
            self.client.request("GET", "/chats", params={"limit": 1}, max_retries=0, rate_limit_wait=0.0)
        except HelpCrunchError as err:
            return False, str(err)
        except Exception as err:  # the UI shows the message; never let a surprise escape as a 500
            return False, f"{type(err).__name__}: {self._scrub.quote(str(err))}"
        return True, f"Connected to HelpCrunch at {self.settings.base_url}"


# ---------------------------------------------------------------------- helpers

CREATED_AT = "chats.createdAt"


def created_key(chat: dict[str, Any]) -> int:
    """
    A chat's ``createdAt`` in whole seconds: the key searches page on (it never changes).

    :raises ValueError: a chat without a readable one (the client makes it HelpCrunch's error).
    """
    seconds = readable_seconds(chat.get("createdAt"))
    if seconds is None:
        raise ValueError(
            f"chat {chat.get('id')} without a readable createdAt ({short_repr(chat.get('createdAt'))}): "
            "a search cannot page past it"
        )
    return math.floor(seconds)


def _sort_key(sort: str) -> Callable[[dict[str, Any]], tuple[bool, float]]:
    """Order chats by a timestamp field as HelpCrunch does: a chat without one last (ascending)."""
    name = sort.removeprefix("chats.")

    def key(chat: dict[str, Any]) -> tuple[bool, float]:
        seconds = readable_seconds(chat.get(name))
        return (seconds is None, seconds or 0.0)

    return key


def _sorted_lazily(
    chats: Iterable[dict[str, Any]], key: Callable[[dict[str, Any]], Any], descending: bool
) -> Iterator[dict[str, Any]]:
    """The chats in order, read when the first one is asked for (as every search is)."""
    yield from sorted(chats, key=key, reverse=descending)


def _once(chats: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Each chat once, by id (a chat can match several filters of an OR)."""
    seen: set[int] = set()
    for chat in chats:
        if chat["id"] not in seen:
            seen.add(chat["id"])
            yield chat


def unread_filter(unread_by: ReadBy | None) -> Callable[[dict[str, Any]], bool] | None:
    """
    What ``unread_by`` keeps: the chats not read by the agent (or customer) yet. A chat that does not say
    (no such field, or not a bool) is kept: better marked again than left unread.
    """
    if unread_by is None:
        return None
    field_name = READ_FIELDS[unread_by]
    return lambda chat: chat.get(field_name) is not True
