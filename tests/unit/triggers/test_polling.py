"""The watcher's polling rules on a virtual clock: cursor, overlap, dedupe, bounded events, kept state."""

from __future__ import annotations

import pytest

from airflow_provider_helpcrunch.exceptions import HelpCrunchConfigError
from airflow_provider_helpcrunch.triggers.polling import (
    MAX_REMEMBERED,
    MIN_POLL_INTERVAL,
    ChangeWatch,
    check_overlap,
    check_poll_interval,
    check_watch_fields,
    filter_rows,
)

T0 = 1_800_000_000.0


def chat(chat_id: int, **fields) -> dict:
    return {"id": chat_id, "status": "opened", **fields}


def watch(**kwargs) -> ChangeWatch:
    kwargs.setdefault("overlap", 300.0)
    kwargs.setdefault("max_ids", 1000)
    return ChangeWatch(**kwargs)


class TestCursor:
    def test_the_first_poll_reaches_the_overlap_back_of_now(self):
        assert watch().since(T0) == T0 - 300

    def test_each_poll_reaches_the_overlap_back_of_the_previous_start(self):
        w = watch()
        w.take([], T0)
        assert w.since(T0 + 60) == T0 - 300
        w.take([], T0 + 60)
        assert w.since(T0 + 120) == T0 + 60 - 300

    def test_a_failed_poll_moves_nothing(self):
        w = watch()
        w.take([], T0)
        # the poll at T0 + 60 failed: take() was not called; the next one reaches as far back as it would have
        assert w.since(T0 + 120) == T0 - 300

    def test_the_event_names_its_window(self):
        w = watch()
        w.take([], T0)
        event = w.take([chat(1)], T0 + 60.5)
        assert event["window"] == {"start": int(T0 - 300), "end": int(T0 + 61)}


class TestDedupe:
    def test_a_chat_seen_again_unchanged_is_not_reported_again(self):
        w = watch()
        assert w.take([chat(1)], T0)["chat_ids"] == [1]
        assert w.take([chat(1)], T0 + 60) is None  # still in the overlap, the same as reported
        assert w.take([chat(1)], T0 + 120) is None

    def test_a_chat_that_changed_again_is_reported_again(self):
        w = watch()
        w.take([chat(1)], T0)
        event = w.take([chat(1, status="closed")], T0 + 60)
        assert event["chat_ids"] == [1]

    def test_new_chats_beside_known_ones(self):
        w = watch()
        w.take([chat(1), chat(2)], T0)
        event = w.take([chat(1), chat(2, status="closed"), chat(3)], T0 + 60)
        assert event["chat_ids"] == [2, 3]
        assert event["count"] == 2

    def test_a_chat_that_left_the_result_and_came_back_is_reported_again(self):
        w = watch()
        w.take([chat(1)], T0)
        w.take([], T0 + 60)  # reopened: it no longer matches
        assert w.take([chat(1)], T0 + 120)["chat_ids"] == [
            1
        ]  # closed again, as it was: a change all the same

    def test_a_chat_reported_before_the_reach_is_not_compared(self):
        w = watch(overlap=100.0)
        w.take([chat(1)], T0)
        assert w.take([chat(1)], T0 + 150) is None  # within the reach (T0 - 100): compared, the same
        # found by the poll at T0 + 300, whose reach (T0 + 50) is past its report at T0: its updatedAt moved
        assert w.take([chat(1)], T0 + 300)["chat_ids"] == [1]

    def test_only_the_watched_fields_make_a_change(self):
        w = watch()
        w.take([chat(1, readByAgent=False, snoozedUntil=None)], T0)
        # a DAG's own writes (read flags, snooze) do not start it again
        assert w.take([chat(1, readByAgent=True, snoozedUntil="1900000000")], T0 + 60) is None
        assert w.take([chat(1, readByAgent=True, lastMessageAt=T0 + 90)], T0 + 120)["chat_ids"] == [1]

    def test_the_watched_fields_can_be_chosen(self):
        w = watch(watch_fields=["readByAgent"])
        w.take([chat(1, readByAgent=False)], T0)
        assert w.take([chat(1, readByAgent=False, status="opened")], T0 + 60) is None
        assert w.take([chat(1, readByAgent=True)], T0 + 120)["chat_ids"] == [1]

    def test_memory_is_bounded(self):
        w = watch()
        w.take([chat(n) for n in range(MAX_REMEMBERED + 10)], T0)
        assert len(w.seen) == MAX_REMEMBERED


