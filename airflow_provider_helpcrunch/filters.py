"""Search filters for ``POST /chats/search``: checked and typed before anything is sent."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from airflow_provider_helpcrunch.exceptions import HelpCrunchConfigError
from airflow_provider_helpcrunch.search_fields import FIELD_TYPES, OPERATORS, ORDERS, SORT_FIELDS
from airflow_provider_helpcrunch.validation import is_ascii_digits

Filter = Mapping[str, Any] | Sequence[Any]


def field_name(field: Any, where: str = "field", prefix: str = "chats.") -> str:
    """``"closedAt"`` -> ``"chats.closedAt"``: each field under its ``prefix``."""
    if not isinstance(field, str) or not field.strip():
        raise HelpCrunchConfigError(f"{where} must be a non-empty string, got {field!r}")
    field = field.strip()
    return field if field.startswith(prefix) else f"{prefix}{field}"


def to_timestamp(value: Any, where: str) -> int:
    """UNIX seconds from an int, a numeric string (a rendered template), a datetime or a pendulum object."""
    if isinstance(value, bool):
        raise HelpCrunchConfigError(f"{where} must be a timestamp, got {value!r}")
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
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            pass
        else:
            if number.is_integer():
                return int(number)
    raise HelpCrunchConfigError(
        f"{where} must be a UNIX timestamp, a datetime or a pendulum date; got {value!r}"
    )


def _to_int(value: Any, where: str) -> int:
    if isinstance(value, bool):
        raise HelpCrunchConfigError(f"{where} must be an integer ID, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and is_ascii_digits(value.strip()):
        return int(value.strip())
    raise HelpCrunchConfigError(f"{where} must be an integer ID, got {value!r}")


def normalize_filter(entry: Filter, position: int = 0) -> dict[str, Any]:
    """One filter, as a dict or a ``(field, operator, value)`` tuple, in HelpCrunch's form."""
    where = f"filter [{position}]"
    if isinstance(entry, Mapping):
        unknown = set(entry) - {"field", "operator", "value"}
        missing = {"field", "operator", "value"} - set(entry)
        if missing or unknown:
            raise HelpCrunchConfigError(
                f"{where} must have exactly field, operator and value; got {dict(entry)!r}"
            )
        field, operator, value = entry["field"], entry["operator"], entry["value"]
    elif isinstance(entry, Sequence) and not isinstance(entry, str) and len(entry) == 3:
        field, operator, value = entry
    else:
        raise HelpCrunchConfigError(
            f"{where} must be a dict with field, operator and value, or a (field, operator, value) tuple; "
            f"got {entry!r}"
        )
    field = field_name(field, f"{where} field")
    if operator not in OPERATORS:
        raise HelpCrunchConfigError(
            f"{where} has unknown operator {operator!r}; HelpCrunch takes {' '.join(sorted(OPERATORS))}"
        )
    if value is None:
        raise HelpCrunchConfigError(f"{where} ({field}) has no value")
    kind = FIELD_TYPES.get(field)  # a field HelpCrunch adds later is passed through as it is
    if kind == "timestamp":
        value = to_timestamp(value, f"{where} ({field}) value")
    elif kind == "int":
        value = _to_int(value, f"{where} ({field}) value")
    elif kind == "str" and not isinstance(value, str):
        raise HelpCrunchConfigError(f"{where} ({field}) value must be a string, got {value!r}")
    return {"field": field, "operator": operator, "value": value}


def normalize_filters(filters: Any) -> list[dict[str, Any]]:
    """Every filter checked; one filter alone (a dict or a 3-tuple) is accepted as a list of one."""
    if filters is None:
        return []
    if isinstance(filters, Mapping) or (
        isinstance(filters, tuple) and len(filters) == 3 and isinstance(filters[0], str)
    ):
        filters = [filters]
    if isinstance(filters, str) or not isinstance(filters, Sequence):
        raise HelpCrunchConfigError(f"filters must be a list of filters, got {filters!r}")
    return [normalize_filter(entry, position) for position, entry in enumerate(filters)]


def check_sort(
    sort: str | None,
    order: str | None,
    *,
    fields: tuple[str, ...] = SORT_FIELDS,
    prefix: str = "chats.",
) -> tuple[str | None, str | None]:
    """Sort field (prefixed) and order, checked: chats' sort fields by default, or ``fields``."""
    if sort is not None:
        sort = field_name(sort, "sort", prefix)
        if sort not in fields:
            raise HelpCrunchConfigError(f"sort must be one of {', '.join(fields)}; got {sort!r}")
    if order is not None and order not in ORDERS:
        raise HelpCrunchConfigError(f"order must be 'asc' or 'desc', got {order!r}")
    return sort, order
