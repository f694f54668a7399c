"""
HelpCrunch's per-chat writes as values.

Each :class:`ChatChange` is checked once, when it is made, and read back from a Chat object the same way,
whether that chat is HelpCrunch's answer (did the write take?) or an input chat dict (is it already as wanted,
so that it can be skipped?).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_helpcrunch.client.checks import check_by, check_id, check_read
from airflow_provider_helpcrunch.exceptions import HelpCrunchConfigError
from airflow_provider_helpcrunch.outside_text import short_repr
from airflow_provider_helpcrunch.timestamps import timestamp_seconds, to_timestamp
from airflow_provider_helpcrunch.vocabulary import (
    ASSIGNEE_FIELD,
    DEPARTMENT_FIELD,
    MAX_TIMESTAMP,
    READ_ENDPOINTS,
    READ_FIELDS,
    SNOOZE_FIELD,
    STATUS_ALIASES,
    STATUS_FIELD,
    STATUSES,
)

_NOTHING = object()


@dataclass(frozen=True)
class ChatChange:
    """
    One change to a chat, its value checked.

    ``PUT path {"id": ..., **values}``, done only when the chat HelpCrunch returns ``shows`` it.

    :param path: the endpoint, e.g. ``"/chats/status"``.
    :param values: the body besides the chat's ``id``.
    :param field: the Chat field that shows the change.
    :param wanted: the change in words, for an error: ``"'closed'"``, ``"agent 5"``.
    :param shows: whether a chat (HelpCrunch's answer, or a chat dict of the input) shows the change.
    """

    path: str
    values: Mapping[str, Any]
    field: str
    wanted: str
    shows: Callable[[Mapping[str, Any]], bool]


def read_change(by: Any, read: Any = True) -> ChatChange:
    """Mark a chat read (or unread) by the agent or by the customer."""
    by, read = check_by(by), check_read(read)
    field = READ_FIELDS[by]
    return ChatChange(
        READ_ENDPOINTS[by], {"read": read}, field, f"{field}={read}", lambda chat: chat.get(field) is read
    )


def status_change(status: Any) -> ChatChange:
    """Set a chat's status; any documented spelling is taken (``"on-hold"`` is ``"on hold"``)."""
    status = check_status(status)
    return ChatChange(
        "/chats/status",
        {"status": status},
        STATUS_FIELD,
        repr(status),
        lambda chat: shows_status(chat, status),
    )


def assignee_change(agent: Any) -> ChatChange:
    """Hand a chat to an agent (an ID), or to no agent (``None``)."""
    agent = None if agent is None else check_id(agent, "assignee")
    return ChatChange(
        "/chats/assignee",
        {"assignee": agent},
        ASSIGNEE_FIELD,
        "no assignee" if agent is None else f"agent {agent}",
        lambda chat: shows_reference(chat, ASSIGNEE_FIELD, agent),
    )


def department_change(department: Any) -> ChatChange:
    """Move a chat to a department (an ID)."""
    department = check_id(department, "department")
    return ChatChange(
        "/chats/department",
        {"department": department},
        DEPARTMENT_FIELD,
        f"department {department}",
        lambda chat: shows_reference(chat, DEPARTMENT_FIELD, department),
    )


def snooze_change(until: Any) -> ChatChange:
    """
    Snooze a chat until a moment, or unsnooze it (``None``).

    The moment is sent as a string of UNIX seconds, as HelpCrunch's current page shows it.
    """
    seconds = check_snooze(until)
    return ChatChange(
        "/chats/snooze",
        {"snoozedUntil": None if seconds is None else str(seconds)},
        SNOOZE_FIELD,
        "not snoozed" if seconds is None else f"snoozed until {seconds}",
        lambda chat: shows_snooze(chat, seconds),
    )


# ---------------------------------------------------------------------- the values


def canonical_status(value: Any) -> str | None:
    """Return a status in its current spelling (``"on-hold"``, ``"onhold"`` -> ``"on hold"``), or ``None``."""
    if not isinstance(value, str):
        return None
    text = " ".join(value.strip().lower().split())
    text = STATUS_ALIASES.get(text, text)
    return text if text in STATUSES else None


def check_status(value: Any) -> str:
    """Return a status to set, in its current spelling; any documented spelling is taken."""
    status = canonical_status(value)
    if status is None:
        raise HelpCrunchConfigError(
            f"status must be one of {', '.join(repr(s) for s in STATUSES)} (or 'on-hold'), "
            f"got {short_repr(value)}"
        )
    return status


def check_snooze(value: Any) -> int | None:
    """
    When a snooze ends, in UNIX seconds.

    An int, a numeric string (a rendered template), a datetime or a pendulum object; ``None`` unsnoozes.
    """
    if value is None:
        return None
    seconds = to_timestamp(value, "snoozed_until")
    if not 0 < seconds <= MAX_TIMESTAMP:
        raise HelpCrunchConfigError(f"snoozed_until must be a moment after 1970, got {short_repr(value)}")
    return seconds


# ---------------------------------------------------------------------- reading them back from a chat


def shows_status(chat: Mapping[str, Any], status: str) -> bool:
    """Whether the chat has this status, in any documented spelling."""
    return canonical_status(chat.get(STATUS_FIELD)) == status


def shows_reference(chat: Mapping[str, Any], field: str, wanted: int | None) -> bool:
    """
    Whether the chat's ``assignee`` or ``department`` is ``wanted`` (an ID, or ``None`` for none).

    The field is an object with an ``id`` (or a bare ID), or ``null``. A chat without the field does not say.
    """
    if field not in chat:
        return False
    value = chat[field]
    if isinstance(value, Mapping):
        value = value.get("id", _NOTHING)
    if isinstance(value, bool):
        return False
    return value == wanted if (value is None or isinstance(value, int)) else False


def shows_snooze(chat: Mapping[str, Any], until: int | None) -> bool:
    """Whether the chat is snoozed until ``until`` (``None``: not snoozed); read in every timestamp form."""
    if SNOOZE_FIELD not in chat:
        return False
    value = chat[SNOOZE_FIELD]
    try:
        seconds = timestamp_seconds(value)
    except ValueError:
        return False
    if until is None:
        return not seconds
    return seconds is not None and int(seconds) == until


def shown(chat: Mapping[str, Any], field: str) -> str:
    """Return a chat's field for a message: its bounded ``repr``, or that the chat has none."""
    return f"{field}={short_repr(chat[field])}" if field in chat else f"no {field!r} field"
