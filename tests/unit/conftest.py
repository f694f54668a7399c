from __future__ import annotations

import json
from typing import Any

import pytest

from tests.helpers import API_KEY, FakeClock, hook_class


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
    hook = hook_class(clock=clock, sleep=clock.backoff, pacer_sleep=clock.sleep)

    def make(**kwargs: Any) -> Any:
        return hook(**kwargs)

    return make


@pytest.fixture
def hook(make_hook):
    return make_hook()
