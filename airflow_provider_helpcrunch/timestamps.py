"""
Moments, in one place.

HelpCrunch's timestamps (UNIX seconds as an int, a string ``"1603885746"`` or a decimal string) read from its
answers, and the moments users give (ints, numeric strings, datetimes, pendulum objects, ISO 8601 text)
checked before anything is sent.
"""

from __future__ import annotations

import contextlib
import math
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_helpcrunch.outside_text import short_repr

if TYPE_CHECKING:
    from airflow_provider_helpcrunch.exceptions import HelpCrunchConfigError

# ---------------------------------------------------------------------- HelpCrunch's answers


def parse_timestamp(value: int | float | str | None) -> datetime | None:
    """
    Turn a HelpCrunch timestamp into an aware UTC ``datetime``.

    HelpCrunch documents its timestamps (``createdAt``, ``closedAt``, ``lastMessageAt``...) as strings of
    UNIX seconds, and sends them as ``1603885746``, ``"1603885746"`` or ``"1603864800.000"``; all three
    are read here. ``None`` and ``""`` (a chat never closed) give ``None``.

    :raises ValueError: for anything else, naming the value.
    """
    seconds = timestamp_seconds(value)
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=UTC)


def timestamp_seconds(value: int | float | str | None) -> float | None:
    """Like :func:`parse_timestamp`, as UNIX seconds."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a HelpCrunch timestamp: {value!r}")
    seconds: float | None = None
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        with contextlib.suppress(ValueError):
            seconds = float(text)
    if seconds is None or not math.isfinite(seconds):
        raise ValueError(f"not a HelpCrunch timestamp: {value!r}")
    return seconds


def readable_seconds(value: Any) -> float | None:
    """
    Read a timestamp as :func:`timestamp_seconds` does, with ``None`` for a value that is no timestamp.

    For callers that decide what a missing or unreadable one means.
    """
    try:
        return timestamp_seconds(value)
    except ValueError:
        return None


# ---------------------------------------------------------------------- what users give
# The errors are imported when raised: the stand-in reads HelpCrunch's timestamps here, and may be imported
# before Airflow (which the errors subclass) is configured.


def _refused(message: str) -> HelpCrunchConfigError:
    from airflow_provider_helpcrunch.exceptions import HelpCrunchConfigError

    return HelpCrunchConfigError(message)


def to_timestamp(value: Any, where: str) -> int:
    """UNIX seconds from an int, a numeric string (a rendered template), a datetime or a pendulum object."""
    if isinstance(value, bool):
        raise _refused(f"{where} must be a timestamp, got {value!r}")
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return int(aware.timestamp())
    if isinstance(value, date):
        return int(datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp())
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            number = float(value.strip())
            if number.is_integer():
                return int(number)
    raise _refused(f"{where} must be a UNIX timestamp, a datetime or a pendulum date; got {value!r}")


def to_moment(value: Any, where: str) -> datetime:
    """Return an aware datetime from a datetime, a pendulum object, UNIX seconds, a number or ISO text."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and not value.strip().lstrip("-").replace(".", "", 1).isdigit():
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise _refused(
                f"{where} must be a datetime, UNIX seconds or ISO 8601 text, got {short_repr(value)}"
            ) from None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return datetime.fromtimestamp(to_timestamp(value, where), tz=UTC)
