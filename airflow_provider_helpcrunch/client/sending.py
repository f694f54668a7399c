"""
Sending one request to HelpCrunch.

Paced, retried, bounded, and turned into a JSON object or a typed error. Each attempt is sent by ``send_once``
(``transport``); ``_judge`` decides what its outcome means; ``request`` paces the attempts and waits between
them.
"""

from __future__ import annotations

import http.client
import random
import sys
import threading
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import requests
from urllib3.exceptions import HTTPError as Urllib3HTTPError
from urllib3.util.retry import Retry

from airflow_provider_helpcrunch import __version__
from airflow_provider_helpcrunch.client.rate_limit import wait_for
from airflow_provider_helpcrunch.client.transport import (
    Answer,
    AttemptTimeout,
    ResponseTooLarge,
    make_session,
    send_once,
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
from airflow_provider_helpcrunch.outside_text import short_repr

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

    from airflow_provider_helpcrunch.client.rate_limit import SlidingWindowRateLimiter
    from airflow_provider_helpcrunch.outside_text import Scrubber

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


@dataclass(frozen=True)
class Timing:
    """
    How a client and its pacer tell time and wait.

    Real time by default; a virtual clock in tests, or a window scaled down against a stand-in.

    :param clock: a monotonic clock, for pacing and for ``rate_limit_wait``.
    :param sleep: how the client waits between attempts (default real time, cut short by a cancel).
    :param pacer_sleep: how the pacer waits for a slot (default real time, cut short by a cancel).
    :param asleep: how the async client and pacer wait (default ``asyncio.sleep``).
    :param window: the length of the account's rate-limit window in seconds (its limit is per minute).
    """

    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], object] | None = None
    pacer_sleep: Callable[[float], object] | None = None
    asleep: Callable[[float], Awaitable[object]] | None = None
    window: float = 60.0


@dataclass(frozen=True)
class _Wait:
    """An attempt's outcome that asks for another: wait ``seconds`` first."""

    seconds: float
    rate_limited: bool  # a 429 (against rate_limit_wait), else a transient failure (against max_retries)
    pause: float = 0.0  # a Retry-After: every caller of the pacer holds this long


#: what one attempt's outcome means: the answer's body (done), a wait before another attempt, or an error.
_Verdict = dict[str, Any] | _Wait | HelpCrunchError


@dataclass
class _Place:
    """
    Where the requests of a ``with client.placed(...)`` block stand.

    A place in the pacer's queue (for the first attempt sent) and the event that cancels them.
    """

    ticket: int | None
    cancel: threading.Event | None


_PLACE: ContextVar[_Place | None] = ContextVar("helpcrunch_place", default=None)


def _first_ticket(place: _Place | None) -> int | None:
    """Return the place's ticket for this attempt: only the first attempt of the block takes it."""
    if place is None:
        return None
    ticket, place.ticket = place.ticket, None
    return ticket


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
    What a client's requests cost so far.

    Attempts sent, 429s met, and the seconds waited on them, for the summary of a task (a run slowed by 429s
    says so, instead of claiming its pace).
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


