"""Errors raised by the HelpCrunch provider, all subclasses of ``AirflowException``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple, Self

from airflow.providers.common.compat.sdk import AirflowException

from airflow_provider_helpcrunch.outside_text import quote, short_repr

if TYPE_CHECKING:
    from collections.abc import Callable

# HelpCrunch answers an unknown chat with one of these codes (one page of its docs spells it "not_fount").
CHAT_NOT_FOUND_CODES = frozenset({"not_found", "chat_not_found", "not_fount"})
_GENERIC_CODES = frozenset({"invalid_request"})
#: how many of HelpCrunch's error entries a message quotes, and how much of each.
MAX_QUOTED_ENTRIES = 3
MAX_ENTRY_CHARS = 200
#: how many of HelpCrunch's error entries an error keeps in ``errors`` (each scrubbed and cut like a quote).
MAX_KEPT_ENTRIES = 10


class ErrorDetail(NamedTuple):
    """One entry of HelpCrunch's ``{"errors": [{"code": ..., "message": ...}]}`` body."""

    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" if self.message else self.code


class HelpCrunchError(AirflowException):
    """
    Base class of every error this provider raises.

    :param message: what went wrong, in words.
    :param status_code: the HTTP status HelpCrunch answered with, if it answered.
    :param errors: the entries of HelpCrunch's ``errors`` body: at most :data:`MAX_KEPT_ENTRIES`, the API
        key taken out and each field cut to :data:`MAX_ENTRY_CHARS` characters.
    :param errors_left_out: how many further entries HelpCrunch sent that ``errors`` does not keep.
    :param chat_id: the chat the request was about, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        errors: tuple[ErrorDetail, ...] = (),
        errors_left_out: int = 0,
        chat_id: int | None = None,
    ) -> None:
        super().__init__(message)
        # HelpCrunch's HTTP status (None when it did not answer), where AirflowException has a class default
        self.status_code: int | None = status_code  # type: ignore[assignment]
        self.errors = errors
        self.errors_left_out = errors_left_out
        self.chat_id = chat_id

    @property
    def codes(self) -> tuple[str, ...]:
        """HelpCrunch's error codes, in the order it sent them."""
        return tuple(detail.code for detail in self.errors)

    def restated(self, message: str) -> Self:
        """Return the same error (same class and details) with another message, e.g. one that adds context."""
        copy = type(self).__new__(type(self))
        copy.__dict__.update(self.__dict__)
        copy.args = (message,)
        return copy


class HelpCrunchConfigError(HelpCrunchError, ValueError):
    """
    The Airflow connection or an argument is unusable.

    Raised before anything is sent, or when HelpCrunch's answers show that the connection's API base URL is
    not HelpCrunch's API.
    """


class HelpCrunchAuthError(HelpCrunchError):
    """HelpCrunch refused the API key (401 or 403). Retrying will not help."""


class HelpCrunchNotFoundError(HelpCrunchError):
    """HelpCrunch has no chat with this ID (404 with a ``not_found`` error body)."""


class HelpCrunchRateLimitError(HelpCrunchError):
    """HelpCrunch kept answering 429 Too Many Requests after every retry."""


class HelpCrunchAPIError(HelpCrunchError):
    """Any other error answer from HelpCrunch (400, 422, 5xx after retries, an unexpected body...)."""


class HelpCrunchConnectionError(HelpCrunchError):
    """HelpCrunch could not be reached (connection refused or reset, timeout) after every retry."""


class HelpCrunchCancelledError(HelpCrunchError):
    """The request was not sent: the caller cancelled it (the run is stopping) before its turn came."""


class InvalidChatIdsError(HelpCrunchError, ValueError):
    """
    Some items are not chat IDs; nothing was sent. ``invalid`` holds ``(position, value, reason)``.

    :param invalid: every invalid item: where it was, the value, and why it is not a chat ID.
    :param total_valid: how many valid chat IDs were seen beside them.
    """

    #: how many invalid items the message lists.
    max_listed = 20

    def __init__(self, invalid: list[tuple[str, Any, str]], total_valid: int) -> None:
        self.invalid = invalid
        listed = ", ".join(
            f"{position or 'value'}={short_repr(value)} ({reason})"
            for position, value, reason in invalid[: self.max_listed]
        )
        more = f", and {len(invalid) - self.max_listed} more" if len(invalid) > self.max_listed else ""
        super().__init__(
            f"{len(invalid)} invalid chat ID(s); nothing was sent to HelpCrunch. Expected integers from 1 to "
            f"2**63 - 1, strings of ASCII digits or chat dicts with an 'id' "
            f"(valid ones seen: {total_valid}). Invalid: {listed}{more}"
        )


