"""HelpCrunch timestamps: UNIX seconds as an int, a string (``"1603885746"``) or a decimal string."""

from __future__ import annotations

import contextlib
import math
from datetime import UTC, datetime
from typing import Any


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
    """Like :func:`timestamp_seconds`, with ``None`` for a value that is no timestamp (for callers that decide
    what a missing or unreadable one means)."""
    try:
        return timestamp_seconds(value)
    except ValueError:
        return None
