"""
HelpCrunch's REST API v1, free of Airflow.

:class:`HelpCrunchClient` (the endpoints), the request loop it sends through (``sending``), the transport that
bounds each attempt, the pacer under the account's limit (``rate_limit``, ``shared_window``), the per-chat
writes as values (``changes``) and the checks of what users pass (``checks``, ``filters``). Its errors are the
provider's (:mod:`airflow_provider_helpcrunch.exceptions`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_helpcrunch.client.client import HelpCrunchClient, created_key, unread_filter
    from airflow_provider_helpcrunch.client.sending import (
        MAX_CONNECTIONS,
        MAX_RESPONSE_BYTES,
        RATE_LIMITED_ADVICE,
        RequestSender,
        RequestStats,
    )

# Names are imported when first asked for: the pacer, the transport and the stand-in's helpers load without
# the errors, which load Airflow (so a conftest.py can import them before it configures Airflow).
_HOMES = {
    "HelpCrunchClient": "client",
    "created_key": "client",
    "unread_filter": "client",
    "MAX_CONNECTIONS": "sending",
    "MAX_RESPONSE_BYTES": "sending",
    "RATE_LIMITED_ADVICE": "sending",
    "RequestSender": "sending",
    "RequestStats": "sending",
}

__all__ = [
    "MAX_CONNECTIONS",
    "MAX_RESPONSE_BYTES",
    "RATE_LIMITED_ADVICE",
    "HelpCrunchClient",
    "RequestSender",
    "RequestStats",
    "created_key",
    "unread_filter",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
