"""
Triggers that poll HelpCrunch from the triggerer.

One starts DAGs when chats change (an event trigger for Airflow 3's ``AssetWatcher``); a deferred sensor
waits on the other.

Both are async all the way down: the connection is read, and every request paced, sent and waited out, on the
triggerer's event loop without blocking it (:mod:`airflow_provider_helpcrunch.client.async_client`).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowNotFoundException
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_helpcrunch.exceptions import HelpCrunchAuthError, HelpCrunchConfigError, HelpCrunchError
from airflow_provider_helpcrunch.hooks.connection import DEFAULT_CONN_ID
from airflow_provider_helpcrunch.hooks.helpcrunch import HelpCrunchHook
from airflow_provider_helpcrunch.triggers.polling import (
    DEFAULT_MAX_IDS,
    DEFAULT_OVERLAP,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_WATCH_FIELDS,
    ChangeWatch,
    check_chat_counts,
    check_max_ids,
    check_overlap,
    check_poll_interval,
    check_watch_fields,
    filter_rows,
)

try:  # Airflow 3: the base an AssetWatcher takes
    from airflow.triggers.base import BaseEventTrigger
except ImportError:  # Airflow 2.11 has no event-driven scheduling: the trigger still imports
    BaseEventTrigger = BaseTrigger  # type: ignore[misc,assignment]

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from airflow_provider_helpcrunch.client.async_client import AsyncHelpCrunchClient

#: the longest wait between two polls after failures (a poll that fails waits longer each time, up to this).
MAX_FAILURE_WAIT = 900.0
#: the key of a watcher's cursor in its asset's state store (Airflow 3.3).
STATE_KEY = "helpcrunch_chats_changed"


class _Polling:
    """What both triggers share: the hook they build, the client they make of it, and time."""

    helpcrunch_conn_id: str
    requests_per_minute: int | None
    redis_conn_id: str | None
    log: Any

    def _hook(self) -> HelpCrunchHook:
        return HelpCrunchHook(
            self.helpcrunch_conn_id,
            requests_per_minute=self.requests_per_minute,
            redis_conn_id=self.redis_conn_id,
        )

    async def _client(self) -> AsyncHelpCrunchClient:
        return await self._hook().aget_client()

    def _now(self) -> float:
        """Wall-clock seconds: HelpCrunch's ``updatedAt`` is UNIX time."""
        return time.time()

    async def _sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def _search(
        self, client: AsyncHelpCrunchClient, filters: list[list[Any]], limit: int | None
    ) -> list[Any]:
        return [chat async for chat in client.search_chats(filters, max_chats=limit)]

    async def _close(self, client: AsyncHelpCrunchClient | None) -> None:
        if client is not None:
            await client.aclose()


