from __future__ import annotations

import json
import logging

import pytest

from airflow_provider_helpcrunch.progress import (
    MARKED,
    MAX_RECORD_BYTES,
    MISSING,
    PROGRESS_KEY,
    SKIPPED,
    MarkProgress,
)
from tests.helpers import FakeStore

LOG = logging.getLogger("test")


def progress(store, chat_ids, by="agent", read=True):
    return MarkProgress(store, chat_ids, by, read, LOG)


def test_a_record_round_trips():
    store = FakeStore()
    ids = list(range(100, 200))
    done = {i: MARKED for i in ids[:60]}
    done[ids[10]] = MISSING
    done[ids[20]] = SKIPPED
    done[ids[62]] = MARKED  # beyond the watermark (was in flight)
    done[ids[63]] = MISSING
    progress(store, ids).save(done)
    loaded = progress(store, ids).load()
    expected = {chat: outcome for chat, outcome in done.items() if outcome != SKIPPED}
    expected[ids[20]] = MARKED  # below the watermark; the same input skips it again before this is used
    assert loaded == expected


def test_the_record_is_compact():
    store = FakeStore()
    ids = list(range(1, 10_001))
    done = dict.fromkeys(ids[:9_000], MARKED)
    done.update({ids[i]: MISSING for i in (5, 500, 5000)})
    done.update(dict.fromkeys(ids[9_001:9_004], MARKED))
    progress(store, ids).save(done)
    record = store.values[PROGRESS_KEY]
    assert record["done_below"] == 9_000
    assert record["missing"] == [5, 500, 5000]
    assert record["beyond"] == {"9001": "m", "9002": "m", "9003": "m"}
    assert len(json.dumps(record)) < 300


def test_another_input_starts_over_with_a_warning(caplog):
    store = FakeStore()
    progress(store, [1, 2, 3]).save({1: MARKED})
    with caplog.at_level(logging.WARNING):
        assert progress(store, [1, 2, 4]).load() == {}
        assert progress(store, [1, 2, 3], read=False).load() == {}
    assert "differ" in caplog.text


@pytest.mark.parametrize(
    "record",
    [
        "garbage",
        {"format": 99},
        {"format": 1, "fingerprint": None},
        {"format": 1, "done_below": 99, "missing": [], "beyond": {}},
        {"format": 1, "done_below": 1, "missing": [], "beyond": {"7": "m"}},
        {"format": 1, "done_below": 1, "missing": [], "beyond": {"2": "?"}},
    ],
)
def test_an_unreadable_record_starts_over(record):
    store = FakeStore()
    ids = [1, 2, 3]
    if isinstance(record, dict) and "done_below" in record:
        record["fingerprint"] = progress(store, ids).fingerprint
    store.values[PROGRESS_KEY] = record
    assert progress(store, ids).load() == {}


def test_a_record_too_large_is_not_written(caplog):
    store = FakeStore()
    ids = list(range(1, 30_001))
    done = dict.fromkeys(ids, MISSING)
    with caplog.at_level(logging.WARNING):
        progress(store, ids).save(done)
    assert store.writes == 0
    assert "too large" in caplog.text
    assert MAX_RECORD_BYTES < 64 * 1024
