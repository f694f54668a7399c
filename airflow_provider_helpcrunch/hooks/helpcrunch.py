"""Hook for the HelpCrunch REST API v1."""

from __future__ import annotations

import enum
import http.client
import random
import sys
import threading
import time
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import requests
from airflow.providers.common.compat.sdk import AirflowNotFoundException, BaseHook, mask_secret
from urllib3.exceptions import HTTPError as Urllib3HTTPError
from urllib3.util.retry import Retry

from airflow_provider_helpcrunch import __version__
from airflow_provider_helpcrunch.connection import (
    CONN_TYPE,
    DEFAULT_CONN_ID,
    HelpCrunchSettings,
    connection_form_widgets,
    resolve_settings,
    ui_field_behaviour,
)
from airflow_provider_helpcrunch.exceptions import (
    HelpCrunchAPIError,
    HelpCrunchCancelledError,
    HelpCrunchConfigError,
    HelpCrunchConnectionError,
    HelpCrunchError,
    HelpCrunchNotFoundError,
    about_chat,
    error_from_answer,
)
from airflow_provider_helpcrunch.filters import check_sort, normalize_filters
from airflow_provider_helpcrunch.outside_text import Scrubber, short_repr
from airflow_provider_helpcrunch.rate_limit import SlidingWindowRateLimiter, wait_for
from airflow_provider_helpcrunch.search_fields import COMPARISONS
from airflow_provider_helpcrunch.shared_window import SharedWindow, account_key, redis_client
from airflow_provider_helpcrunch.transport import (
    Answer,
    AttemptTimeout,
    ResponseTooLarge,
    make_session,
    send_once,
)
from airflow_provider_helpcrunch.validation import (
    READ_FIELDS,
    ReadBy,
    check_by,
    check_chat_id,
    check_max_chats,
    check_read,
    check_unread_by,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from airflow.providers.common.compat.sdk import Connection

READ_ENDPOINTS: dict[str, str] = {"agent": "/chats/readByAgent", "customer": "/chats/readByCustomer"}
PAGE_SIZE = 100  # HelpCrunch's maximum page

# Transport failures worth another attempt: the PUTs are idempotent, so a request that may have reached
# HelpCrunch before the connection broke is safe to repeat. A TLS failure is not transient.
_RETRYABLE_TRANSPORT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    Urllib3HTTPError,
    ConnectionError,
    TimeoutError,
)
# Everything a transport failure may surface as; anything here that is not retryable stops the request.
_TRANSPORT_ERRORS = (requests.RequestException, Urllib3HTTPError, http.client.HTTPException, OSError)
_NOT_RETRYABLE_TRANSPORT_ERRORS = (requests.exceptions.SSLError, requests.exceptions.InvalidURL)
#: the most bytes of one answer the hook reads; HelpCrunch's largest (a page of 100 chats) is far smaller.
MAX_RESPONSE_BYTES = 4 * 1024 * 1024
#: the pool's size: room for MarkChatReadOperator's largest max_in_flight.
MAX_CONNECTIONS = 32


class _Verdict(enum.Enum):
    """What one attempt's outcome means for the request."""

    DONE = "done"  # the answer is the result
    WAIT = "wait"  # rate-limited: wait, then try again (counted against rate_limit_wait)
    RETRY = "retry"  # a transient failure: back off, then try again (counted against max_retries)
    STOP = "stop"  # an error to raise


