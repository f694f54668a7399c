"""The checks of values users pass (arguments, template results), each written once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, cast

from airflow_provider_helpcrunch.exceptions import HelpCrunchConfigError

if TYPE_CHECKING:
    from collections.abc import Callable

#: who a chat is marked read by: ``PUT /chats/readByAgent`` or ``PUT /chats/readByCustomer``.
ReadBy = Literal["agent", "customer"]
READ_BY: tuple[ReadBy, ...] = ("agent", "customer")
#: the Chat object's field that says whether it is read, by who.
READ_FIELDS: dict[str, str] = {"agent": "readByAgent", "customer": "readByCustomer"}
#: HelpCrunch's chat IDs are signed 64-bit integers.
MAX_CHAT_ID = 2**63 - 1


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
    """What is wrong with an integer as a chat ID, or ``None`` when it is one."""
    if chat_id <= 0:
        return "not positive"
    if chat_id > MAX_CHAT_ID:
        return "over 2**63 - 1"
    return None


def check_chat_id(chat_id: Any) -> int:
    """One chat ID, as the hook takes it: an int from 1 to 2**63 - 1."""
    return check_int(chat_id, "chat_id", maximum=MAX_CHAT_ID)


def check_by(by: Any) -> ReadBy:
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
    return check_bool(read, "read")


def check_max_chats(max_chats: Any) -> int | None:
    """``max_chats`` must be a positive int, or ``None`` for no cap."""
    return None if max_chats is None else check_int(max_chats, "max_chats")


def check_unless_template(value: Any, check: Callable[[Any], Any]) -> None:
    """Check an operator argument now, unless it is a Jinja template: that is checked once rendered."""
    if not (isinstance(value, str) and "{{" in value):
        check(value)
