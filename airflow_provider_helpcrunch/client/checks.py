"""The checks of values users pass (arguments, template results): numbers, IDs and flags, each once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from airflow_provider_helpcrunch.exceptions import HelpCrunchConfigError
from airflow_provider_helpcrunch.outside_text import short_repr
from airflow_provider_helpcrunch.vocabulary import MAX_ID, READ_BY

if TYPE_CHECKING:
    from airflow_provider_helpcrunch.vocabulary import ReadBy


def check_int(value: Any, name: str, *, minimum: int = 1, maximum: int | None = None) -> int:
    """``value`` must be an int (not a bool) from ``minimum`` to ``maximum``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        bounds = f"from {minimum} to {maximum}" if maximum is not None else f"of at least {minimum}"
        raise HelpCrunchConfigError(f"{name} must be an int {bounds}, got {value!r}")
    return value


def is_ascii_digits(text: str) -> bool:
    """``"123"`` but not ``"²"``, ``"①"``, ``"١٢٣"`` or full-width digits: IDs are ASCII digits."""
    return text.isascii() and text.isdigit()


def chat_id_problem(chat_id: int) -> str | None:
    """Return what is wrong with an integer as a chat ID, or ``None`` when it is one."""
    if chat_id <= 0:
        return "not positive"
    if chat_id > MAX_ID:
        return "over 2**63 - 1"
    return None


def check_chat_id(chat_id: Any) -> int:
    """One chat ID, as the client takes it: an int from 1 to 2**63 - 1."""
    return check_int(chat_id, "chat_id", maximum=MAX_ID)


def check_id(value: Any, name: str, *, positive: bool = True) -> int:
    """
    Return an ID (an agent, a department, a customer).

    An int, or a string of ASCII digits (a rendered template); with ``positive``, from 1 to 2**63 - 1.
    """
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and is_ascii_digits(value.strip()):
        number = int(value.strip())
    if positive and number is not None and not 0 < number <= MAX_ID:
        number = None
    if number is None:
        kind = "a positive integer ID" if positive else "an integer ID"
        raise HelpCrunchConfigError(f"{name} must be {kind}, got {short_repr(value)}")
    return number


def check_by(by: Any) -> ReadBy:
    """Who a chat is read by: ``"agent"`` or ``"customer"``."""
    if by not in READ_BY:
        raise HelpCrunchConfigError(f"by must be 'agent' or 'customer', got {by!r}")
    return cast("ReadBy", by)


def check_unread_by(unread_by: Any) -> ReadBy | None:
    """``unread_by`` of a search: ``None`` (every chat), ``"agent"`` or ``"customer"``."""
    return None if unread_by is None else check_by(unread_by)


def check_bool(value: Any, name: str) -> bool:
    """``value`` must be ``True`` or ``False``, not ``"false"``, ``0``, ``None`` or another stand-in."""
    if not isinstance(value, bool):
        raise HelpCrunchConfigError(f"{name} must be True or False, got {value!r}")
    return value


def check_read(read: Any) -> bool:
    """``read`` of a marking: ``True`` or ``False``."""
    return check_bool(read, "read")


def check_max(value: Any, name: str) -> int | None:
    """Return a cap (``max_chats``, ``max_messages``...): a positive int, or ``None`` for no cap."""
    return None if value is None else check_int(value, name)


def check_max_chats(max_chats: Any) -> int | None:
    """``max_chats`` must be a positive int, or ``None`` for no cap."""
    return check_max(max_chats, "max_chats")
