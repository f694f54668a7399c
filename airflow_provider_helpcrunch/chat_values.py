"""
The values of HelpCrunch's per-chat writes: each checked before anything is sent, and each read back from a
Chat object the same way, whether that chat is HelpCrunch's answer (did the write take?) or an input chat
dict (is it already as wanted, so that it can be skipped?).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_helpcrunch.exceptions import HelpCrunchConfigError
from airflow_provider_helpcrunch.filters import to_timestamp
from airflow_provider_helpcrunch.outside_text import short_repr
from airflow_provider_helpcrunch.timestamps import timestamp_seconds
from airflow_provider_helpcrunch.validation import MAX_CHAT_ID, is_ascii_digits

#: the statuses ``PUT /chats/status`` takes, as HelpCrunch's current API page spells them.
STATUSES = ("new", "opened", "pending", "on hold", "no communication", "closed")
ON_HOLD = "on hold"
#: the older spelling of "on hold" (an older page, the Ukrainian one), tried once if the current is refused.
ON_HOLD_OLDER = "on-hold"
#: other documented spellings, read from users and from HelpCrunch's chats alike.
_ALIASES = {"on-hold": ON_HOLD, "onhold": ON_HOLD, "open": "opened"}
#: a Chat's fields that each write changes.
STATUS_FIELD, ASSIGNEE_FIELD, DEPARTMENT_FIELD, SNOOZE_FIELD = (
    "status",
    "assignee",
    "department",
    "snoozedUntil",
)
#: the latest snooze moment taken (the year 9999): later is a mistake, not a date.
MAX_TIMESTAMP = 253_402_300_799
_NOTHING = object()


def canonical_status(value: Any) -> str | None:
    """A status in its current spelling (``"on-hold"``, ``"onhold"`` -> ``"on hold"``), or ``None``."""
    if not isinstance(value, str):
        return None
    text = " ".join(value.strip().lower().split())
    text = _ALIASES.get(text, text)
    return text if text in STATUSES else None


def check_status(value: Any) -> str:
    """A status to set, in its current spelling; any documented spelling is taken."""
    status = canonical_status(value)
    if status is None:
        raise HelpCrunchConfigError(
            f"status must be one of {', '.join(repr(s) for s in STATUSES)} (or 'on-hold'), "
            f"got {short_repr(value)}"
        )
    return status


def check_id(value: Any, name: str) -> int:
    """An agent or department ID: a positive int, or a string of ASCII digits (a rendered template)."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and is_ascii_digits(value.strip()):
        number = int(value.strip())
    if number is None or not 0 < number <= MAX_CHAT_ID:
        raise HelpCrunchConfigError(f"{name} must be a positive integer ID, got {short_repr(value)}")
    return number


def check_snooze(value: Any) -> int | None:
    """
    When a snooze ends, in UNIX seconds: an int, a numeric string (a rendered template), a datetime or a
    pendulum object; ``None`` unsnoozes.
    """
    if value is None:
        return None
    seconds = to_timestamp(value, "snoozed_until")
    if not 0 < seconds <= MAX_TIMESTAMP:
        raise HelpCrunchConfigError(f"snoozed_until must be a moment after 1970, got {short_repr(value)}")
    return seconds


def shows_status(chat: Mapping[str, Any], status: str) -> bool:
    """Whether the chat has this status, in any documented spelling."""
    return canonical_status(chat.get(STATUS_FIELD)) == status


def shows_reference(chat: Mapping[str, Any], field: str, wanted: int | None) -> bool:
    """
    Whether the chat's ``assignee`` or ``department`` is ``wanted`` (an ID, or ``None`` for none): the field
    is an object with an ``id`` (or a bare ID), or ``null``. A chat without the field does not say.
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
    """A chat's field for a message: its bounded ``repr``, or that the chat has none."""
    return f"{field}={short_repr(chat[field])}" if field in chat else f"no {field!r} field"
