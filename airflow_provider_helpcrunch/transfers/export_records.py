"""
What one exported record is.

HelpCrunch's object with every timestamp in one form, described by a versioned JSON Schema per stream (shipped
in ``airflow_provider_helpcrunch/schemas``), and written as one JSON line of valid UTF-8.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from functools import cache
from importlib.resources import files
from typing import Any

from airflow_provider_helpcrunch.exceptions import HelpCrunchAPIError
from airflow_provider_helpcrunch.outside_text import short_repr

#: the version of every stream's schema; a change that a loader must act on gets the next number.
SCHEMA_VERSION = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROS = Decimal(1_000_000)
# a code point between U+D800 and U+DFFF left in a str is a lone surrogate (a pair is one code point)
_SURROGATE = re.compile("[\ud800-\udfff]")


@cache
def schema(stream: str) -> dict[str, Any]:
    """Return the JSON Schema of a stream's records (``chats``, ``messages``, ``customers``)."""
    text = files("airflow_provider_helpcrunch.schemas").joinpath(schema_name(stream)).read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def schema_name(stream: str) -> str:
    """``chats.v1.json``: the schema's file name, versioned."""
    return f"{stream}.v{SCHEMA_VERSION}.json"


def schema_bytes(stream: str) -> bytes:
    """Return the schema as it is written beside the stream's files: the same bytes on every run."""
    return (json.dumps(schema(stream), indent=2, sort_keys=True) + "\n").encode()


@cache
def timestamp_fields(stream: str) -> tuple[str, ...]:
    """Return the fields the stream's schema declares ``date-time``."""
    properties = schema(stream)["properties"]
    return tuple(name for name, spec in properties.items() if spec.get("format") == "date-time")


def rfc3339(value: Any) -> str | None:
    """
    Write a HelpCrunch timestamp as RFC 3339 text in UTC with six fractional digits.

    ``1603885746``, ``"1603885746"``, ``"1603864800.000"`` or a float gives ``"2020-10-28T11:49:06.000000Z"``:
    the same instant, read exactly (no float rounding), sub-second precision kept. ``None`` and ``""`` give
    ``None``.

    :raises ValueError: for anything else.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"not a timestamp: {short_repr(value)}")
    try:
        seconds = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
    except InvalidOperation:
        raise ValueError(f"not a timestamp: {short_repr(value)}") from None
    if not seconds.is_finite():
        raise ValueError(f"not a timestamp: {short_repr(value)}")
    micros = int((seconds * _MICROS).to_integral_value(ROUND_HALF_EVEN))
    try:
        moment = _EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        raise ValueError(f"not a timestamp in years 1 to 9999: {short_repr(value)}") from None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def normalized(stream: str, record: dict[str, Any]) -> dict[str, Any]:
    """
    Return the record with each timestamp field of the stream in :func:`rfc3339` form.

    Other fields untouched.

    :raises HelpCrunchAPIError: a timestamp HelpCrunch sent that cannot be read (named, with the record).
    """
    out = dict(record)
    for name in timestamp_fields(stream):
        if name not in out:
            continue
        try:
            out[name] = rfc3339(out[name])
        except ValueError as err:
            raise HelpCrunchAPIError(
                f"HelpCrunch returned {stream[:-1]} {short_repr(record.get('id'))} with an unreadable "
                f"{name}: {err}"
            ) from None
    return out


def json_line(record: dict[str, Any]) -> bytes:
    r"""
    One JSON line, keys sorted, valid UTF-8.

    The same record is the same bytes on every run. Text keeps every character; a lone surrogate (valid in
    JSON, not in UTF-8) is written as its ``\uXXXX`` escape.

    :raises HelpCrunchAPIError: a record that is not JSON (a NaN, a value of no JSON type).
    """
    try:
        text = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise HelpCrunchAPIError(
            f"A record of id {short_repr(record.get('id'))} cannot be written as JSON: {err}"
        ) from None
    return _SURROGATE.sub(lambda found: f"\\u{ord(found.group()):04x}", text).encode() + b"\n"
