"""Search filters, sorts and orders: checked and typed before anything is sent."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_helpcrunch.client.checks import check_id
from airflow_provider_helpcrunch.exceptions import HelpCrunchConfigError
from airflow_provider_helpcrunch.timestamps import to_timestamp
from airflow_provider_helpcrunch.vocabulary import COMPARISONS, FIELD_TYPES, OPERATORS, ORDERS, SORT_FIELDS

Filter = Mapping[str, Any] | Sequence[Any]


def field_name(field: Any, where: str = "field", prefix: str = "chats.") -> str:
    """``"closedAt"`` -> ``"chats.closedAt"``: each field under its ``prefix``."""
    if not isinstance(field, str) or not field.strip():
        raise HelpCrunchConfigError(f"{where} must be a non-empty string, got {field!r}")
    field = field.strip()
    return field if field.startswith(prefix) else f"{prefix}{field}"


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
        value = check_id(value, f"{where} ({field}) value", positive=False)
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


def check_comparison(comparison: Any) -> str:
    """How a search combines its filters: ``"AND"`` or ``"OR"``."""
    if comparison not in COMPARISONS:
        raise HelpCrunchConfigError(f"comparison must be 'AND' or 'OR', got {comparison!r}")
    return str(comparison)