@dataclass
class _Attempts:
    """The running account of one request's attempts."""

    made: int = 0
    failures: int = 0  # 5xx and transport failures, against max_retries
    throttles: int = 0  # 429s
    throttled_since: float | None = None  # clock time of the first 429


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

    #: the length of the rate-limit window in seconds (the limit is per minute).
    rate_limit_window = 60.0

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
        self._clock = clock
        self._sleep = sleep
        self._given_rate_limiter = rate_limiter
        # A 404 counts as a missing chat only once the base URL has been seen to answer.
        self._base_url_answered = False
        self._base_url_check = threading.Lock()

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

    def get_conn(self) -> requests.Session:
        """
        Return the hook's ``requests.Session``, made once: the bearer token as its auth (``~/.netrc`` is
        never used), no redirects, a connection pool, and answers bounded in time and size.
        """
        return self._session

    @cached_property
    def _session(self) -> requests.Session:
        settings = self.settings
        mask_secret(f"Bearer {settings.api_key}")
        return make_session(
            token=settings.api_key,
            headers={
                "Accept": "application/json",
                "User-Agent": f"airflow-provider-helpcrunch/{__version__}",
            },
            pool_size=MAX_CONNECTIONS,
        )

    def close(self) -> None:
        """Close the pooled connections, if a session was made."""
        session = self.__dict__.pop("_session", None)
        if session is not None:
            session.close()

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
        action = f"PUT {READ_ENDPOINTS[by]}"
        chat = self._request(
            "PUT",
            READ_ENDPOINTS[by],
            json={"id": chat_id, "read": read},
            chat_id=chat_id,
            cancel=cancel,
            ticket=ticket,
        )
        # A 200 that shows another chat, or the chat not in the state asked for, did not do what was asked.
        field_name = READ_FIELDS[by]
        if "id" in chat and chat["id"] != chat_id:
            raise HelpCrunchAPIError(
                f"HelpCrunch answered {action} for chat {chat_id} with chat {short_repr(chat['id'])}",
                status_code=200,
                chat_id=chat_id,
            )
        if isinstance(chat.get(field_name), bool) and chat[field_name] is not read:
            raise HelpCrunchAPIError(
                f"HelpCrunch answered {action} for chat {chat_id} with 200, but the chat it returned has "
                f"{field_name}={chat[field_name]}, not {read}",
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
        return self._request("GET", f"/chats/{chat_id}", chat_id=chat_id)

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
            return self._request("GET", "/chats", params={k: v for k, v in params.items() if v is not None})

        return self._paginate(fetch, max_chats, "GET /chats", keep)

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
        Chats matching ``filters``, page by page (``POST /chats/search``), as a generator of Chat dicts.

        Filters are checked before anything is sent; timestamps may be ints, numeric strings, datetimes
        or pendulum objects.

        :param filters: a list of ``{"field": ..., "operator": ..., "value": ...}`` dicts or
            ``(field, operator, value)`` tuples, e.g. ``("closedAt", "<", 1700000000)``.
        :param comparison: ``"AND"`` (every filter) or ``"OR"`` (any filter).
        :param sort: as for :meth:`list_chats`.
        :param order: ``"asc"`` or ``"desc"``.
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

        def fetch(offset: int, limit: int) -> Any:
            body: dict[str, Any] = {
                "filter": checked,
                "comparison": comparison,
                "offset": offset,
                "limit": limit,
            }
            if sort:
                body["sort"] = sort
            if order:
                body["order"] = order
            return self._request("POST", "/chats/search", json=body)

        return self._paginate(fetch, max_chats, "POST /chats/search", keep)

    def _paginate(
        self,
        fetch: Callable[[int, int], Any],
        max_chats: int | None,
        action: str,
        keep: Callable[[dict[str, Any]], bool] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """
        Yield chats page by page until a short or empty page (the total alone is not trusted: chats
        come and go while we page). A chat seen on an earlier page is not yielded twice; with ``keep``,
        only the chats it keeps are yielded and count toward ``max_chats``.
        """
        seen: set[int] = set()
        yielded = 0
        offset = 0
        while True:
            wanted = PAGE_SIZE if max_chats is None else max_chats - yielded
            limit = PAGE_SIZE if keep is not None else min(PAGE_SIZE, wanted)
            if wanted <= 0:
                return
            body = fetch(offset, limit)
            data = body.get("data")
            if not isinstance(data, list):
                raise HelpCrunchAPIError(
                    f"HelpCrunch answered {action} without a 'data' list: "
                    f"{self._scrub.quote(short_repr(body))}"
                )
            self.log.debug(
                "%s offset %d: %d chat(s) of %s",
                action,
                offset,
                len(data),
                _total(body) or "an unknown total",
            )
            for chat in data:
                chat_id = chat.get("id") if isinstance(chat, dict) else None
                if isinstance(chat_id, bool) or not isinstance(chat_id, int):
                    raise HelpCrunchAPIError(
                        f"HelpCrunch answered {action} with an entry that is not a chat with an id: "
                        f"{self._scrub.quote(short_repr(chat))}"
                    )
                if chat_id in seen:
                    continue
                seen.add(chat_id)
                if keep is not None and not keep(chat):
                    continue
                yield chat
                yielded += 1
                if max_chats is not None and yielded >= max_chats:
                    return
            if len(data) < limit:
                return
            offset += len(data)

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
            self._request("GET", "/chats", params={"limit": 1}, max_retries=0, rate_limit_wait=0.0)
        except HelpCrunchError as err:
            return False, str(err)
        except Exception as err:  # the UI shows the message; never let a surprise escape as a 500
            return False, f"{type(err).__name__}: {self._scrub.quote(str(err))}"
        return True, f"Connected to HelpCrunch at {self.settings.base_url}"

    # ------------------------------------------------------------------ transport
    # One attempt is sent by ``send_once`` (transport.py); ``_judge`` decides what its outcome means;
    # ``_request`` paces the attempts and waits between them.

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        chat_id: int | None = None,
        max_retries: int | None = None,
        rate_limit_wait: float | None = None,
        cancel: threading.Event | None = None,
        ticket: int | None = None,
    ) -> dict[str, Any]:
        """
        Send one API request, paced, retried, and turned into a JSON object or a typed error.

        429 waits for ``Retry-After`` when given (otherwise backs off and slows the pace) for up to
        ``rate_limit_wait`` seconds from the first 429; 5xx, timeouts and dropped connections back off
        exponentially with jitter, up to ``max_retries`` times. Every attempt is paced, and no attempt is
        sent once ``cancel`` is set.
        """
        settings = self.settings
        session = self.get_conn()
        url = settings.base_url + path
        limits = (
            settings.max_retries if max_retries is None else max_retries,
            self.rate_limit_wait if rate_limit_wait is None else rate_limit_wait,
        )
        action = f"{method} {path}"
        attempts = _Attempts()
        while True:
            if not self.rate_limiter.acquire(ticket=ticket, cancel=cancel):
                raise self._cancelled(action, chat_id)
            ticket = None
            attempts.made += 1
            outcome: Answer | Exception
            try:
                outcome = send_once(
                    session,
                    method,
                    url,
                    json=json,
                    params=params,
                    timeout=settings.timeout,
                    max_body_bytes=MAX_RESPONSE_BYTES,
                )
            except _TRANSPORT_ERRORS as err:
                outcome = err
            finally:
                self.rate_limiter.release()
            verdict, result = self._judge(outcome, attempts, limits, action, chat_id)
            if verdict is _Verdict.DONE:
                self.rate_limiter.speed_up()
                return result
            if verdict is _Verdict.STOP:
                if isinstance(result, HelpCrunchNotFoundError):
                    self._confirm_base_url(cancel)
                raise result
            wait_for(result, sleep=self._sleep, cancel=cancel)
            if cancel is not None and cancel.is_set():
                raise self._cancelled(action, chat_id)

    def _judge(
        self,
        outcome: Answer | Exception,
        attempts: _Attempts,
        limits: tuple[int, float],
        action: str,
        chat_id: int | None,
    ) -> tuple[_Verdict, Any]:
        """
        What one attempt's outcome means: ``DONE`` with the body, ``WAIT`` or ``RETRY`` with the seconds
        to wait first, or ``STOP`` with the error to raise. Logs each wait.
        """
        max_retries, rate_limit_wait = limits
        about = about_chat(chat_id)
        if isinstance(outcome, Exception):
            return self._judge_failure(outcome, attempts, max_retries, action, about, chat_id)
        status = outcome.status
        if 200 <= status < 300:
            self._base_url_answered = True
            body = self._json_object(outcome, action, chat_id)
            return (_Verdict.STOP if isinstance(body, HelpCrunchError) else _Verdict.DONE), body
        if 300 <= status < 400:
            return _Verdict.STOP, self._redirect_error(outcome, action, about, chat_id)
        if status == 429:
            attempts.throttles += 1
            now = self._clock()
            if attempts.throttled_since is None:
                attempts.throttled_since = now
            self.rate_limiter.slow_down()
            retry_after = _retry_after(outcome)
            # 0 (or a date in the past) would retry at once: back off instead
            delay = retry_after or self._backoff(attempts.throttles)
            if now - attempts.throttled_since + delay > rate_limit_wait:
                return _Verdict.STOP, self._answer_error(outcome, action, chat_id, attempts.made)
            if retry_after:
                self.rate_limiter.pause(retry_after)
            self.log.warning(
                "HelpCrunch answered 429 to %s%s; retry in %.1f s (pace now %.0f/min)",
                action,
                about,
                delay,
                self.rate_limiter.rate,
            )
            return _Verdict.WAIT, delay
        if status >= 500:
            attempts.failures += 1
            if attempts.failures > max_retries:
                return _Verdict.STOP, self._answer_error(outcome, action, chat_id, attempts.made)
            delay = self._backoff(attempts.failures)
            self.log.warning(
                "HelpCrunch answered %d to %s%s; retry %d of %d in %.1f s",
                status,
                action,
                about,
                attempts.failures,
                max_retries,
                delay,
            )
            return _Verdict.RETRY, delay
        return _Verdict.STOP, self._answer_error(outcome, action, chat_id, attempts.made)

    def _judge_failure(
        self,
        err: Exception,
        attempts: _Attempts,
        max_retries: int,
        action: str,
        about: str,
        chat_id: int | None,
    ) -> tuple[_Verdict, Any]:
        """A transport failure: retried when transient, else (or once out of retries) an error."""
        said = f"{type(err).__name__}: {self._scrub.quote(str(err))}"
        if isinstance(err, ResponseTooLarge):
            return _Verdict.STOP, HelpCrunchAPIError(
                f"HelpCrunch's answer to {action}{about} was not read: {said}", chat_id=chat_id
            )
        if isinstance(err, _NOT_RETRYABLE_TRANSPORT_ERRORS) or not isinstance(
            err, _RETRYABLE_TRANSPORT_ERRORS
        ):
            return _Verdict.STOP, HelpCrunchConnectionError(
                f"Could not send {action}{about} to HelpCrunch: {said}", chat_id=chat_id
            )
        attempts.failures += 1
        if attempts.failures > max_retries:
            return _Verdict.STOP, HelpCrunchConnectionError(
                f"HelpCrunch did not answer {action}{about} after {attempts.made} attempt(s): {said}",
                chat_id=chat_id,
            )
        delay = self._backoff(attempts.failures)
        kind = "timed out" if isinstance(err, (AttemptTimeout, requests.Timeout)) else "failed"
        self.log.warning(
            "%s%s %s (%s); retry %d of %d in %.1f s",
            action,
            about,
            kind,
            type(err).__name__,
            attempts.failures,
            max_retries,
            delay,
        )
        return _Verdict.RETRY, delay

    def _json_object(self, answer: Answer, action: str, chat_id: int | None) -> Any:
        """The body of a 2xx, which must be a JSON object; anything else is an :class:`HelpCrunchAPIError`."""
        problem = None
        try:
            body = answer.json()
        except RecursionError:
            problem = f"a JSON body nested too deeply to read (over about {sys.getrecursionlimit()} levels)"
        except ValueError:
            text = answer.text
            problem = (
                f"a body that is not JSON: {self._scrub.quote(text)!r}" if text.strip() else "an empty body"
            )
        else:
            if isinstance(body, dict):
                return body
            problem = f"JSON that is not an object: {self._scrub.quote(short_repr(body))}"
        about = about_chat(chat_id)
        return HelpCrunchAPIError(
            f"HelpCrunch answered {answer.status} to {action}{about} with {problem}",
            status_code=answer.status,
            chat_id=chat_id,
        )

    def _redirect_error(
        self, answer: Answer, action: str, about: str, chat_id: int | None
    ) -> HelpCrunchError:
        location = answer.headers.get("Location")
        if location:
            try:
                target = (
                    urlsplit(urljoin(self.settings.base_url + "/", location)).hostname or "an unknown host"
                )
            except ValueError:
                target = "an unreadable location"
            where = f"to {self._scrub.quote(target, 100)}"
        else:
            where = "without a Location"
        return HelpCrunchAPIError(
            f"HelpCrunch answered {answer.status} to {action}{about}, a redirect {where}; it was not "
            f"followed (HelpCrunch's API does not redirect): check the connection's API base URL "
            f"{self.settings.base_url}",
            status_code=answer.status,
            chat_id=chat_id,
        )

    def _answer_error(
        self, answer: Answer, action: str, chat_id: int | None, attempts: int
    ) -> HelpCrunchError:
        try:
            body = answer.json()
        except (ValueError, RecursionError):
            body = None
        return error_from_answer(
            answer.status,
            body=body,
            text=answer.text,
            action=action,
            scrub=self._scrub,
            chat_id=chat_id,
            attempts=attempts,
        )

    def _confirm_base_url(self, cancel: threading.Event | None) -> None:
        """
        Before a 404 counts as a missing chat: has the base URL ever answered? If not, ask it once
        (``GET /chats?limit=1``); a 404 there means the base URL is wrong, not the chat.
        """
        with self._base_url_check:
            if self._base_url_answered:
                return
            try:
                self._request("GET", "/chats", params={"limit": 1}, cancel=cancel)
            except HelpCrunchError as err:
                if err.status_code != 404:
                    raise
                raise HelpCrunchConfigError(
                    f"HelpCrunch's API was not found at {self.settings.base_url} (it answered 404 to "
                    f"GET /chats too): check the API base URL of Airflow connection "
                    f"{self.helpcrunch_conn_id!r}",
                    status_code=404,
                    errors=err.errors,
                    errors_left_out=err.errors_left_out,
                ) from None

    def _cancelled(self, action: str, chat_id: int | None) -> HelpCrunchCancelledError:
        about = about_chat(chat_id)
        return HelpCrunchCancelledError(f"{action}{about} was not sent: cancelled", chat_id=chat_id)

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter: half fixed, half random, capped at ``retry_backoff_max``."""
        ceiling = min(self.retry_backoff_max, self.retry_backoff * 2 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


# ---------------------------------------------------------------------- helpers


def unread_filter(unread_by: ReadBy | None) -> Callable[[dict[str, Any]], bool] | None:
    """
    What ``unread_by`` keeps: the chats not read by the agent (or customer) yet. A chat that does not say
    (no such field, or not a bool) is kept: better marked again than left unread.
    """
    if unread_by is None:
        return None
    field_name = READ_FIELDS[unread_by]
    return lambda chat: chat.get(field_name) is not True


def _total(body: dict[str, Any]) -> int | None:
    """The result total, read as ``meta.total`` or as a top-level ``total`` (both are seen)."""
    meta = body.get("meta")
    total = meta.get("total") if isinstance(meta, dict) else body.get("total")
    return total if isinstance(total, int) else None


def _retry_after(answer: Answer) -> float | None:
    """Seconds from a ``Retry-After`` header (seconds or HTTP date), or ``None`` when absent or unreadable."""
    value = answer.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, Retry().parse_retry_after(value))
    except Exception:
        return None