class HelpCrunchChatsChangedTrigger(_Polling, BaseEventTrigger):
    """
    Poll HelpCrunch for chats that changed and match ``filters``; yield one event per poll that found some.

    For Airflow 3's ``AssetWatcher``:
    ``Asset("helpcrunch_closed_chats", watchers=[AssetWatcher(name="closed", trigger=<this>)])``, and a DAG
    scheduled on that asset. Each event's payload is ``{"chat_ids": [...], "count": n, "truncated": bool,
    "window": {"start", "end"}}``: the chats changed from ``start`` (UNIX seconds) to the poll's start, at
    most ``max_ids`` of them (``count`` says how many in all; when ``truncated``, search the window).

    One request a poll when nothing changed. The cursor is a time that reaches ``overlap`` seconds back of the
    previous poll's start; a chat found there again whose ``watch_fields`` are as reported is not reported
    again (the read flags and the snooze are not watched by default: a DAG's own writes do not start it
    again). On Airflow 3.3 the cursor is kept in the asset's state store, so a restart of the triggerer loses
    no change (the last poll's changes may be reported again); before 3.3 a restart starts from the overlap
    before the first poll. 429s, 5xx, timeouts and dropped connections are waited out or retried as on every
    request, and a poll that still fails is tried again later: the trigger never ends.

    :param helpcrunch_conn_id: the Airflow connection with the HelpCrunch API key.
    :param filters: search filters, as :class:`HelpCrunchSearchChatsOperator` takes them (every one must
        match); ``chats.updatedAt`` is added.
    :param poll_interval: seconds between two polls (default 60, at least 15).
    :param overlap: seconds a poll reaches back of the previous one's start (default 300).
    :param max_ids: the most chat IDs an event carries (default 1000).
    :param watch_fields: the chat fields whose change makes a chat found again in the overlap a change
        (default ``status``, ``assignee``, ``department``, ``closedAt``, ``lastMessageAt``,
        ``lastMessageId``).
    :param requests_per_minute: this trigger's pace (default: the connection's).
    :param redis_conn_id: share the account's request budget through this Redis connection (default: the
        connection's).
    """

    def __init__(
        self,
        *,
        helpcrunch_conn_id: str = DEFAULT_CONN_ID,
        filters: Any = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        overlap: float = DEFAULT_OVERLAP,
        max_ids: int = DEFAULT_MAX_IDS,
        watch_fields: list[str] | tuple[str, ...] = DEFAULT_WATCH_FIELDS,
        requests_per_minute: int | None = None,
        redis_conn_id: str | None = None,
    ) -> None:
        super().__init__()
        self.helpcrunch_conn_id = helpcrunch_conn_id
        self.watch_fields = check_watch_fields(watch_fields)
        self.filters = filter_rows(filters)
        if any(row[0] == "chats.updatedAt" for row in self.filters):
            raise HelpCrunchConfigError("filters must not filter on updatedAt: the trigger's cursor does")
        self.poll_interval = check_poll_interval(poll_interval)
        self.overlap = check_overlap(overlap)
        self.max_ids = check_max_ids(max_ids)
        self.requests_per_minute = requests_per_minute
        self.redis_conn_id = redis_conn_id

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "helpcrunch_conn_id": self.helpcrunch_conn_id,
                "filters": self.filters,
                "poll_interval": self.poll_interval,
                "overlap": self.overlap,
                "max_ids": self.max_ids,
                "watch_fields": self.watch_fields,
                "requests_per_minute": self.requests_per_minute,
                "redis_conn_id": self.redis_conn_id,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        watch = ChangeWatch(overlap=self.overlap, max_ids=self.max_ids, watch_fields=self.watch_fields)
        await self._restore(watch)
        client: AsyncHelpCrunchClient | None = None
        failures = 0
        try:
            while True:
                started = self._now()
                try:
                    if client is None:
                        client = await self._client()
                    # kept now, as of the last poll: its event had a poll interval to be stored
                    await self._keep(watch)
                    since = watch.since(started)
                    chats = await self._search(client, [*self.filters, ["updatedAt", ">=", since]], None)
                except Exception as err:  # a trigger that ends is restarted at once, in a loop: it waits
                    failures += 1
                    self.log.error(
                        "Polling HelpCrunch failed (%s): %s", type(err).__name__, _said(err, client)
                    )
                    if not isinstance(err, HelpCrunchError) or isinstance(
                        err, (HelpCrunchAuthError, HelpCrunchConfigError)
                    ):
                        await self._close(client)  # the connection is read again: it may have been fixed
                        client = None
                else:
                    failures = 0
                    payload = watch.take(chats, started)
                    if payload is not None:
                        self.log.info(
                            "%d chat(s) changed since %d (%d in this event)",
                            payload["count"],
                            payload["window"]["start"],
                            len(payload["chat_ids"]),
                        )
                        yield TriggerEvent(payload)
                await self._sleep(self._wait(started, failures))
        finally:
            await self._close(client)

    def _wait(self, started: float, failures: int) -> float:
        """Return the seconds to the next poll: the interval from this one's start, longer after failures."""
        return _next_poll(self.poll_interval, started, self._now(), failures)

    async def _restore(self, watch: ChangeWatch) -> None:
        """Take the cursor an earlier run kept in the asset's state store (Airflow 3.3), if any."""
        store = getattr(self, "asset_state_store", None)
        if store is None:
            return
        try:
            state = await store.aget(STATE_KEY)
        except Exception as err:  # the cursor is then the overlap before the first poll, as before 3.3
            self.log.warning(
                "Could not read the watcher's cursor (%s): starting from now", type(err).__name__
            )
            return
        if state is not None and not watch.restore(state):
            self.log.warning("The watcher's kept cursor is unreadable; starting from now")

    async def _keep(self, watch: ChangeWatch) -> None:
        """Keep the cursor in the asset's state store (Airflow 3.3); a failure is said, never fatal."""
        store = getattr(self, "asset_state_store", None)
        if store is None or watch.cursor is None:
            return
        try:
            await store.aset(STATE_KEY, watch.state())
        except Exception as err:
            self.log.warning("Could not keep the watcher's cursor (%s)", type(err).__name__)


