"""Hook for the HelpCrunch REST API v1."""

from __future__ import annotations

import ipaddress
import random
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit, urlunsplit

import requests
from airflow.providers.common.compat.sdk import BaseHook, mask_secret
from requests.adapters import HTTPAdapter
from urllib3.exceptions import HTTPError as Urllib3HTTPError
from urllib3.util.retry import Retry

from airflow_provider_helpcrunch import CONNECTION_EXTRA_FIELDS, DEFAULT_BASE_URL, __version__
from airflow_provider_helpcrunch.exceptions import (
    HelpCrunchAPIError,
    HelpCrunchConfigError,
    HelpCrunchConnectionError,
    HelpCrunchError,
    error_from_response,
)
from airflow_provider_helpcrunch.filters import check_max_chats, check_sort, normalize_filters
from airflow_provider_helpcrunch.rate_limit import SlidingWindowRateLimiter
from airflow_provider_helpcrunch.search_fields import COMPARISONS

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

ReadBy = Literal["agent", "customer"]
READ_ENDPOINTS: dict[str, str] = {"agent": "/chats/readByAgent", "customer": "/chats/readByCustomer"}
PAGE_SIZE = 100  # HelpCrunch's maximum page

# Transport failures worth another attempt: the PUTs are idempotent, so a request that may have reached
# HelpCrunch before the connection broke is safe to repeat. A TLS failure is not transient.
_RETRYABLE_TRANSPORT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)
_NOT_RETRYABLE_TRANSPORT_ERRORS = (requests.exceptions.SSLError, requests.exceptions.InvalidURL)


@dataclass(frozen=True)
class HelpCrunchSettings:
    """What the hook resolved from the connection and its own arguments."""

    base_url: str
    api_key: str = field(repr=False)
    requests_per_minute: int
    timeout: float
    max_retries: int


