from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_helpcrunch.rate_limit import SlidingWindowRateLimiter
from tests.conftest import API_KEY

BASE = "https://api.helpcrunch.com/v1"


class FakeClock:
    """A virtual monotonic clock: ``sleep`` moves time forward at once and records the wait."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.backoffs: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def backoff(self, seconds: float) -> None:
        """The hook's waits between retries, kept apart from the pacer's."""
        self.backoffs.append(seconds)
        self.now += seconds


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
    """A hook on the virtual clock: its pacing and its backoff sleeps cost no real time."""
    from airflow_provider_helpcrunch.hooks.helpcrunch import HelpCrunchHook

    def make(**kwargs: Any) -> HelpCrunchHook:
        hook = HelpCrunchHook(clock=clock, sleep=clock.backoff, **kwargs)
        # the pacer's waits recorded apart from the hook's
        hook.__dict__["rate_limiter"] = SlidingWindowRateLimiter(
            hook.settings.requests_per_minute, clock=clock, sleep=clock.sleep
        )
        return hook

    return make


@pytest.fixture
def hook(make_hook):
    return make_hook()


def chat(chat_id: int, **fields: Any) -> dict[str, Any]:
    return {"id": chat_id, "status": "closed", "readByAgent": True, "readByCustomer": False, **fields}


def errors(*codes: str) -> dict[str, Any]:
    return {"errors": [{"code": code, "message": f"{code} message"} for code in codes]}
