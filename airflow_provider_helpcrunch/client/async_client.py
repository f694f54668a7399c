"""
:class:`AsyncHelpCrunchClient`: HelpCrunch's search from an event loop (the triggerer's), for triggers.

Every request keeps the sync client's promises, by the same code where it can: the pacer's rules (and the
account's window in Redis), the judging of each answer (:class:`~.sending.SenderBase`), the paging rules
(:class:`~.paging.Paging`), the size cap and the deadline per attempt. Nothing in it blocks the event loop.
"""

from __future__ import annotations

import asyncio
import http.client
from typing import TYPE_CHECKING, Any

import httpx

from airflow_provider_helpcrunch import __version__
from airflow_provider_helpcrunch.client.async_transport import (
    AsyncAttemptTimeout,
    TLSFailure,
    make_client,
    send_once_async,
)
from airflow_provider_helpcrunch.client.checks import check_max_chats
from airflow_provider_helpcrunch.client.client import created_key
from airflow_provider_helpcrunch.client.filters import check_comparison, normalize_filters
from airflow_provider_helpcrunch.client.paging import Paging
from airflow_provider_helpcrunch.client.sending import (
    MAX_CONNECTIONS,
    MAX_RESPONSE_BYTES,
    SenderBase,
    _Attempts,
)
from airflow_provider_helpcrunch.client.transport import Answer, ResponseTooLarge
from airflow_provider_helpcrunch.exceptions import (
    HelpCrunchConfigError,
    HelpCrunchError,
    HelpCrunchNotFoundError,
)
from airflow_provider_helpcrunch.vocabulary import CREATED_AT

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

#: what a transport failure may surface as on this path; ``ResponseTooLarge`` is judged apart.
_TRANSPORT_ERRORS = (httpx.HTTPError, http.client.HTTPException, OSError, ResponseTooLarge)


class AsyncHelpCrunchClient(SenderBase, Paging):
    """
    HelpCrunch's REST API v1 over one ``httpx.AsyncClient``.

    See :class:`~.sending.SenderBase` for the arguments; ``asleep`` waits between attempts (by default
    ``asyncio.sleep``). Make it inside the event loop that uses it, and close it there (:meth:`aclose`).
    """

    retryable_errors = (
        httpx.TimeoutException,
        httpx.NetworkError,
        httpx.RemoteProtocolError,
        AsyncAttemptTimeout,
    )
    not_retryable_errors = (TLSFailure, httpx.UnsupportedProtocol, httpx.InvalidURL)
    timeout_errors = (httpx.TimeoutException, AsyncAttemptTimeout)

    def __init__(self, *, asleep: Callable[[float], Awaitable[object]] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._asleep = asleep or asyncio.sleep
        self._http: httpx.AsyncClient | None = None
        self._base_url_check = asyncio.Lock()

    @property
    def http(self) -> httpx.AsyncClient:
        """The ``httpx.AsyncClient``, made at first use: the bearer token in every request, no redirects."""
        if self._http is None:
            self._http = make_client(
                token=self._api_key,
                headers={
                    "Accept": "application/json",
                    "User-Agent": f"airflow-provider-helpcrunch/{__version__}",
                },
                pool_size=MAX_CONNECTIONS,
            )
        return self._http

    async def aclose(self) -> None:
        """Close the pooled connections, if any were made."""
        if self._http is not None:
            http, self._http = self._http, None
            await http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        max_retries: int | None = None,
        rate_limit_wait: float | None = None,
    ) -> dict[str, Any]:
        """Send one API request as :meth:`.RequestSender.request` does, awaiting every wait."""
        limits = self._limits(max_retries, rate_limit_wait)
        action = f"{method} {path}"
        attempts = _Attempts()
        while True:
            await self.rate_limiter.aacquire()
            attempts.made += 1
            self.stats.count(sent=1)
            outcome: Answer | Exception
            try:
                outcome = await send_once_async(
                    self.http,
                    method,
                    self.base_url + path,
                    json=json,
                    params=params,
                    timeout=self.timeout,
                    max_body_bytes=MAX_RESPONSE_BYTES,
                )
            except _TRANSPORT_ERRORS as err:
                outcome = err
            finally:
                await self.rate_limiter.arelease()
            verdict = self._judge(outcome, attempts, limits, action, None)
            if isinstance(verdict, dict):
                self.rate_limiter.speed_up()
                return verdict
            if isinstance(verdict, HelpCrunchError):
                if isinstance(verdict, HelpCrunchNotFoundError):
                    await self._confirm_base_url()
                raise verdict
            self._note(verdict)
            if verdict.pause:
                await self.rate_limiter.apause(verdict.pause)
            await self._asleep(verdict.seconds)

    async def _confirm_base_url(self) -> None:
        """Before a 404 counts as a missing item, ask once whether the base URL answers at all."""
        async with self._base_url_check:
            if self._base_url_answered:
                return
            try:
                await self.request("GET", "/chats", params={"limit": 1})
            except HelpCrunchError as err:
                if err.status_code != 404:
                    raise
                raise self._base_url_not_found(err) from None

    def search_chats(
        self, filters: Any, *, comparison: str = "AND", max_chats: int | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """
        Yield the chats matching ``filters`` (``POST /chats/search``), paged on their ``createdAt``.

        As :meth:`.HelpCrunchClient.search_chats` does for ``"AND"``; ``"OR"`` is refused here (a key filter
        would be OR-ed too), and a caller that needs it runs one search per filter.
        """
        checked = normalize_filters(filters)
        if check_comparison(comparison) == "OR" and len(checked) > 1:
            raise HelpCrunchConfigError(
                "comparison 'OR' of several filters is not taken here: search once per filter"
            )
        check_max_chats(max_chats)

        async def fetch(key_filters: list[dict[str, Any]], offset: int, limit: int) -> Any:
            body = {
                "filter": [*checked, *key_filters],
                "comparison": "AND",
                "sort": CREATED_AT,
                "order": "asc",
                "offset": offset,
                "limit": limit,
            }
            return await self.request("POST", "/chats/search", json=body)

        return self.apaginate_by_key(
            fetch,
            key_field=CREATED_AT,
            key=created_key,
            descending=False,
            action="POST /chats/search",
            max_items=max_chats,
        )