class HelpCrunchHook(BaseHook):
    """
    Interact with the HelpCrunch REST API v1, paced under the account's request limit.

    The connection holds the API key (``password``), the API base URL (``host``, default
    ``https://api.helpcrunch.com/v1``) and, in its extras, ``requests_per_minute``, ``timeout`` and
    ``max_retries``. Each of those can also be passed here, which wins over the extra.

    :param helpcrunch_conn_id: the Airflow connection with the API key.
    :param requests_per_minute: the most requests this hook sends in any 60 s (default 120, the account
        limit).
    :param timeout: seconds to wait to connect and for each response (default 30).
    :param max_retries: retries of one request after a 5xx, a timeout or a dropped connection (default 5).
    :param retry_backoff: first wait in seconds before a retry when the server gives no ``Retry-After``;
        doubled at each further retry, plus jitter (default 1).
    :param retry_backoff_max: the longest wait between two retries, in seconds (default 60).
    :param rate_limit_wait: how long one request may wait out 429s, in seconds, before it fails with
        :class:`HelpCrunchRateLimitError` (default 300). 429s do not count against ``max_retries``: the
        limit is shared by everything that uses the key, and waiting is the answer to it.
    """

    conn_name_attr = "helpcrunch_conn_id"
    default_conn_name = "helpcrunch_default"
    conn_type = "helpcrunch"
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
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.helpcrunch_conn_id = helpcrunch_conn_id
        self._requests_per_minute = requests_per_minute
        self._timeout = timeout
        self._max_retries = max_retries
        self.retry_backoff = retry_backoff
        self.retry_backoff_max = retry_backoff_max
        self.rate_limit_wait = rate_limit_wait
        self._sleep: Callable[[float], object] = time.sleep

    # ------------------------------------------------------------------ connection form (Airflow < 3.2)
    # From Airflow 3.2 the form comes from ``get_provider_info()``; these two serve older versions.

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields of the connection form (Airflow 2.11 to 3.1)."""
        from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
        from flask_babel import lazy_gettext
        from wtforms import IntegerField
        from wtforms.validators import NumberRange, Optional

        return {
            name: IntegerField(
                lazy_gettext(label),
                description=description,
                validators=[Optional(), NumberRange(min=minimum)],
                widget=BS3TextFieldWidget(),
                default=default,
            )
            for name, (label, description, default, minimum) in CONNECTION_EXTRA_FIELDS.items()
        }

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Relabel, hide and fill in the standard fields of the connection form (Airflow 2.11 to 3.1)."""
        from airflow_provider_helpcrunch import get_provider_info

        behaviour = get_provider_info()["connection-types"][0]["ui-field-behaviour"]
        return {
            "hidden_fields": behaviour["hidden-fields"],
            "relabeling": behaviour["relabeling"],
            "placeholders": behaviour["placeholders"],
        }

    # ------------------------------------------------------------------ settings and session

    @cached_property
    def settings(self) -> HelpCrunchSettings:
        """The connection resolved and checked; raises :class:`HelpCrunchConfigError` when unusable."""
        conn = self.get_connection(self.helpcrunch_conn_id)
        where = f"Airflow connection {self.helpcrunch_conn_id!r}"
        api_key = (conn.password or "").strip()
        if not api_key:
            raise HelpCrunchConfigError(
                f"{where} has no API key: put the HelpCrunch public API key in its password field."
            )
        mask_secret(api_key)
        extra = conn.extra_dejson
        return HelpCrunchSettings(
            base_url=_base_url(conn.host, conn.port, where),
            api_key=api_key,
            requests_per_minute=_setting("requests_per_minute", self._requests_per_minute, extra, where),
            timeout=_setting("timeout", self._timeout, extra, where, numeric=float),
            max_retries=_setting("max_retries", self._max_retries, extra, where),
        )

    @cached_property
    def rate_limiter(self) -> SlidingWindowRateLimiter:
        """The pacer every request of this hook goes through."""
        return SlidingWindowRateLimiter(self.settings.requests_per_minute, window=self.rate_limit_window)

    def get_conn(self) -> requests.Session:
        """Return the hook's ``requests.Session``, made once, with the bearer header and a connection pool."""
        return self._session

    @cached_property
    def _session(self) -> requests.Session:
        settings = self.settings
        session = requests.Session()
        authorization = f"Bearer {settings.api_key}"
        mask_secret(authorization)
        session.headers.update(
            {
                "Authorization": authorization,
                "Accept": "application/json",
                "User-Agent": f"airflow-provider-helpcrunch/{__version__}",
            }
        )
        # Retries are driven by ``_request`` so that every attempt passes through the pacer; the adapter
        # only pools connections and never retries on its own.
        # room for MarkChatReadOperator's max_in_flight (at most 32)
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=32)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def close(self) -> None:
        """Close the pooled connections, if a session was made."""
        session = self.__dict__.pop("_session", None)
        if session is not None:
            session.close()

    # ------------------------------------------------------------------ API calls

    def mark_chat_read(self, chat_id: int, *, by: ReadBy = "agent", read: bool = True) -> dict[str, Any]:
        """
        Mark one chat read (or unread) by the agent or by the customer.

        :param chat_id: the HelpCrunch chat ID.
        :param by: ``"agent"`` (``PUT /chats/readByAgent``) or ``"customer"`` (``PUT /chats/readByCustomer``).
        :param read: ``False`` marks the chat unread.
        :return: the Chat object HelpCrunch returns.
        :raises HelpCrunchNotFoundError: no chat has this ID.
        """
        if by not in READ_ENDPOINTS:
            raise HelpCrunchConfigError(f"by must be 'agent' or 'customer', got {by!r}")
        _check_chat_id(chat_id)
        if not isinstance(read, bool):
            raise HelpCrunchConfigError(f"read must be True or False, got {read!r}")
        return self._request("PUT", READ_ENDPOINTS[by], json={"id": chat_id, "read": read}, chat_id=chat_id)

    def get_chat(self, chat_id: int) -> dict[str, Any]:
        """
        Fetch one chat (``GET /chats/{id}``).

        :raises HelpCrunchNotFoundError: no chat has this ID.
        """
        _check_chat_id(chat_id)
        return self._request("GET", f"/chats/{chat_id}", chat_id=chat_id)

    def list_chats(
        self, *, sort: str | None = None, order: str | None = None, max_chats: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """
        Every chat of the account, page by page (``GET /chats``), as a generator of Chat dicts.

        :param sort: ``chats.createdAt``, ``chats.lastCustomerMessageAt``, ``chats.lastMessageAt`` or
            ``chats.closedAt`` (the ``chats.`` prefix may be left out).
        :param order: ``"asc"`` or ``"desc"``.
        :param max_chats: stop after this many chats.
        """
        sort, order = check_sort(sort, order)
        check_max_chats(max_chats)

        def fetch(offset: int, limit: int) -> Any:
            params = {"offset": offset, "limit": limit, "sort": sort, "order": order}
            return self._request("GET", "/chats", params={k: v for k, v in params.items() if v is not None})

        return self._paginate(fetch, max_chats, "GET /chats")

    def search_chats(
        self,
        filters: Any,
        *,
        comparison: str = "AND",
        sort: str | None = None,
        order: str | None = None,
        max_chats: int | None = None,
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
        :param max_chats: stop after this many chats.
        """
        checked = normalize_filters(filters)
        if comparison not in COMPARISONS:
            raise HelpCrunchConfigError(f"comparison must be 'AND' or 'OR', got {comparison!r}")
        sort, order = check_sort(sort, order)
        check_max_chats(max_chats)

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

        return self._paginate(fetch, max_chats, "POST /chats/search")

    def _paginate(
        self, fetch: Callable[[int, int], Any], max_chats: int | None, action: str
    ) -> Iterator[dict[str, Any]]:
        """
        Yield chats page by page until a short or empty page (the total alone is not trusted: chats
        come and go while we page). A chat seen on an earlier page is not yielded twice.
        """
        seen: set[Any] = set()
        offset = 0
        while True:
            limit = PAGE_SIZE if max_chats is None else min(PAGE_SIZE, max_chats - len(seen))
            if limit <= 0:
                return
            body = fetch(offset, limit)
            data = body.get("data") if isinstance(body, dict) else None
            if not isinstance(data, list):
                raise HelpCrunchAPIError(
                    f"HelpCrunch answered {action} without a 'data' list: {str(body)[:200]}"
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
                if chat_id in seen:
                    continue
                seen.add(chat_id)
                yield chat
                if max_chats is not None and len(seen) >= max_chats:
                    return
            if len(data) < limit:
                return
            offset += len(data)

    def test_connection(self) -> tuple[bool, str]:
        """Check the key and the base URL with one cheap authenticated request (``GET /chats?limit=1``)."""
        try:
            self._request("GET", "/chats", params={"limit": 1}, max_retries=0, rate_limit_wait=0.0)
        except HelpCrunchError as err:
            return False, str(err)
        except Exception as err:  # the UI shows the message; never let a surprise escape as a 500
            return False, f"{type(err).__name__}: {err}"
        return True, f"Connected to HelpCrunch at {self.settings.base_url}"

    # ------------------------------------------------------------------ transport

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
    ) -> Any:
        """
        Send one API request, paced, retried and turned into JSON or a typed error.

        429 waits for ``Retry-After`` when given, otherwise backs off and slows the pace, for up to
        ``rate_limit_wait`` seconds in all; 5xx, timeouts and dropped connections back off exponentially
        with jitter, up to ``max_retries`` times; every attempt is paced and bounded by ``timeout``. Other
        errors are raised at once.
        """
        settings = self.settings
        session = self.get_conn()
        retries = settings.max_retries if max_retries is None else max_retries
        if rate_limit_wait is None:
            rate_limit_wait = self.rate_limit_wait
        url = settings.base_url + path
        action = f"{method} {path}"
        about = f" for chat {chat_id}" if chat_id is not None else ""
        attempt = failures = throttles = 0
        throttled_for = 0.0
        while True:
            attempt += 1
            self.rate_limiter.acquire()
            try:
                response = session.request(method, url, json=json, params=params, timeout=settings.timeout)
            except _NOT_RETRYABLE_TRANSPORT_ERRORS as err:
                raise HelpCrunchConnectionError(
                    f"Could not send {action} to HelpCrunch: {type(err).__name__}: {err}", chat_id=chat_id
                ) from err
            except (*_RETRYABLE_TRANSPORT_ERRORS, Urllib3HTTPError) as err:
                failures += 1
                if failures > retries:
                    raise HelpCrunchConnectionError(
                        f"HelpCrunch did not answer {action}{about} after {attempt} attempt(s): "
                        f"{type(err).__name__}: {err}",
                        chat_id=chat_id,
                    ) from err
                delay = self._backoff(failures)
                self.log.warning(
                    "%s%s failed (%s); retry %d of %d in %.1f s",
                    action,
                    about,
                    type(err).__name__,
                    failures,
                    retries,
                    delay,
                )
            else:
                status = response.status_code
                if status < 400:
                    self.rate_limiter.speed_up()
                    return _json_body(response, action, chat_id)
                if status == 429:
                    throttles += 1
                    self.rate_limiter.slow_down()
                    retry_after = _retry_after(response)
                    delay = retry_after if retry_after is not None else self._backoff(throttles)
                    if throttled_for + delay > rate_limit_wait:
                        raise error_from_response(response, action=action, chat_id=chat_id, attempts=attempt)
                    throttled_for += delay
                    if retry_after is not None:
                        self.rate_limiter.pause(retry_after)
                    self.log.warning(
                        "HelpCrunch answered 429 to %s%s; retry in %.1f s (pace now %.0f/min)",
                        action,
                        about,
                        delay,
                        self.rate_limiter.rate,
                    )
                elif status >= 500:
                    failures += 1
                    if failures > retries:
                        raise error_from_response(response, action=action, chat_id=chat_id, attempts=attempt)
                    delay = self._backoff(failures)
                    self.log.warning(
                        "HelpCrunch answered %d to %s%s; retry %d of %d in %.1f s",
                        status,
                        action,
                        about,
                        failures,
                        retries,
                        delay,
                    )
                else:
                    raise error_from_response(response, action=action, chat_id=chat_id, attempts=attempt)
            finally:
                self.rate_limiter.release()
            self._sleep(delay)

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter: half fixed, half random, capped at ``retry_backoff_max``."""
        ceiling = min(self.retry_backoff_max, self.retry_backoff * 2 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


# ---------------------------------------------------------------------- helpers


def _check_chat_id(chat_id: Any) -> None:
    if isinstance(chat_id, bool) or not isinstance(chat_id, int) or chat_id <= 0:
        raise HelpCrunchConfigError(f"chat_id must be a positive int, got {chat_id!r}")


def _total(body: dict[str, Any]) -> int | None:
    """The result total, read as ``meta.total`` or as a top-level ``total`` (both are seen)."""
    meta = body.get("meta")
    total = meta.get("total") if isinstance(meta, dict) else body.get("total")
    return total if isinstance(total, int) else None


def _json_body(response: requests.Response, action: str, chat_id: int | None) -> Any:
    if not response.content:
        return {}
    try:
        return response.json()
    except ValueError:
        text = " ".join(response.text.split())[:200]
        raise HelpCrunchAPIError(
            f"HelpCrunch answered {response.status_code} to {action} with a body that is not JSON: {text!r}",
            status_code=response.status_code,
            chat_id=chat_id,
        ) from None


def _retry_after(response: requests.Response) -> float | None:
    """Seconds from a ``Retry-After`` header (seconds or HTTP date), or ``None`` when absent or unreadable."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, Retry().parse_retry_after(value))
    except Exception:
        return None


def _is_loopback(hostname: str) -> bool:
    if hostname == "localhost" or hostname.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def _base_url(host: str | None, port: int | None, where: str) -> str:
    """Normalise the connection's host into the API base URL; only loopback may use plain http."""
    raw = (host or "").strip()
    if not raw:
        return DEFAULT_BASE_URL
    if "://" not in raw:
        raw = "https://" + raw
    parts = urlsplit(raw)
    scheme = parts.scheme.lower()
    hostname = parts.hostname or ""
    if scheme not in ("https", "http") or not hostname:
        raise HelpCrunchConfigError(
            f"{where} has an unusable host {host!r}: expected a URL such as {DEFAULT_BASE_URL}"
        )
    if scheme == "http" and not _is_loopback(hostname):
        raise HelpCrunchConfigError(
            f"{where} points at http://{hostname}: the API key is sent only over HTTPS. Use https:// "
            "(plain http is allowed for loopback hosts only, such as a local stand-in)."
        )
    netloc = parts.netloc
    if port and parts.port is None:
        netloc = f"{netloc}:{port}"
    path = parts.path.rstrip("/") or "/v1"
    return urlunsplit((scheme, netloc, path, "", ""))


def _setting(
    name: str, argument: float | None, extra: dict[str, Any], where: str, *, numeric: type = int
) -> Any:
    """
    The hook argument, else the extra (plain or ``extra__helpcrunch__`` prefixed), else the default;
    checked against the field's minimum.
    """
    _, _, default, minimum = CONNECTION_EXTRA_FIELDS[name]
    if argument is not None:
        value, source = argument, f"argument {name}"
    else:
        value = extra.get(name)
        if value in (None, ""):
            value = extra.get(f"extra__helpcrunch__{name}")
        source = f"extra {name!r} of {where}"
        if value in (None, ""):
            return numeric(default)
    try:
        if isinstance(value, bool):
            raise ValueError
        number = numeric(value)
        if numeric is int and isinstance(value, float) and not value.is_integer():
            raise ValueError
    except (TypeError, ValueError):
        raise HelpCrunchConfigError(f"{source} must be a number, got {value!r}") from None
    if number < minimum:
        raise HelpCrunchConfigError(f"{source} must be at least {minimum}, got {value!r}")
    return number