class HelpCrunchSearchTrigger(_Polling, BaseTrigger):
    """
    Poll a HelpCrunch search until it finds at least ``min_chats`` chats (for a deferred sensor).

    The first search is a ``poll_interval`` after the trigger starts: the sensor searched just before.

    Yields one event: ``{"status": "found", "chat_ids": [...], "count": n}``, or ``{"status": "error",
    "message": ...}`` for an error no wait can mend (the key refused, the connection unusable). Other
    failures are waited out, and the search is tried again at the next poll.

    :param helpcrunch_conn_id: the Airflow connection with the HelpCrunch API key.
    :param filters: search filters (every one must match).
    :param min_chats: how many chats must match.
    :param max_chats: the most chats read and pushed.
    :param poll_interval: seconds between two searches (at least 15).
    :param requests_per_minute: this trigger's pace (default: the connection's).
    :param redis_conn_id: share the account's request budget through this Redis connection.
    """

    def __init__(
        self,
        *,
        helpcrunch_conn_id: str = DEFAULT_CONN_ID,
        filters: Any = None,
        min_chats: int = 1,
        max_chats: int | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        requests_per_minute: int | None = None,
        redis_conn_id: str | None = None,
    ) -> None:
        super().__init__()
        self.helpcrunch_conn_id = helpcrunch_conn_id
        self.filters = filter_rows(filters)
        self.min_chats, self.max_chats = check_chat_counts(min_chats, max_chats)
        self.poll_interval = check_poll_interval(poll_interval)
        self.requests_per_minute = requests_per_minute
        self.redis_conn_id = redis_conn_id

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "helpcrunch_conn_id": self.helpcrunch_conn_id,
                "filters": self.filters,
                "min_chats": self.min_chats,
                "max_chats": self.max_chats,
                "poll_interval": self.poll_interval,
                "requests_per_minute": self.requests_per_minute,
                "redis_conn_id": self.redis_conn_id,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        client: AsyncHelpCrunchClient | None = None
        failures = 0
        await self._sleep(self.poll_interval)  # the sensor searched on the worker just before it deferred
        try:
            while True:
                started = self._now()
                try:
                    if client is None:
                        client = await self._client()
                    chats = await self._search(client, self.filters, self.max_chats)
                except (HelpCrunchAuthError, HelpCrunchConfigError) as err:
                    yield TriggerEvent({"status": "error", "message": f"{type(err).__name__}: {err}"})
                    return
                except Exception as err:
                    failures += 1
                    said = _said(err, client)
                    self.log.warning(
                        "Searching HelpCrunch failed (%s): %s; trying again", type(err).__name__, said
                    )
                else:
                    failures = 0
                    if len(chats) >= self.min_chats:
                        ids = [chat["id"] for chat in chats]
                        yield TriggerEvent({"status": "found", "chat_ids": ids, "count": len(ids)})
                        return
                    self.log.info("%d chat(s) match, %d wanted: polling again", len(chats), self.min_chats)
                await self._sleep(_next_poll(self.poll_interval, started, self._now(), failures))
        finally:
            await self._close(client)


def _next_poll(interval: float, started: float, now: float, failures: int) -> float:
    """Return the seconds to the next poll: the interval from the last one's start, longer after failures."""
    if failures:
        return min(MAX_FAILURE_WAIT, interval * 2.0 ** (failures - 1))
    return max(0.0, started + interval - now)


def _said(err: Exception, client: AsyncHelpCrunchClient | None) -> str:
    """Return an error's message for the log: the provider's as they are, others with the key taken out."""
    if isinstance(err, (HelpCrunchError, AirflowNotFoundException)):  # "The conn_id `...` isn't defined"
        return str(err)
    if client is None:
        return "(details withheld: they may quote the connection's secrets)"
    return client.scrub_text(str(err))