def about_chat(chat_id: int | None) -> str:
    """``" for chat 5208"``, or nothing when the request was not about one chat."""
    return f" for chat {chat_id}" if chat_id is not None else ""


def parse_error_details(body: Any) -> tuple[ErrorDetail, ...]:
    """HelpCrunch's ``errors`` list from a parsed body; empty when the body is not HelpCrunch's shape."""
    entries = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(entries, list):
        return ()
    details = []
    for entry in entries:
        if isinstance(entry, dict):
            details.append(ErrorDetail(_text(entry.get("code")), _text(entry.get("message"))))
        elif isinstance(entry, str):
            details.append(ErrorDetail(entry, ""))
    return tuple(details)


def _text(value: Any) -> str:
    """Return a field of an error entry as text: a string as is, anything else as a bounded ``repr``."""
    if isinstance(value, str):
        return value
    return short_repr(value) if value else ""


def kept_errors(
    details: tuple[ErrorDetail, ...], scrub: Callable[[str], str]
) -> tuple[tuple[ErrorDetail, ...], int]:
    """
    Return the entries an error keeps, as its message quotes them.

    The key taken out, each field on one line and cut to :data:`MAX_ENTRY_CHARS`, at most
    :data:`MAX_KEPT_ENTRIES` in the order HelpCrunch sent them; and how many were left out.
    """
    kept = tuple(
        ErrorDetail(quote(scrub(d.code), MAX_ENTRY_CHARS), quote(scrub(d.message), MAX_ENTRY_CHARS))
        for d in details[:MAX_KEPT_ENTRIES]
    )
    return kept, len(details) - len(kept)


def describe_errors(details: tuple[ErrorDetail, ...], scrub: Callable[[str], str]) -> str:
    """
    HelpCrunch's error entries in words, specific ones first (a generic ``invalid_request`` usually leads).

    At most :data:`MAX_QUOTED_ENTRIES` of them, each cut to :data:`MAX_ENTRY_CHARS`, saying how many more.
    """
    specific = [d for d in details if d.code not in _GENERIC_CODES] or list(details)
    said = "; ".join(quote(scrub(str(d)), MAX_ENTRY_CHARS) for d in specific[:MAX_QUOTED_ENTRIES])
    if len(specific) > MAX_QUOTED_ENTRIES:
        said += f"; and {len(specific) - MAX_QUOTED_ENTRIES:,} more error(s)"
    return said


def error_from_answer(
    status: int,
    *,
    body: Any,
    text: str,
    action: str,
    scrub: Callable[[str], str],
    chat_id: int | None = None,
    attempts: int = 1,
) -> HelpCrunchError:
    """
    Build the typed error for a HelpCrunch error answer.

    :param status: the HTTP status (400 or more).
    :param body: the parsed JSON body, or ``None`` when it was not JSON.
    :param text: the body as text, quoted when it is not HelpCrunch's error shape.
    :param action: what was being done, e.g. ``"PUT /chats/readByAgent"``.
    :param scrub: takes the API key out of text that came from the server.
    :param chat_id: the chat the request was about, if any. A 404 ``not_found`` is a missing chat only then.
    :param attempts: how many attempts were made, said in the message when more than one.
    """
    details = parse_error_details(body)
    if details:
        said = describe_errors(details, scrub)
    else:
        said = f"body: {quote(scrub(text))!r}" if text.strip() else "empty body"
    about = about_chat(chat_id)
    tried = f" after {attempts} attempts" if attempts > 1 else ""
    message = f"HelpCrunch answered {status} to {action}{about}{tried}: {said}"

    cls: type[HelpCrunchError]
    if status in (401, 403):
        cls = HelpCrunchAuthError
        message += " (check the API key in the Airflow connection)"
    elif status == 404 and chat_id is not None and any(d.code in CHAT_NOT_FOUND_CODES for d in details):
        cls = HelpCrunchNotFoundError
    elif status == 404:
        # A 404 without HelpCrunch's error body means the route itself is wrong, not that a chat is missing.
        cls = HelpCrunchAPIError
        message += " (the endpoint was not found: check the connection's API base URL)"
    elif status == 429:
        cls = HelpCrunchRateLimitError
    else:
        cls = HelpCrunchAPIError
    kept, left_out = kept_errors(details, scrub)
    return cls(message, status_code=status, errors=kept, errors_left_out=left_out, chat_id=chat_id)
