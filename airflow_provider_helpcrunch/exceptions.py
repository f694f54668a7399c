"""Errors raised by the HelpCrunch provider, all subclasses of ``AirflowException``."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from airflow.providers.common.compat.sdk import AirflowException

if TYPE_CHECKING:
    import requests

# HelpCrunch answers an unknown chat with one of these codes (one page of its docs spells it "not_fount").
CHAT_NOT_FOUND_CODES = frozenset({"not_found", "chat_not_found", "not_fount"})
_GENERIC_CODES = frozenset({"invalid_request"})
_MAX_BODY_CHARS = 300


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
    :param errors: the entries of HelpCrunch's ``errors`` body.
    :param chat_id: the chat the request was about, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        errors: tuple[ErrorDetail, ...] = (),
        chat_id: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.errors = errors
        self.chat_id = chat_id

    @property
    def codes(self) -> tuple[str, ...]:
        """HelpCrunch's error codes, in the order it sent them."""
        return tuple(detail.code for detail in self.errors)


class HelpCrunchConfigError(HelpCrunchError):
    """The Airflow connection or a hook argument is unusable; nothing was sent."""


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


def parse_error_details(response: requests.Response) -> tuple[ErrorDetail, ...]:
    """Read HelpCrunch's ``errors`` list from a response; empty when the body is not HelpCrunch's shape."""
    try:
        body = response.json()
    except ValueError:
        return ()
    entries = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(entries, list):
        return ()
    details = []
    for entry in entries:
        if isinstance(entry, dict):
            details.append(ErrorDetail(str(entry.get("code") or ""), str(entry.get("message") or "")))
        elif isinstance(entry, str):
            details.append(ErrorDetail(entry, ""))
    return tuple(details)


def error_from_response(
    response: requests.Response, *, action: str, chat_id: int | None = None, attempts: int = 1
) -> HelpCrunchError:
    """
    Build the typed error for a HelpCrunch error answer.

    :param response: the error response (status 400 or more).
    :param action: what was being done, e.g. ``"PUT /chats/readByAgent"``.
    :param chat_id: the chat the request was about, if any.
    :param attempts: how many attempts were made, said in the message when more than one.
    """
    status = response.status_code
    details = parse_error_details(response)
    # The specific entry usually follows a generic "invalid_request": name the specific ones first.
    specific = [d for d in details if d.code not in _GENERIC_CODES] or list(details)
    if specific:
        said = "; ".join(str(d) for d in specific)
    else:
        text = " ".join(response.text.split())[:_MAX_BODY_CHARS]
        said = f"body: {text!r}" if text else "empty body"
    about = f" for chat {chat_id}" if chat_id is not None else ""
    tried = f" after {attempts} attempts" if attempts > 1 else ""
    message = f"HelpCrunch answered {status} to {action}{about}{tried}: {said}"

    cls: type[HelpCrunchError]
    if status in (401, 403):
        cls = HelpCrunchAuthError
        message += " (check the API key in the Airflow connection)"
    elif status == 404 and any(d.code in CHAT_NOT_FOUND_CODES for d in details):
        cls = HelpCrunchNotFoundError
    elif status == 404:
        # A 404 without HelpCrunch's error body means the route itself is wrong, not that a chat is missing.
        cls = HelpCrunchAPIError
        message += " (the endpoint was not found: check the connection's API base URL)"
    elif status == 429:
        cls = HelpCrunchRateLimitError
    else:
        cls = HelpCrunchAPIError
    return cls(message, status_code=status, errors=details, chat_id=chat_id)
