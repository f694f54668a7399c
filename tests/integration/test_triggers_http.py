"""
The watcher and the sensor's trigger over real HTTP against the stand-in, their waits on a virtual clock:
one request a poll when nothing changed, changes as events, and 429s and 5xx that never end the watcher.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from airflow_provider_helpcrunch.testing import Fault
from airflow_provider_helpcrunch.triggers.helpcrunch import (
    HelpCrunchChatsChangedTrigger,
    HelpCrunchSearchTrigger,
)
from tests.helpers import API_KEY

pytestmark = pytest.mark.integration


class Polls:
    """Waits between polls take no real time; after ``polls`` of them, the run ends. Requests are real."""

    def limit(self, polls: int, between: Any = None) -> None:
        self.polls_left = polls
        self.between = between  # called at each wait: what changes on the stand-in meanwhile
        self.waits: list[float] = []

    async def _sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.polls_left -= 1
        if self.polls_left <= 0:
            raise asyncio.CancelledError  # as the triggerer cancels a trigger
        if self.between is not None:
            self.between(len(self.waits))


class Watcher(Polls, HelpCrunchChatsChangedTrigger):
    pass


class Searcher(Polls, HelpCrunchSearchTrigger):
    pass


def events(trigger: Any) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        found = []
        try:
            async for event in trigger.run():
                found.append(event.payload)
        except asyncio.CancelledError:
            pass
        return found

    return asyncio.run(run())


@pytest.fixture
def standin(make_helpcrunch_standin):
    standin = make_helpcrunch_standin(chats=0, api_key=API_KEY, requests_per_minute=None)
    for n in range(5):
        standin.add_chat(id=8100 + n, status="opened", updatedAt=int(time.time()) - 86400)
    return standin


def _quick_hook(self: Any) -> Any:
    from airflow_provider_helpcrunch.hooks.helpcrunch import HelpCrunchHook

    return HelpCrunchHook(
        self.helpcrunch_conn_id, requests_per_minute=6000, retry_backoff=0.01, rate_limit_wait=0.1
    )


def watcher(**kwargs: Any) -> Watcher:
    return Watcher(filters=[("status", "=", "closed")], requests_per_minute=6000, **kwargs)


def test_an_idle_watcher_sends_one_request_a_poll(standin):
    trigger = watcher()
    trigger.limit(5)
    assert events(trigger) == []
    searches = [r for r in standin.requests if r.path.endswith("/chats/search")]
    assert len(standin.requests) == len(searches) == 5


def test_changes_on_the_standin_arrive_as_events_with_their_ids(standin):
    def agent(wait: int) -> None:
        if wait == 1:
            standin.update_chat(8101, status="closed", updatedAt=int(time.time()))
            standin.update_chat(8103, status="closed", updatedAt=int(time.time()))
        if wait == 3:
            standin.update_chat(8102, status="closed", updatedAt=int(time.time()))

    trigger = watcher()
    trigger.limit(6, agent)
    found = events(trigger)
    assert [sorted(event["chat_ids"]) for event in found] == [[8101, 8103], [8102]]
    assert all(event["count"] == len(event["chat_ids"]) for event in found)


def test_429s_and_5xx_past_the_retries_never_end_the_watcher(standin, monkeypatch):
    for request in range(1, 9):  # a storm: every attempt of the first polls fails
        standin.inject(Fault(status=429 if request % 2 else 503, retry_after=0.05), request=request)

    def agent(wait: int) -> None:
        if wait == 3:
            standin.update_chat(8104, status="closed", updatedAt=int(time.time()))

    trigger = Watcher(
        filters=[("status", "=", "closed")], requests_per_minute=6000, poll_interval=15, overlap=600
    )
    trigger.limit(6, agent)
    # one retry a request, so that the storm outlasts a poll's attempts; 429s waited out at most 0.1 s
    monkeypatch.setenv("AIRFLOW_CONN_HELPCRUNCH_DEFAULT", standin.connection_json(max_retries=1))
    monkeypatch.setattr(HelpCrunchChatsChangedTrigger, "_hook", _quick_hook)
    found = events(trigger)
    assert [event["chat_ids"] for event in found] == [[8104]]
    assert any(wait > 15 for wait in trigger.waits)  # failed polls waited longer


def test_the_sensors_trigger_finds_the_chats_once_there_are_enough(standin):
    def agent(wait: int) -> None:
        if wait == 2:
            for chat_id in (8100, 8101):
                standin.update_chat(chat_id, status="pending")

    trigger = Searcher(filters=[("status", "=", "pending")], min_chats=2, requests_per_minute=6000)
    trigger.limit(10, agent)
    (event,) = events(trigger)
    assert (event["status"], sorted(event["chat_ids"]), event["count"]) == ("found", [8100, 8101], 2)
    # the first wait comes before any search (the sensor had just searched on the worker)
    assert len([r for r in standin.requests if r.path.endswith("/chats/search")]) == 2


def test_a_refused_key_ends_the_sensors_trigger_with_a_message_free_of_the_key(standin, monkeypatch):
    conn = {"conn_type": "helpcrunch", "host": standin.base_url, "password": "wrong-key"}
    monkeypatch.setenv("AIRFLOW_CONN_HELPCRUNCH_DEFAULT", json.dumps(conn))
    standin.inject(Fault(status=401, echo_auth=True), request=1)
    trigger = Searcher(filters=[("status", "=", "pending")], requests_per_minute=6000)
    trigger.limit(5)
    (event,) = events(trigger)
    assert event["status"] == "error"
    assert "401" in event["message"]
    assert "wrong-key" not in event["message"]