class TestEvents:
    def test_no_event_when_nothing_changed(self):
        assert watch().take([], T0) is None

    def test_an_event_carries_at_most_max_ids_and_counts_them_all(self):
        event = watch(max_ids=3).take([chat(n) for n in range(10)], T0)
        assert event["chat_ids"] == [0, 1, 2]
        assert (event["count"], event["truncated"]) == (10, True)

    def test_an_event_is_json(self):
        import json

        event = watch().take([chat(1)], T0)
        assert json.loads(json.dumps(event)) == event


class TestKeptState:
    def test_a_restart_goes_on_from_the_kept_cursor_and_memory(self):
        w = watch()
        w.take([chat(1)], T0)
        w.take([chat(1), chat(2)], T0 + 60)
        again = watch()
        assert again.restore(w.state())
        assert again.since(T0 + 120) == w.since(T0 + 120)
        assert again.take([chat(1), chat(2), chat(3)], T0 + 120)["chat_ids"] == [3]

    @pytest.mark.parametrize(
        "state",
        [
            None,
            [],
            "cursor",
            {"format": 2, "cursor": T0, "seen": {}},
            {"format": 1, "cursor": "soon", "seen": {}},
            {"format": 1, "cursor": True, "seen": {}},
            {"format": 1, "cursor": T0, "seen": []},
            {"format": 1, "cursor": T0, "seen": {"x": ["a", T0]}},
            {"format": 1, "cursor": T0, "seen": {"1": ["a"]}},
            {"format": 1, "cursor": T0, "seen": {"1": [1, T0]}},
            {"format": 1, "cursor": T0, "seen": {"1": ["a", "then"]}},
        ],
    )
    def test_an_unreadable_state_is_not_taken(self, state):
        w = watch()
        assert not w.restore(state)
        assert (w.cursor, w.seen) == (None, {})


class TestChecks:
    @pytest.mark.parametrize("bad", [0, 5, 14.9, -60, "60", None, True])
    def test_the_poll_interval_has_a_floor(self, bad):
        with pytest.raises(HelpCrunchConfigError, match="poll_interval must be"):
            check_poll_interval(bad)

    def test_the_floor_keeps_a_watcher_under_a_few_percent_of_the_budget(self):
        assert 60 / MIN_POLL_INTERVAL / 120 <= 0.05
        assert check_poll_interval(15) == 15.0

    @pytest.mark.parametrize("bad", [-1, "300", None, float("inf"), float("nan")])
    def test_the_overlap_is_a_number_of_seconds(self, bad):
        with pytest.raises(HelpCrunchConfigError, match="overlap must be"):
            check_overlap(bad)

    @pytest.mark.parametrize("bad", [[], "status", [""], [1], None])
    def test_watch_fields_are_field_names(self, bad):
        with pytest.raises(HelpCrunchConfigError, match="watch_fields must be"):
            check_watch_fields(bad)

    def test_filters_become_lists_of_scalars(self):
        rows = filter_rows([("status", "=", "closed"), {"field": "assignee", "operator": "=", "value": "12"}])
        assert rows == [["chats.status", "=", "closed"], ["chats.assignee", "=", 12]]

    def test_bad_filters_are_refused_by_name(self):
        with pytest.raises(HelpCrunchConfigError, match="unknown operator"):
            filter_rows([("status", "is", "closed")])