class SenderBase:
    """
    What the sync and the async clients share: their settings, and the judging of each attempt's outcome.

    Every attempt goes through the pacer, 429s are waited out, transient failures retried, answers bounded
    and judged, the API key scrubbed from every message: by the same rules on both paths.

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

    #: transport failures worth another attempt, those that stop the request, and the timeouts among them.
    retryable_errors: tuple[type[BaseException], ...] = _RETRYABLE_TRANSPORT_ERRORS
    not_retryable_errors: tuple[type[BaseException], ...] = _NOT_RETRYABLE_TRANSPORT_ERRORS
    timeout_errors: tuple[type[BaseException], ...] = (AttemptTimeout, requests.Timeout)

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

    def scrub_text(self, text: str) -> str:
        """Return ``text`` (built from outside) with the API key taken out and its length bounded."""
        return self._scrub.quote(text)

    def _note(self, wait: _Wait) -> None:
        """Count a wait on a 429 in the stats."""
        if wait.rate_limited:
            self.stats.count(rate_limited=1, waited=wait.seconds)

    def _limits(self, max_retries: int | None, rate_limit_wait: float | None) -> tuple[int, float]:
        return (
            self.max_retries if max_retries is None else max_retries,
            self.rate_limit_wait if rate_limit_wait is None else rate_limit_wait,
        )

    def _base_url_not_found(self, err: HelpCrunchError) -> HelpCrunchConfigError:
        """Return the error for a base URL whose ``GET /chats`` answered 404 too: the URL is wrong."""
        return HelpCrunchConfigError(
            f"HelpCrunch's API was not found at {self.base_url} (it answered 404 to GET /chats too): check "
            f"the API base URL of {self._where}",
            status_code=404,
            errors=err.errors,
            errors_left_out=err.errors_left_out,
        )

    def _judge(
        self,
        outcome: Answer | Exception,
        attempts: _Attempts,
        limits: tuple[int, float],
        action: str,
        chat_id: int | None,
    ) -> _Verdict:
        """
        Return what one attempt's outcome means.

        The body, a wait before another attempt, or the error to raise. Logs each wait.
        """
        max_retries, rate_limit_wait = limits
        about = about_chat(chat_id)
        if isinstance(outcome, Exception):
            return self._judge_failure(outcome, attempts, max_retries, action, about, chat_id)
        status = outcome.status
        if 200 <= status < 300:
            self._base_url_answered = True
            return self._json_object(outcome, action, chat_id)
        if 300 <= status < 400:
            return self._redirect_error(outcome, action, about, chat_id)
        if status == 429:
            return self._judge_429(outcome, attempts, rate_limit_wait, action, chat_id)
        if status >= 500:
            return self._judge_5xx(outcome, attempts, max_retries, action, chat_id)
        return self._answer_error(outcome, action, chat_id, attempts.made)

    def _judge_429(
        self, answer: Answer, attempts: _Attempts, rate_limit_wait: float, action: str, chat_id: int | None
    ) -> _Wait | HelpCrunchError:
        """Judge a 429: wait for ``Retry-After`` (else back off) and slow down, within ``rate_limit_wait``."""
        attempts.throttles += 1
        now = self._clock()
        if attempts.throttled_since is None:
            attempts.throttled_since = now
        self.rate_limiter.slow_down()
        retry_after = _retry_after(answer)
        # 0 (or a date in the past) would retry at once: back off instead
        delay = retry_after or self._backoff(attempts.throttles)
        if now - attempts.throttled_since + delay > rate_limit_wait:
            return self._answer_error(answer, action, chat_id, attempts.made)
        self.log.warning(
            "HelpCrunch answered 429 to %s%s; retry in %.1f s (pace now %.0f/min)",
            action,
            about_chat(chat_id),
            delay,
            self.rate_limiter.rate,
        )
        return _Wait(delay, rate_limited=True, pause=retry_after or 0.0)

    def _judge_5xx(
        self, answer: Answer, attempts: _Attempts, max_retries: int, action: str, chat_id: int | None
    ) -> _Wait | HelpCrunchError:
        """Judge a 5xx: back off and try again, up to ``max_retries`` times."""
        attempts.failures += 1
        if attempts.failures > max_retries:
            return self._answer_error(answer, action, chat_id, attempts.made)
        delay = self._backoff(attempts.failures)
        self.log.warning(
            "HelpCrunch answered %d to %s%s; retry %d of %d in %.1f s",
            answer.status,
            action,
            about_chat(chat_id),
            attempts.failures,
            max_retries,
            delay,
        )
        return _Wait(delay, rate_limited=False)

    def _judge_failure(
        self,
        err: Exception,
        attempts: _Attempts,
        max_retries: int,
        action: str,
        about: str,
        chat_id: int | None,
    ) -> _Wait | HelpCrunchError:
        """Judge a transport failure: retried when transient, else (or once out of retries) an error."""
        said = f"{type(err).__name__}: {self._scrub.quote(str(err))}"
        if isinstance(err, ResponseTooLarge):
            return HelpCrunchAPIError(
                f"HelpCrunch's answer to {action}{about} was not read: {said}", chat_id=chat_id
            )
        if isinstance(err, self.not_retryable_errors) or not isinstance(err, self.retryable_errors):
            return HelpCrunchConnectionError(
                f"Could not send {action}{about} to HelpCrunch: {said}", chat_id=chat_id
            )
        attempts.failures += 1
        if attempts.failures > max_retries:
            return HelpCrunchConnectionError(
                f"HelpCrunch did not answer {action}{about} after {attempts.made} attempt(s): {said}",
                chat_id=chat_id,
            )
        delay = self._backoff(attempts.failures)
        kind = "timed out" if isinstance(err, self.timeout_errors) else "failed"
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
        return _Wait(delay, rate_limited=False)

    def _json_object(
        self, answer: Answer, action: str, chat_id: int | None
    ) -> dict[str, Any] | HelpCrunchError:
        """
        Return the body of a 2xx, which must be a JSON object.

        Anything else is an :class:`HelpCrunchAPIError`.
        """
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

    def _cancelled(self, action: str, chat_id: int | None) -> HelpCrunchCancelledError:
        about = about_chat(chat_id)
        return HelpCrunchCancelledError(f"{action}{about} was not sent: cancelled", chat_id=chat_id)

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter: half fixed, half random, capped at ``retry_backoff_max``."""
        ceiling = min(self.retry_backoff_max, self.retry_backoff * 2.0 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


class RequestSender(SenderBase):
    """Requests to HelpCrunch over one ``requests.Session`` (see :class:`SenderBase` for the arguments)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._base_url_check = threading.Lock()

    @cached_property
    def session(self) -> requests.Session:
        """
        The ``requests.Session``, made once.

        The bearer token as its auth (``~/.netrc`` is never used), no redirects, a connection pool.
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
    ) -> dict[str, Any]:
        """
        Send one API request, paced, retried, and turned into a JSON object or a typed error.

        429 waits for ``Retry-After`` when given (otherwise backs off and slows the pace) for up to
        ``rate_limit_wait`` seconds from the first 429; 5xx, timeouts and dropped connections back off
        exponentially with jitter, up to ``max_retries`` times. Every attempt is paced; inside
        :meth:`placed`, the first attempt takes the place given there, and none is sent once its ``cancel``
        is set.
        """
        place = _PLACE.get()
        cancel = place.cancel if place is not None else None
        session = self.session
        url = self.base_url + path
        limits = self._limits(max_retries, rate_limit_wait)
        action = f"{method} {path}"
        attempts = _Attempts()
        while True:
            if not self.rate_limiter.acquire(ticket=_first_ticket(place), cancel=cancel):
                raise self._cancelled(action, chat_id)
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
            verdict = self._judge(outcome, attempts, limits, action, chat_id)
            if isinstance(verdict, dict):
                self.rate_limiter.speed_up()
                return verdict
            if isinstance(verdict, HelpCrunchError):
                if isinstance(verdict, HelpCrunchNotFoundError):
                    self._confirm_base_url()
                raise verdict
            self._note(verdict)
            if verdict.pause:
                self.rate_limiter.pause(verdict.pause)
            wait_for(verdict.seconds, sleep=self._sleep, cancel=cancel)
            if cancel is not None and cancel.is_set():
                raise self._cancelled(action, chat_id)

    @contextmanager
    def placed(self, *, ticket: int | None = None, cancel: threading.Event | None = None) -> Iterator[None]:
        """
        Send the requests of this block (in this thread) from a place in the pacer's queue, under a cancel.

        :param ticket: a place from ``rate_limiter.take_ticket()``, taken by the block's first attempt, so
            that requests leave in the order their tickets were taken; later attempts queue anew.
        :param cancel: when set, no further attempt of the block is sent (:class:`HelpCrunchCancelledError`).
        """
        token = _PLACE.set(_Place(ticket, cancel))
        try:
            yield
        finally:
            _PLACE.reset(token)

    def _confirm_base_url(self) -> None:
        """
        Before a 404 counts as a missing chat.

        Has the base URL ever answered? If not, ask it once (``GET /chats?limit=1``); a 404 there means the
        base URL is wrong, not the chat.
        """
        with self._base_url_check:
            if self._base_url_answered:
                return
            try:
                self.request("GET", "/chats", params={"limit": 1})
            except HelpCrunchError as err:
                if err.status_code != 404:
                    raise
                raise self._base_url_not_found(err) from None


# ---------------------------------------------------------------------- helpers


def _retry_after(answer: Answer) -> float | None:
    """Seconds from a ``Retry-After`` header (seconds or HTTP date), or ``None`` when absent or unreadable."""
    value = answer.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(Retry().parse_retry_after(value)))
    except Exception:
        return None
