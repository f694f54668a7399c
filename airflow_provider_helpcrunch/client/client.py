"""
:class:`HelpCrunchClient`.

HelpCrunch's endpoints (the per-chat writes, chats, search, messages, customers), each request sent by
:class:`~airflow_provider_helpcrunch.client.sending.RequestSender`.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import math
from typing import TYPE_CHECKING, Any

from airflow_provider_helpcrunch.client.changes import (
    ChatChange,
    assignee_change,
    department_change,
    read_change,
    shown,
    snooze_change,
    status_change,
)
from airflow_provider_helpcrunch.client.checks import (
    check_chat_id,
    check_max,
    check_max_chats,
    check_unread_by,
)
from airflow_provider_helpcrunch.client.filters import check_comparison, check_sort, normalize_filters
from airflow_provider_helpcrunch.client.paging import Paging
from airflow_provider_helpcrunch.client.sending import RequestSender
from airflow_provider_helpcrunch.exceptions import HelpCrunchAPIError
from airflow_provider_helpcrunch.outside_text import short_repr
from airflow_provider_helpcrunch.timestamps import readable_seconds
from airflow_provider_helpcrunch.vocabulary import (
    CREATED_AT,
    CUSTOMER_SORT_FIELDS,
    ON_HOLD,
    ON_HOLD_OLDER,
    READ_FIELDS,
    STATUS_FIELD,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from airflow_provider_helpcrunch.vocabulary import ReadBy


class HelpCrunchClient(RequestSender, Paging):
    """
    HelpCrunch's REST API v1.

    Every request paced, retried and judged (see :class:`RequestSender` for the arguments).
    :class:`~airflow_provider_helpcrunch.hooks.helpcrunch.HelpCrunchHook` builds it from the Airflow
    connection, as Airflow's Slack hook builds a ``WebClient``; it knows nothing of Airflow.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # the spelling of "on hold" HelpCrunch takes: the current one until it refuses it
        self._on_hold = ON_HOLD

    # ------------------------------------------------------------------ per-chat writes

    def apply(self, chat_id: int, change: ChatChange) -> dict[str, Any]:
        """
        Send one change to a chat: ``PUT change.path {"id": chat_id, **change.values}``.

        It is counted as done only if HelpCrunch's 200 returns this chat and the chat shows the change. ``"on
        hold"`` is sent as HelpCrunch's current page spells it; if HelpCrunch refuses that as
        ``invalid_chat_value``, the older ``"on-hold"`` is tried once, and this client keeps to whichever
        HelpCrunch took.

        :return: the Chat object HelpCrunch returns.
        :raises HelpCrunchNotFoundError: no chat has this ID.
        """
        check_chat_id(chat_id)
        if change.field != STATUS_FIELD or change.values.get("status") != ON_HOLD:
            return self._put(chat_id, change)
        spelling = self._on_hold
        try:
            return self._put(chat_id, dataclasses.replace(change, values={"status": spelling}))
        except HelpCrunchAPIError as err:
            if err.status_code != 400 or "invalid_chat_value" not in err.codes or spelling != ON_HOLD:
                raise
        self.log.warning(
            "HelpCrunch refused status %r for chat %d as invalid_chat_value; trying its older spelling %r",
            ON_HOLD,
            chat_id,
            ON_HOLD_OLDER,
        )
        chat = self._put(chat_id, dataclasses.replace(change, values={"status": ON_HOLD_OLDER}))
        self._on_hold = ON_HOLD_OLDER
        return chat

    def _put(self, chat_id: int, change: ChatChange) -> dict[str, Any]:
        action = f"PUT {change.path}"
        chat = self.request("PUT", change.path, json={"id": chat_id, **change.values}, chat_id=chat_id)
        if chat.get("id") != chat_id or isinstance(chat.get("id"), bool):
            returned = f"chat {short_repr(chat['id'])}" if "id" in chat else "no chat id"
            raise HelpCrunchAPIError(
                f"HelpCrunch answered {action} for chat {chat_id} with {returned} (status 200): the change "
                "is not confirmed, so it is not counted as done",
                status_code=200,
                chat_id=chat_id,
            )
        if not change.shows(chat):
            raise HelpCrunchAPIError(
                f"HelpCrunch answered {action} for chat {chat_id} with 200, but the chat it returned has "
                f"{self._scrub.quote(shown(chat, change.field), 200)}, not {change.wanted}",
                status_code=200,
                chat_id=chat_id,
            )
        return chat

    def mark_chat_read(self, chat_id: int, *, by: ReadBy = "agent", read: bool = True) -> dict[str, Any]:
        """Mark one chat read (or unread) by ``"agent"`` or ``"customer"`` (``PUT /chats/readBy...``)."""
        return self.apply(check_chat_id(chat_id), read_change(by, read))

    def set_chat_status(self, chat_id: int, status: str) -> dict[str, Any]:
        """Set one chat's status (``PUT /chats/status``); see :meth:`apply` for ``"on hold"``."""
        return self.apply(check_chat_id(chat_id), status_change(status))

    def set_chat_assignee(self, chat_id: int, assignee: int | None) -> dict[str, Any]:
        """Hand one chat to an agent, or (``None``) to no agent (``PUT /chats/assignee``)."""
        return self.apply(check_chat_id(chat_id), assignee_change(assignee))

    def set_chat_department(self, chat_id: int, department: int) -> dict[str, Any]:
        """Move one chat to a department (``PUT /chats/department``)."""
        return self.apply(check_chat_id(chat_id), department_change(department))

    def snooze_chat(self, chat_id: int, until: Any) -> dict[str, Any]:
        """Snooze one chat until a moment, or (``None``) unsnooze it (``PUT /chats/snooze``)."""
        return self.apply(check_chat_id(chat_id), snooze_change(until))

    # ------------------------------------------------------------------ reads

    def get_chat(self, chat_id: int) -> dict[str, Any]:
        """Fetch one chat (``GET /chats/{id}``)."""
        check_chat_id(chat_id)
        return self.request("GET", f"/chats/{chat_id}", chat_id=chat_id)

    def list_chats(
        self,
        *,
        sort: str | None = None,
        order: str | None = None,
        max_chats: int | None = None,
        unread_by: ReadBy | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every chat of the account, page by page (``GET /chats``), as a generator of Chat dicts."""
        sort, order = check_sort(sort, order)
        check_max_chats(max_chats)
        keep = unread_filter(check_unread_by(unread_by))

        def fetch(offset: int, limit: int) -> Any:
            params = {"offset": offset, "limit": limit, "sort": sort, "order": order}
            return self.request("GET", "/chats", params={k: v for k, v in params.items() if v is not None})

        return self.paginate(fetch, max_chats, "GET /chats", keep)

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
        Yield the chats matching ``filters`` (``POST /chats/search``).

        Paged on their ``createdAt`` (see :meth:`HelpCrunchHook.search_chats`).
        """
        checked = normalize_filters(filters)
        check_comparison(comparison)
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
            return self.request("POST", "/chats/search", json=body)

        return self.paginate_by_key(
            fetch, key_field=CREATED_AT, key=created_key, descending=descending, action="POST /chats/search"
        )

    def list_chat_messages(
        self, chat_id: int, *, max_messages: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Return the messages of one chat, newest first (``GET /chats/{id}/messages``), page by page."""
        check_chat_id(chat_id)
        check_max(max_messages, "max_messages")
        path = f"/chats/{chat_id}/messages"

        def fetch(offset: int, limit: int) -> Any:
            return self.request("GET", path, params={"offset": offset, "limit": limit}, chat_id=chat_id)

        # the list is under "data" (one older revision of the docs shows it under "messages")
        return self.paginate(
            fetch, max_messages, f"GET {path}", kind="message", list_keys=("data", "messages")
        )

    def list_customers(
        self, *, sort: str | None = None, order: str | None = None, max_customers: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every customer of the account, page by page (``GET /customers``), as Customer dicts."""
        sort, order = check_sort(sort, order, fields=CUSTOMER_SORT_FIELDS, prefix="customers.")
        check_max(max_customers, "max_customers")

        def fetch(offset: int, limit: int) -> Any:
            params = {"offset": offset, "limit": limit, "sort": sort, "order": order}
            given = {name: value for name, value in params.items() if value is not None}
            return self.request("GET", "/customers", params=given)

        return self.paginate(fetch, max_customers, "GET /customers", kind="customer")

    def check(self) -> None:
        """One cheap authenticated request (``GET /chats?limit=1``), neither retried nor waited out."""
        self.request("GET", "/chats", params={"limit": 1}, max_retries=0, rate_limit_wait=0.0)


# ---------------------------------------------------------------------- helpers


def created_key(chat: dict[str, Any]) -> int:
    """
    Return a chat's ``createdAt`` in whole seconds: the key searches page on (it never changes).

    :raises ValueError: a chat without a readable one (the client makes it HelpCrunch's error).
    """
    seconds = readable_seconds(chat.get("createdAt"))
    if seconds is None:
        raise ValueError(
            f"chat {chat.get('id')} without a readable createdAt ({short_repr(chat.get('createdAt'))}): "
            "a search cannot page past it"
        )
    return math.floor(seconds)


def unread_filter(unread_by: ReadBy | None) -> Callable[[dict[str, Any]], bool] | None:
    """
    Return what ``unread_by`` keeps.

    The chats not read by the agent (or customer) yet. A chat that does not say (no such field, or not a bool)
    is kept: better marked again than left unread.
    """
    if unread_by is None:
        return None
    field_name = READ_FIELDS[unread_by]
    return lambda chat: chat.get(field_name) is not True


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
    """Return the chats in order, read when the first one is asked for (as every search is)."""
    yield from sorted(chats, key=key, reverse=descending)


def _once(chats: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Each chat once, by id (a chat can match several filters of an OR)."""
    seen: set[int] = set()
    for chat in chats:
        if chat["id"] not in seen:
            seen.add(chat["id"])
            yield chat
