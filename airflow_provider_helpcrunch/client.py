"""
The HelpCrunch API client: one request paced, retried and turned into a JSON object or a typed error, and
paging through a list. :class:`~airflow_provider_helpcrunch.hooks.helpcrunch.HelpCrunchHook` builds it from
the Airflow connection, as Airflow's Slack hook builds a ``WebClient``; it knows nothing of Airflow.
"""

from __future__ import annotations

import enum
import http.client
import itertools
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import requests
from urllib3.exceptions import HTTPError as Urllib3HTTPError
from urllib3.util.retry import Retry

from airflow_provider_helpcrunch import __version__
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
from airflow_provider_helpcrunch.outside_text import short_repr
from airflow_provider_helpcrunch.rate_limit import wait_for
from airflow_provider_helpcrunch.transport import (
    Answer,
    AttemptTimeout,
    ResponseTooLarge,
    make_session,
    send_once,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from airflow_provider_helpcrunch.outside_text import Scrubber
    from airflow_provider_helpcrunch.rate_limit import SlidingWindowRateLimiter

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


#: what a summary adds after a 429: the pace the task claims is not the pace it had.
RATE_LIMITED_ADVICE = (
    "HelpCrunch answered 429 (over the account's limit): something else used the same API key meanwhile "
    "(another task, a backfill's parallel runs, another tool). Set redis_conn_id on the connection so that "
    "every task of the account shares one request budget."
)


@dataclass
class RequestStats:
    """
    What a client's requests cost so far: attempts sent, 429s met, and the seconds waited on them, for the
    summary of a task (a run slowed by 429s says so, instead of claiming its pace).
    """

    sent: int = 0
    rate_limited: int = 0
    rate_limit_wait: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, *, sent: int = 0, rate_limited: int = 0, waited: float = 0.0) -> None:
        with self._lock:
            self.sent += sent
            self.rate_limited += rate_limited
            self.rate_limit_wait += waited

    def as_dict(self) -> dict[str, Any]:
        """For XCom: ``{"sent", "rate_limited", "rate_limit_wait_seconds"}``."""
        with self._lock:
            return {
                "sent": self.sent,
                "rate_limited": self.rate_limited,
                "rate_limit_wait_seconds": round(self.rate_limit_wait, 1),
            }

    def describe(self) -> str:
        """``"412 request(s), none answered 429"`` or ``"..., 17 answered 429 (waited 95.0 s on them)"``."""
        with self._lock:
            said = f"{self.sent} request(s), {self.rate_limited or 'none'} answered 429"
            if self.rate_limited:
                said += f" (waited {self.rate_limit_wait:.1f} s on them)"
            return said


