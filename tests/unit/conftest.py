from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_helpcrunch.rate_limit import SlidingWindowRateLimiter
from tests.helpers import API_KEY, FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def set_connection(monkeypatch: pytest.MonkeyPatch):
    """Define a HelpCrunch connection through its environment variable."""

    def define(conn_id: str = "helpcrunch_default", **fields: Any) -> None:
        conn: dict[str, Any] = {"conn_type": "helpcrunch", "password": API_KEY}
        conn.update(fields)
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))

    define()
    return define


@pytest.fixture
def make_hook(set_connection, clock: FakeClock):
    """A hook on the virtual clock: its pacing and its waits between attempts cost no real time."""
    from airflow_provider_helpcrunch.hooks.helpcrunch import HelpCrunchHook

    def make(**kwargs: Any) -> HelpCrunchHook:
        pacer = SlidingWindowRateLimiter(
            kwargs.get("requests_per_minute") or 120, clock=clock, sleep=clock.sleep
        )
        return HelpCrunchHook(clock=clock, sleep=clock.backoff, rate_limiter=pacer, **kwargs)

    return make


@pytest.fixture
def hook(make_hook):
    return make_hook()
