"""The triggers' loops on a virtual clock, with a fake search: polls, events, failures, restarts."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from airflow_provider_helpcrunch.exceptions import (
    HelpCrunchAPIError,
    HelpCrunchAuthError,
    HelpCrunchConfigError,
    HelpCrunchRateLimitError,
)
from airflow_provider_helpcrunch.triggers.helpcrunch import (
    MAX_FAILURE_WAIT,
    STATE_KEY,
    BaseEventTrigger,
    HelpCrunchChatsChangedTrigger,
    HelpCrunchSearchTrigger,
)

T0 = 1_800_000_000.0


class _Stop(BaseException):
    """Ends a test's run: no more answers scripted."""


class FakeStore:
    """The asset state store's async accessors."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    async def aget(self, key: str, default: Any = None) -> Any:
        return json.loads(json.dumps(self.values.get(key, default)))

    async def aset(self, key: str, value: Any) -> None:
        self.values[key] = json.loads(json.dumps(value))


class FakeClient:
    def __init__(self) -> None:
        self.closed = False

    async def aclose(self) -> None:
        self.closed = True

    def scrub_text(self, text: str) -> str:
        return text


class Scripted:
    """What the fake triggers share: a virtual clock, scripted search answers, and what they were asked."""

    def script(self, answers: list[Any], now: float = T0, *, crash_in_sleep: bool = False) -> None:
        self.now = now
        self.answers = iter(answers)
        self.sleeps: list[float] = []
        self.searches: list[tuple[float, list[list[Any]], int | None]] = []
        self.clients = 0
        self.crash_in_sleep = crash_in_sleep

    def _now(self) -> float:
        return self.now

    async def _sleep(self, seconds: float) -> None:
        if self.crash_in_sleep:  # the triggerer dies while the trigger waits for its next poll
            raise _Stop
        self.sleeps.append(seconds)
        self.now += seconds

    async def _client(self) -> Any:
        self.clients += 1
        return FakeClient()

    async def _search(self, client: Any, filters: list[list[Any]], limit: int | None) -> list[Any]:
        answer = next(self.answers, _Stop)
        if answer is _Stop:
            raise _Stop
        self.searches.append((self.now, filters, limit))
        if isinstance(answer, BaseException):
            raise answer
        return answer


class Watcher(Scripted, HelpCrunchChatsChangedTrigger):
    pass


class Searcher(Scripted, HelpCrunchSearchTrigger):
    pass


def events_of(trigger: Any) -> list[dict[str, Any]]:
    """Run a trigger until its script ends (or it ends): the payloads of the events it yielded."""

    async def run() -> list[dict[str, Any]]:
        found = []
        try:
            async for event in trigger.run():
                found.append(event.payload)
        except _Stop:
            pass
        return found

    return asyncio.run(run())


def chat(chat_id: int, **fields: Any) -> dict[str, Any]:
    return {"id": chat_id, "status": "closed", **fields}


def watcher(answers: list[Any], **kwargs: Any) -> Watcher:
    kwargs.setdefault("filters", [("status", "=", "closed")])
    trigger = Watcher(**kwargs)
    trigger.script(answers)
    return trigger


class TestPolling:
    def test_an_idle_watcher_polls_once_an_interval_and_yields_nothing(self):
        trigger = watcher([[], [], []])
        assert events_of(trigger) == []
        assert len(trigger.searches) == 3
        assert trigger.sleeps == [60.0, 60.0, 60.0]

    def test_each_poll_asks_from_the_previous_start_less_the_overlap(self):
        trigger = watcher([[], [], []], overlap=120)
        events_of(trigger)
        bounds = [filters[-1] for _, filters, _ in trigger.searches]
        assert bounds == [
            ["updatedAt", ">=", int(T0 - 120)],
            ["updatedAt", ">=", int(T0 - 120)],
            ["updatedAt", ">=", int(T0 + 60 - 120)],
        ]
        assert all(filters[0] == ["chats.status", "=", "closed"] for _, filters, _ in trigger.searches)

    def test_changes_arrive_once_each(self):
        trigger = watcher([[chat(1)], [chat(1)], [chat(1, assignee=5), chat(2)], []])
        events = events_of(trigger)
        assert [event["chat_ids"] for event in events] == [[1], [1, 2]]
        assert events[1]["window"] == {"start": int(T0 + 60 - 300), "end": int(T0 + 120)}

    def test_a_slow_poll_waits_only_the_rest_of_the_interval(self):
        trigger = watcher([[], []])

        async def slow_search(client: Any, filters: Any, limit: Any) -> list[Any]:
            trigger.now += 45  # the search took 45 s (pacing, retries)
            return await Scripted._search(trigger, client, filters, limit)

        trigger._search = slow_search  # type: ignore[method-assign]
        events_of(trigger)
        assert trigger.sleeps[0] == 15.0


class TestFailures:
    @pytest.mark.parametrize(
        "failure",
        [
            HelpCrunchAPIError("HelpCrunch answered 500", status_code=500),
            HelpCrunchRateLimitError("HelpCrunch answered 429", status_code=429),
            RuntimeError("a bug"),
            OSError("network unreachable"),
        ],
    )
    def test_a_failing_poll_never_ends_the_trigger_and_waits_longer_each_time(self, failure):
        trigger = watcher([failure] * 6 + [[chat(1)]])
        events = events_of(trigger)
        assert [event["chat_ids"] for event in events] == [[1]]  # it went on, and found the change
        assert trigger.sleeps[:6] == [60.0, 120.0, 240.0, 480.0, MAX_FAILURE_WAIT, MAX_FAILURE_WAIT]
        assert trigger.sleeps[6] == 60.0  # back to the interval once a poll succeeds

    def test_a_429_storm_loses_no_change(self):
        storm = [HelpCrunchRateLimitError("429", status_code=429)] * 3
        trigger = watcher([[], *storm, [chat(1)]])
        events = events_of(trigger)
        assert [event["chat_ids"] for event in events] == [[1]]
        # the polls that failed did not move the cursor: the successful one reaches back to the last success
        assert trigger.searches[-1][1][-1] == ["updatedAt", ">=", int(T0 - 300)]

    def test_a_refused_key_makes_the_client_again(self):
        trigger = watcher([HelpCrunchAuthError("401", status_code=401), []])
        events_of(trigger)
        assert trigger.clients == 2  # the connection is read again: it may have been fixed meanwhile

    def test_a_failure_is_logged_without_the_key(self, caplog):
        from airflow.providers.common.compat.sdk import AirflowNotFoundException

        from airflow_provider_helpcrunch.triggers.helpcrunch import _said

        assert "withheld" in _said(RuntimeError("Bearer secret-key"), None)
        assert "secret-key" not in _said(RuntimeError("Bearer secret-key"), None)
        missing = AirflowNotFoundException("The conn_id `helpcrunch_default` isn't defined")
        assert _said(missing, None) == "The conn_id `helpcrunch_default` isn't defined"


class TestRestarts:
    def test_the_cursor_survives_a_restart_through_the_asset_state_store(self):
        store = FakeStore()
        first = watcher([[chat(1)], [chat(1)], [chat(1)]])
        first.asset_state_store = store
        events_of(first)
        # kept when the next poll started (the last poll's event had an interval to be stored)
        assert store.values[STATE_KEY]["cursor"] == T0 + 120
        second = watcher([[chat(1), chat(2)]])
        second.asset_state_store = store
        second.now = T0 + 600  # restarted later
        events = events_of(second)
        assert second.searches[0][1][-1] == ["updatedAt", ">=", int(T0 + 120 - 300)]
        assert [event["chat_ids"] for event in events] == [[2]]  # chat 1 was reported before the restart

    def test_an_event_lost_in_a_crash_is_reported_again_not_skipped(self):
        store = FakeStore()
        first = watcher([[chat(1)]])  # the event for chat 1 is yielded; the triggerer dies before storing it
        first.script([[chat(1)]], crash_in_sleep=True)
        first.asset_state_store = store
        assert [event["chat_ids"] for event in events_of(first)] == [[1]]
        second = watcher([[chat(1)]])
        second.asset_state_store = store
        assert [event["chat_ids"] for event in events_of(second)] == [[1]]

    def test_without_a_store_a_restart_starts_from_the_overlap_before_now(self):
        trigger = watcher([[]])
        trigger.now = T0 + 1000
        events_of(trigger)
        assert trigger.searches[0][1][-1] == ["updatedAt", ">=", int(T0 + 1000 - 300)]

    def test_an_unreadable_kept_state_starts_afresh(self, caplog):
        store = FakeStore()
        store.values[STATE_KEY] = {"format": 1, "cursor": "yesterday", "seen": {}}
        trigger = watcher([[]])
        trigger.asset_state_store = store
        events_of(trigger)
        assert trigger.searches[0][1][-1] == ["updatedAt", ">=", int(T0 - 300)]


class TestKwargs:
    def test_serialized_kwargs_make_the_same_trigger_and_hash_alike(self):
        trigger = HelpCrunchChatsChangedTrigger(
            filters=[{"field": "status", "operator": "=", "value": "closed"}]
        )
        classpath, kwargs = trigger.serialize()
        assert classpath == "airflow_provider_helpcrunch.triggers.helpcrunch.HelpCrunchChatsChangedTrigger"
        again = HelpCrunchChatsChangedTrigger(**kwargs)
        assert again.serialize() == (classpath, kwargs)
        assert json.loads(json.dumps(kwargs)) == kwargs  # scalars and lists of scalars only
        assert all(isinstance(row, list) for row in kwargs["filters"])
        if hasattr(BaseEventTrigger, "hash"):  # Airflow 3: the identity a watcher's trigger row gets
            assert BaseEventTrigger.hash(classpath, kwargs) == BaseEventTrigger.hash(*again.serialize())

    @pytest.mark.parametrize(
        ("kwargs", "said"),
        [
            ({"poll_interval": 5}, "poll_interval must be"),
            ({"overlap": -1}, "overlap must be"),
            ({"max_ids": 0}, "max_ids must be"),
            ({"filters": [("updatedAt", ">", 1)]}, "must not filter on updatedAt"),
            ({"filters": [("status", "==", "closed")]}, "unknown operator"),
        ],
    )
    def test_bad_kwargs_are_refused_when_the_dag_is_parsed(self, kwargs, said):
        with pytest.raises(HelpCrunchConfigError, match=said):
            HelpCrunchChatsChangedTrigger(**kwargs)


class TestSearchTrigger:
    def searcher(self, answers: list[Any], **kwargs: Any) -> Searcher:
        kwargs.setdefault("filters", [("status", "=", "closed")])
        trigger = Searcher(**kwargs)
        trigger.script(answers)
        return trigger

    def test_it_polls_until_enough_chats_match(self):
        trigger = self.searcher([[chat(1)], [chat(1), chat(2)], [chat(1), chat(2), chat(3)]], min_chats=3)
        assert events_of(trigger) == [{"status": "found", "chat_ids": [1, 2, 3], "count": 3}]
        assert trigger.sleeps == [60.0, 60.0, 60.0]  # the first before any search: the sensor just searched

    def test_transient_failures_are_waited_out(self):
        trigger = self.searcher([HelpCrunchAPIError("500", status_code=500), [chat(1)]])
        assert events_of(trigger)[0]["status"] == "found"
        assert trigger.sleeps == [60.0, 60.0]

    def test_a_refused_key_ends_it_with_an_error_event(self):
        trigger = self.searcher([HelpCrunchAuthError("HelpCrunch answered 401", status_code=401)])
        (event,) = events_of(trigger)
        assert event["status"] == "error"
        assert "HelpCrunchAuthError" in event["message"]

    def test_max_chats_is_passed_to_the_search(self):
        trigger = self.searcher([[chat(1)]], max_chats=50)
        events_of(trigger)
        assert trigger.searches[0][2] == 50