class HelpCrunchClient:
    """
    HelpCrunch's REST API v1 over one ``requests.Session``: every attempt through the pacer, 429s waited out,
    transient failures retried, answers bounded and judged, the API key scrubbed from every message.

    :param base_url: the canonical API base URL (``connection.base_url``).
    :param api_key: the bearer token.
    :param rate_limiter: the pacer every attempt goes through.
    :param scrub: takes the API key out of any text built from outside.
    :param timeout: seconds one attempt may take in all, the whole answer read.
    :param max_retries: retries of one request after a 5xx, a timeout or a dropped connection.
    :param retry_backoff: first wait in seconds before a retry with no ``Retry-After``; doubled each retry.
    :param retry_backoff_max: the longest wait between two retries, in seconds.
    :param rate_limit_wait: how long one request may wait out 429s, in seconds, from its first 429.
    :param where: names the settings' source in errors, e.g. ``"Airflow connection 'helpcrunch_default'"``.
    :param clock: a monotonic clock for ``rate_limit_wait``.
    :param sleep: how to wait between attempts (default: real time, cut short by a cancel).
    :param log: where to say what is waited for and retried.
    """

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        rate_limiter: SlidingWindowRateLimiter,
        scrub: Scrubber,
        timeout: float,
        max_retries: int,
        retry_backoff: float = 1.0,
        retry_backoff_max: float = 60.0,
        rate_limit_wait: float = 300.0,
        where: str = "the connection",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] | None = None,
        log: Any,
    ) -> None:
        self.base_url = base_url
        self._api_key = api_key
        self.rate_limiter = rate_limiter
        self._scrub = scrub
        self.timeout = timeout
        self.max_retries = max_retries
        self.retry_backoff = retry_backoff
        self.retry_backoff_max = retry_backoff_max
        self.rate_limit_wait = rate_limit_wait
        self._where = where
        self._clock = clock
        self._sleep = sleep
        self.log = log
        self.stats = RequestStats()
        # A 404 counts as a missing chat only once the base URL has been seen to answer.
        self._base_url_answered = False
        self._base_url_check = threading.Lock()

    @cached_property
    def session(self) -> requests.Session:
        """
        The ``requests.Session``, made once: the bearer token as its auth (``~/.netrc`` is never used), no
        redirects, a connection pool.
        """
        return make_session(
            token=self._api_key,
            headers={
                "Accept": "application/json",
                "User-Agent": f"airflow-provider-helpcrunch/{__version__}",
            },
            pool_size=MAX_CONNECTIONS,
        )

    def close(self) -> None:
        """Close the pooled connections, if a session was made."""
        session = self.__dict__.pop("session", None)
        if session is not None:
            session.close()

    # ------------------------------------------------------------------ paging

    def paginate(
        self,
        fetch: Callable[[int, int], Any],
        max_items: int | None,
        action: str,
        keep: Callable[[dict[str, Any]], bool] | None = None,
        *,
        kind: str = "chat",
        list_keys: tuple[str, ...] = ("data",),
    ) -> Iterator[dict[str, Any]]:
        """
        Yield items (chats, messages, customers) page by page, by offset, until a short or empty page (the
        total alone is not trusted: items come and go while we page). An item seen on an earlier page is not
        yielded twice; with ``keep``, only the items it keeps are yielded and count toward ``max_items``.
        Pages are fetched as the items are consumed: stop iterating, and no further page is fetched.

        Offset paging is safe for a list that items only join at the front (a chat's messages, newest
        first): a shift makes a repeat, never a gap. For a list that items can leave, page by key
        (:meth:`paginate_by_key`).

        :param kind: what the items are, for messages.
        :param list_keys: where a page holds its items (the first that is a list).
        """
        out = _Yield(max_items, keep)
        offset = 0
        while not out.full:
            limit = PAGE_SIZE if keep is not None else min(PAGE_SIZE, out.wanted)
            data = self._page_items(fetch(offset, limit), action, offset, kind, list_keys)
            yield from out.take(data)
            if len(data) < limit:
                return
            offset += len(data)

    def paginate_by_key(
        self,
        fetch: Callable[[list[dict[str, Any]], int, int], Any],
        *,
        key_field: str,
        key: Callable[[dict[str, Any]], int],
        descending: bool,
        action: str,
        max_items: int | None = None,
        keep: Callable[[dict[str, Any]], bool] | None = None,
        kind: str = "chat",
    ) -> Iterator[dict[str, Any]]:
        """
        Yield the items of a search sorted on an immutable key (a chat's ``createdAt``), paging on the key
        rather than by offset: each page asks for the items from the last key read on (``>=``, or ``<=``
        descending) with ``fetch(key_filters, 0, 100)``. An item that leaves the result while we page
        shifts nothing, so no item that matched all along is missed; items read twice are yielded once.

        A run of equal keys longer than a page (more than 100 chats created in one second) is read by offset
        within that key (``=``), pass after pass until a pass finds nothing new, then paging goes on past
        the key.

        :param fetch: sends one page request: the key filters to add to the search's own, offset, limit.
        :param key_field: the field to filter on, e.g. ``"chats.createdAt"``.
        :param key: an item's key, as the filter compares it (whole seconds); ``ValueError`` when it has none.
        :param descending: the sort order the search asks for.
        """
        out = _Yield(max_items, keep)
        bound: int | None = None
        while not out.full:
            given = [] if bound is None else [_key_filter(key_field, "<=" if descending else ">=", bound)]
            data = self._page_items(fetch(given, 0, PAGE_SIZE), action, 0, kind)
            try:
                keys = [key(item) for item in data]
            except ValueError as err:
                raise HelpCrunchAPIError(
                    f"HelpCrunch answered {action} with {self._scrub(str(err))}"
                ) from None
            self._check_order(keys, bound, descending, action)
            yield from out.take(data)
            if len(data) < PAGE_SIZE:
                return
            if bound is not None and keys[-1] == bound:  # the whole page is one key: read its run apart
                yield from self._key_run(fetch, out, key_field, bound, action, kind)
                bound = bound - 1 if descending else bound + 1
            else:
                bound = keys[-1]

    def _key_run(
        self,
        fetch: Callable[[list[dict[str, Any]], int, int], Any],
        out: _Yield,
        key_field: str,
        value: int,
        action: str,
        kind: str,
    ) -> Iterator[dict[str, Any]]:
        """Every item whose key is ``value``, by offset, pass after pass until a pass finds nothing new."""
        for _ in range(MAX_KEY_RUN_PASSES):
            before = out.found
            offset = 0
            while not out.full:
                data = self._page_items(
                    fetch([_key_filter(key_field, "=", value)], offset, PAGE_SIZE), action, offset, kind
                )
                yield from out.take(data)
                if len(data) < PAGE_SIZE:
                    break
                offset += len(data)
            if out.full or out.found == before:
                return
        raise HelpCrunchAPIError(
            f"HelpCrunch answered {action} for {key_field} = {value} with new {kind}s on each of "
            f"{MAX_KEY_RUN_PASSES} passes (over {PAGE_SIZE} {kind}s share that key and keep changing): "
            "no complete read of them could be made; try again later"
        )

    def _check_order(self, keys: list[int], bound: int | None, descending: bool, action: str) -> None:
        """Paging by key relies on HelpCrunch's sort: a page out of order is its error, not a guess."""
        known = keys if bound is None else [bound, *keys]
        steps = list(itertools.pairwise(known))
        if any((later > earlier) if descending else (later < earlier) for earlier, later in steps):
            direction = "descending" if descending else "ascending"
            raise HelpCrunchAPIError(
                f"HelpCrunch answered {action} with a page not sorted {direction} by the key asked for "
                f"(keys {short_repr(keys)} after {bound}): it cannot be paged safely"
            )

    def _page_items(
        self,
        body: Any,
        action: str,
        offset: int,
        kind: str = "chat",
        list_keys: tuple[str, ...] = ("data",),
    ) -> list[dict[str, Any]]:
        """A page's items, each checked to be an object with an int ``id``."""
        data = next((body[key] for key in list_keys if isinstance(body.get(key), list)), None)
        if data is None:
            where = " or ".join(repr(key) for key in list_keys)
            raise HelpCrunchAPIError(
                f"HelpCrunch answered {action} without a {where} list: {self._scrub.quote(short_repr(body))}"
            )
        self.log.debug(
            "%s offset %d: %d %s(s) of %s",
            action,
            offset,
            len(data),
            kind,
            _total(body) or "an unknown total",
        )
        for item in data:
            item_id = item.get("id") if isinstance(item, dict) else None
            if isinstance(item_id, bool) or not isinstance(item_id, int):
                raise HelpCrunchAPIError(
                    f"HelpCrunch answered {action} with an entry that is not a {kind} with an id: "
                    f"{self._scrub.quote(short_repr(item))}"
                )
        return data

    # ------------------------------------------------------------------ requests
    # One attempt is sent by ``send_once`` (transport.py); ``_judge`` decides what its outcome means;
    # ``request`` paces the attempts and waits between them.

    def request(
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
        session = self.session
        url = self.base_url + path
        limits = (
            self.max_retries if max_retries is None else max_retries,
            self.rate_limit_wait if rate_limit_wait is None else rate_limit_wait,
        )
        action = f"{method} {path}"
        attempts = _Attempts()
        while True:
            if not self.rate_limiter.acquire(ticket=ticket, cancel=cancel):
                raise self._cancelled(action, chat_id)
            ticket = None
            attempts.made += 1
            self.stats.count(sent=1)
            outcome: Answer | Exception
            try:
                outcome = send_once(
                    session,
                    method,
                    url,
                    json=json,
                    params=params,
                    timeout=self.timeout,
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
            if verdict is _Verdict.WAIT:
                self.stats.count(rate_limited=1, waited=result)
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
                target = urlsplit(urljoin(self.base_url + "/", location)).hostname or "an unknown host"
            except ValueError:
                target = "an unreadable location"
            where = f"to {self._scrub.quote(target, 100)}"
        else:
            where = "without a Location"
        return HelpCrunchAPIError(
            f"HelpCrunch answered {answer.status} to {action}{about}, a redirect {where}; it was not "
            f"followed (HelpCrunch's API does not redirect): check the connection's API base URL "
            f"{self.base_url}",
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
                self.request("GET", "/chats", params={"limit": 1}, cancel=cancel)
            except HelpCrunchError as err:
                if err.status_code != 404:
                    raise
                raise HelpCrunchConfigError(
                    f"HelpCrunch's API was not found at {self.base_url} (it answered 404 to "
                    f"GET /chats too): check the API base URL of {self._where}",
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

#: passes over a run of equal keys longer than a page before paging gives up (each pass found new items).
MAX_KEY_RUN_PASSES = 10


class _Yield:
    """What a paging has yielded: each item once, those ``keep`` keeps, up to ``max_items``."""

    def __init__(self, max_items: int | None, keep: Callable[[dict[str, Any]], bool] | None) -> None:
        self.max_items = max_items
        self.keep = keep
        self.seen: set[int] = set()
        self.yielded = 0

    @property
    def found(self) -> int:
        return len(self.seen)

    @property
    def wanted(self) -> int:
        return PAGE_SIZE if self.max_items is None else self.max_items - self.yielded

    @property
    def full(self) -> bool:
        return self.max_items is not None and self.yielded >= self.max_items

    def take(self, data: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for item in data:
            if self.full:
                return
            if item["id"] in self.seen:
                continue
            self.seen.add(item["id"])
            if self.keep is not None and not self.keep(item):
                continue
            self.yielded += 1
            yield item


def _key_filter(field_name: str, operator: str, value: int) -> dict[str, Any]:
    return {"field": field_name, "operator": operator, "value": value}


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
