from __future__ import annotations

import json
import logging

import pytest

from airflow_provider_helpcrunch.operators.task_state import (
    DONE,
    MAX_RECORD_BYTES,
    MISSING,
    PROGRESS_KEY,
    SKIPPED,
    ChatProgress,
)
from tests.helpers import FakeStore

LOG = logging.getLogger("test")
MARK_KEY = PROGRESS_KEY.format("mark")


def progress(store, chat_ids, by="agent", read=True):
    return ChatProgress(store, "mark", chat_ids, (by, read), LOG)


def test_a_record_round_trips_what_helpcrunch_confirmed_and_nothing_else():
    store = FakeStore()
    ids = list(range(100, 200))
    done = {i: DONE for i in ids[:60]}
    done[ids[10]] = MISSING
    done[ids[20]] = SKIPPED
    done[ids[62]] = DONE  # beyond the first chat not done (was in flight)
    done[ids[63]] = MISSING
    progress(store, ids).save(done)
    loaded = progress(store, ids).load()
    # a chat skipped as unchanged is not kept: the next try judges it again on its own input
    assert loaded == {chat: outcome for chat, outcome in done.items() if outcome != SKIPPED}


def test_the_record_is_compact():
    store = FakeStore()
    ids = list(range(1, 10_001))
    done = dict.fromkeys(ids[:9_000], DONE)
    done.update({ids[i]: MISSING for i in (5, 500, 5000)})
    done.update(dict.fromkeys(ids[9_001:9_004], DONE))
    done.update(dict.fromkeys(ids[100:2_000], SKIPPED))
    progress(store, ids).save(done)
    record = store.values[MARK_KEY]
    assert record["runs"] == "m5x1m94.1900m3000x1m3999.1m3"
    assert len(json.dumps(record)) < 150


def test_another_input_starts_over_with_a_warning(caplog):
    store = FakeStore()
    progress(store, [1, 2, 3]).save({1: DONE})
    with caplog.at_level(logging.WARNING):
        assert progress(store, [1, 2, 4]).load() == {}
        assert progress(store, [1, 2, 3], read=False).load() == {}
    assert "differ" in caplog.text


@pytest.mark.parametrize(
    "record",
    [
        "garbage",
        [],
        {"format": 99},
        {"format": 2},
        {"format": 2, "runs": "m3", "extra": 1},
        {"format": 2, "runs": ["m", 3]},
        {"format": 2, "runs": None},
        {"format": 2, "runs": {"m": 3}},
        {"format": 2, "runs": "m4"},  # more chats than the input has
        {"format": 2, "runs": "m0"},
        {"format": 2, "runs": "m01"},
        {"format": 2, "runs": "q3"},
        {"format": 2, "runs": "m1 x1"},
        {"format": 2, "runs": "m1\n"},
        {"format": 2, "runs": "m" + "9" * 12},
        {"format": True, "runs": "m3"},
        # format 1 counted chats skipped as unchanged among the done: never read
        {"format": 1, "done_below": 1, "missing": [], "beyond": {}},
        {"format": 1, "done_below": 1, "missing": [], "beyond": []},
        {"format": 1, "done_below": 1, "missing": [], "beyond": None},
        {"format": 1, "done_below": 1, "missing": [], "beyond": "m"},
    ],
)
def test_a_record_not_of_the_shape_this_version_writes_starts_over_with_a_warning(record, caplog):
    store = FakeStore()
    ids = [1, 2, 3]
    if isinstance(record, dict) and "format" in record:
        record["fingerprint"] = progress(store, ids).fingerprint
    store.values[MARK_KEY] = record
    with caplog.at_level(logging.WARNING):
        assert progress(store, ids).load() == {}
    assert "unreadable" in caplog.text


def test_a_fingerprint_that_is_not_a_string_starts_over():
    store = FakeStore()
    store.values[MARK_KEY] = {"format": 2, "fingerprint": ["x"], "runs": "m3"}
    assert progress(store, [1, 2, 3]).load() == {}


def test_a_record_too_large_is_not_written(caplog):
    store = FakeStore()
    ids = list(range(1, 30_001))
    done = {chat: DONE if chat % 2 else MISSING for chat in ids}  # no run longer than one chat
    with caplog.at_level(logging.WARNING):
        progress(store, ids).save(done)
    assert store.writes == 0
    assert "too large" in caplog.text
    assert MAX_RECORD_BYTES < 64 * 1024


def test_each_kind_of_write_keeps_its_own_record():
    store = FakeStore()
    ChatProgress(store, "status", [1, 2], ("closed",), LOG).save({1: DONE})
    assert set(store.values) == {"helpcrunch_status_progress"}
    assert ChatProgress(store, "status", [1, 2], ("closed",), LOG).load() == {1: DONE}
    assert ChatProgress(store, "status", [1, 2], ("opened",), LOG).load() == {}  # asked for another status
