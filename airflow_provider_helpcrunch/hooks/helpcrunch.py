"""Hook for the HelpCrunch REST API v1: the Airflow side (connection, form, masking) and thin API methods."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.common.compat.sdk import AirflowNotFoundException, BaseHook, mask_secret

from airflow_provider_helpcrunch.client import MAX_CONNECTIONS, HelpCrunchClient, unread_filter
from airflow_provider_helpcrunch.client.async_client import AsyncHelpCrunchClient
from airflow_provider_helpcrunch.client.rate_limit import SlidingWindowRateLimiter
from airflow_provider_helpcrunch.client.sending import Timing
from airflow_provider_helpcrunch.client.shared_window import SharedWindow, account_key
from airflow_provider_helpcrunch.exceptions import HelpCrunchError
from airflow_provider_helpcrunch.hooks.connection import (
    CONN_TYPE,
    DEFAULT_CONN_ID,
    HelpCrunchSettings,
    aget_connection,
    aredis_client,
    connection_form_widgets,
    redis_client,
    resolve_settings,
    ui_field_behaviour,
)
from airflow_provider_helpcrunch.outside_text import Scrubber

if TYPE_CHECKING:
    from collections.abc import Iterator

    import requests
    from airflow.providers.common.compat.sdk import Connection

    from airflow_provider_helpcrunch.vocabulary import ReadBy

__all__ = ["MAX_CONNECTIONS", "HelpCrunchHook", "unread_filter"]


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
    """

    conn_name_attr = "helpcrunch_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = CONN_TYPE
    hook_name = "HelpCrunch"
    #: how the pacer and the client tell time and wait, and the limit's window: real time and 60 s. A
    #: subclass may give others (a virtual clock in tests, a scaled window against a stand-in).
    timing: ClassVar[Timing] = Timing()

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
        redis_conn_id: str | None = None,
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
        return _scrubber(self._connection)

    @cached_property
    def settings(self) -> HelpCrunchSettings:
        """The connection resolved and checked; raises :class:`HelpCrunchConfigError` when unusable."""
        return self._resolve(self._connection, self._scrub)

    def _resolve(self, connection: Connection, scrub: Scrubber) -> HelpCrunchSettings:
        """Mask the key in every form, and resolve the connection with this hook's arguments."""
        for form in scrub.forms:
            mask_secret(form)
        return resolve_settings(
            connection,
            self.helpcrunch_conn_id,
            requests_per_minute=self._requests_per_minute,
            timeout=self._timeout,
            max_retries=self._max_retries,
            redis_conn_id=self._redis_conn_id,
        )

    @cached_property
    def rate_limiter(self) -> SlidingWindowRateLimiter:
        """The pacer every request of this hook goes through."""
        settings = self.settings
        shared = None
        if settings.redis_conn_id is not None:
            try:
                shared = self._shared_window(settings, redis_client(settings.redis_conn_id))
            except Exception as err:  # no task fails because of the shared window: it paces on its own
                self._redis_unusable(settings, err, self._scrub)
        return self._pacer(settings, shared)

    def _pacer(self, settings: HelpCrunchSettings, shared: SharedWindow | None) -> SlidingWindowRateLimiter:
        return SlidingWindowRateLimiter(
            settings.requests_per_minute,
            window=self.timing.window,
            clock=self.timing.clock,
            sleep=self.timing.pacer_sleep,
            asleep=self.timing.asleep,
            shared=shared,
            log=self.log,
        )

    def _redis_unusable(self, settings: HelpCrunchSettings, err: Exception, scrub: Scrubber) -> None:
        self.log.warning(
            "Redis connection %r cannot be used (%s: %s); this hook paces on its own.",
            settings.redis_conn_id,
            type(err).__name__,
            scrub.quote(str(err)),
        )

    def _shared_window(self, settings: HelpCrunchSettings, client: Any) -> SharedWindow:
        """Return the account's window in Redis, through ``client`` (sync or async)."""
        self.log.info(
            "Pacing shares the account's window of %d requests per %.0f s through Redis connection %r",
            settings.requests_per_minute,
            self.timing.window,
            settings.redis_conn_id,
        )
        return SharedWindow(
            client,
            account_key(settings.api_key, settings.base_url),
            limit=settings.requests_per_minute,
            window=self.timing.window,
            # an attempt ends within `timeout` (plus a second of slack): its slot frees a window after that
            lease=settings.timeout + 1 + self.timing.window,
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
        arguments = self._client_arguments(self.settings, self.rate_limiter, self._scrub)
        return HelpCrunchClient(sleep=self.timing.sleep, **arguments)

    def _client_arguments(
        self, settings: HelpCrunchSettings, pacer: SlidingWindowRateLimiter, scrub: Scrubber
    ) -> dict[str, Any]:
        """Return what the sync and the async client are built from."""
        mask_secret(f"Bearer {settings.api_key}")
        return {
            "base_url": settings.base_url,
            "api_key": settings.api_key,
            "rate_limiter": pacer,
            "scrub": scrub,
            "timeout": settings.timeout,
            "max_retries": settings.max_retries,
            "retry_backoff": self.retry_backoff,
            "retry_backoff_max": self.retry_backoff_max,
            "rate_limit_wait": self.rate_limit_wait,
            "where": f"Airflow connection {self.helpcrunch_conn_id!r}",
            "clock": self.timing.clock,
            "log": self.log,
        }

    async def aget_client(self) -> AsyncHelpCrunchClient:
        """
        Return a client for an event loop (a trigger's), made without blocking it.

        The connection (and the Redis one, with ``redis_conn_id``) is read asynchronously; the client keeps
        the sync one's promises (:mod:`airflow_provider_helpcrunch.client.async_client`). Close it with
        ``await client.aclose()``.
        """
        connection = await aget_connection(self.helpcrunch_conn_id)
        scrub = _scrubber(connection)
        settings = self._resolve(connection, scrub)
        shared = None
        if settings.redis_conn_id is not None:
            try:
                shared = self._shared_window(settings, await aredis_client(settings.redis_conn_id))
            except Exception as err:  # as on the sync path: the pacer paces on its own
                self._redis_unusable(settings, err, scrub)
        arguments = self._client_arguments(settings, self._pacer(settings, shared), scrub)
        return AsyncHelpCrunchClient(asleep=self.timing.asleep, **arguments)

    def get_conn(self) -> requests.Session:
        """
        Return the client's ``requests.Session``, made once.

        The bearer token as its auth (``~/.netrc`` is never used), no redirects, a connection pool. Requests
        sent through :attr:`client` are also paced, retried, and bounded in time and size.
        """
        return self.client.session

    def close(self) -> None:
        """Close the pooled connections, if a session was made."""
        if "client" in self.__dict__:
            self.client.close()

    # ------------------------------------------------------------------ API calls: the client's

    def mark_chat_read(self, chat_id: int, *, by: ReadBy = "agent", read: bool = True) -> dict[str, Any]:
        """
        Mark one chat read (or unread) by the agent or by the customer.

        :param chat_id: the HelpCrunch chat ID.
        :param by: ``"agent"`` (``PUT /chats/readByAgent``) or ``"customer"`` (``PUT /chats/readByCustomer``).
        :param read: ``False`` marks the chat unread.
        :return: the Chat object HelpCrunch returns, showing the state asked for.
        :raises HelpCrunchNotFoundError: no chat has this ID.
        """
        return self.client.mark_chat_read(chat_id, by=by, read=read)

    def set_chat_status(self, chat_id: int, status: str) -> dict[str, Any]:
        """
        Set one chat's status (``PUT /chats/status``).

        :param chat_id: the HelpCrunch chat ID.
        :param status: ``new``, ``opened``, ``pending``, ``on hold``, ``no communication`` or ``closed``;
            ``on-hold`` and ``onhold`` are read as ``on hold``. ``on hold`` is sent as HelpCrunch's current
            page spells it; if HelpCrunch refuses that as ``invalid_chat_value``, the older ``on-hold`` is
            tried once, and this hook keeps to whichever HelpCrunch took.
        :return: the Chat object HelpCrunch returns, showing the status.
        :raises HelpCrunchNotFoundError: no chat has this ID.
        """
        return self.client.set_chat_status(chat_id, status)

    def set_chat_assignee(self, chat_id: int, assignee: int | None) -> dict[str, Any]:
        """
        Hand one chat to an agent, or unassign it (``PUT /chats/assignee``).

        :param chat_id: the HelpCrunch chat ID.
        :param assignee: the agent's ID; ``None`` unassigns.
        :return: the Chat object HelpCrunch returns, showing the assignee.
        """
        return self.client.set_chat_assignee(chat_id, assignee)

    def set_chat_department(self, chat_id: int, department: int) -> dict[str, Any]:
        """
        Move one chat to a department (``PUT /chats/department``).

        :param chat_id: the HelpCrunch chat ID.
        :param department: the department's ID.
        :return: the Chat object HelpCrunch returns, showing the department.
        """
        return self.client.set_chat_department(chat_id, department)

    def snooze_chat(self, chat_id: int, until: Any) -> dict[str, Any]:
        """
        Snooze one chat until a moment, or unsnooze it (``PUT /chats/snooze``).

        HelpCrunch marks a snoozed chat unread at that moment.

        :param chat_id: the HelpCrunch chat ID.
        :param until: UNIX seconds (an int or a numeric string), a datetime or a pendulum object; ``None``
            unsnoozes. Sent as a string of seconds, as HelpCrunch's current page shows it.
        :return: the Chat object HelpCrunch returns, showing ``snoozedUntil``.
        """
        return self.client.snooze_chat(chat_id, until)

    def get_chat(self, chat_id: int) -> dict[str, Any]:
        """
        Fetch one chat (``GET /chats/{id}``).

        :raises HelpCrunchNotFoundError: no chat has this ID.
        """
        return self.client.get_chat(chat_id)

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
        return self.client.list_chats(sort=sort, order=order, max_chats=max_chats, unread_by=unread_by)

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
        return self.client.search_chats(
            filters, comparison=comparison, sort=sort, order=order, max_chats=max_chats, unread_by=unread_by
        )

    def list_chat_messages(
        self, chat_id: int, *, max_messages: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """
        Yield the messages of one chat, newest first (``GET /chats/{id}/messages``), page by page.

        Stop iterating and no further page is fetched.

        :param chat_id: the HelpCrunch chat ID.
        :param max_messages: stop after this many messages.
        :raises HelpCrunchNotFoundError: no chat has this ID.
        """
        return self.client.list_chat_messages(chat_id, max_messages=max_messages)

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
        return self.client.list_customers(sort=sort, order=order, max_customers=max_customers)

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
            self.client.check()
        except HelpCrunchError as err:
            return False, str(err)
        except Exception as err:  # the UI shows the message; never let a surprise escape as a 500
            return False, f"{type(err).__name__}: {self._scrub.quote(str(err))}"
        return True, f"Connected to HelpCrunch at {self.settings.base_url}"


def _scrubber(connection: Connection) -> Scrubber:
    """Return what takes the connection's API key, as stored and as used, out of text built from outside."""
    raw = connection.password or ""
    return Scrubber(raw, raw.strip())
