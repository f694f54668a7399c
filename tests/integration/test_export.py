"""The export to object storage over real HTTP against the stand-in, to file:// (and S3 in test_export_s3)."""

from __future__ import annotations

import gzip
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from airflow_provider_helpcrunch.exceptions import HelpCrunchAPIError, HelpCrunchAuthError
from airflow_provider_helpcrunch.testing import Fault
from airflow_provider_helpcrunch.transfers.helpcrunch_to_object_storage import (
    HelpCrunchToObjectStorageOperator,
)
from tests.helpers import API_KEY, export_operator

pytestmark = pytest.mark.integration

START, END = 1_764_000_000, 1_764_086_400  # one day
WINDOW = "20251124T160000Z_20251125T160000Z"


def seconds(text: str) -> float:
    """An exported timestamp (RFC 3339 in UTC) as UNIX seconds."""
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def lines(path: Path) -> list[dict]:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return [json.loads(line) for line in data.decode().splitlines()]


def export(tmp_path, **kwargs) -> dict:
    return export_operator(tmp_path, START, END, **kwargs).execute({})


@pytest.fixture
def inbox(make_helpcrunch_standin):
    """Chats whose updates and messages sit at and around the window's bounds."""
    standin = make_helpcrunch_standin(chats=0, api_key=API_KEY, requests_per_minute=None)
    for chat_id, updated in ((1, START - 1), (2, START), (3, START + 3600), (4, END - 1), (5, END)):
        standin.add_chat(id=chat_id, createdAt=START - 86400 * 10 + chat_id)
        for created in (START - 5, START, END - 1, END):
            standin.add_message(chat_id, createdAt=created)
        standin.update_chat(chat_id, updatedAt=updated, lastMessageAt=END)
    return standin


def test_the_window_includes_its_start_and_not_its_end(tmp_path, inbox):
    result = export(tmp_path)
    chats = lines(tmp_path / "chats" / f"{WINDOW}.jsonl")
    messages = lines(tmp_path / "messages" / f"{WINDOW}.jsonl")
    assert [chat["id"] for chat in chats] == [2, 3, 4]  # updated at START, inside, END - 1; not 1 or 5
    # messages created at START and END - 1, of every chat whose last message is not older than START,
    # whatever its updatedAt says (chat 1's was not moved by its messages, 5 changed after the end)
    assert sorted((m["chat"], seconds(m["createdAt"])) for m in messages) == sorted(
        (chat, float(moment)) for chat in (1, 2, 3, 4, 5) for moment in (START, END - 1)
    )
    assert result["streams"]["chats"] == {
        "path": f"file://{tmp_path}/chats/{WINDOW}.jsonl",
        "records": 3,
        "schema": f"file://{tmp_path}/chats/_schema.v1.json",
        "schema_version": 1,
    }
    assert result["streams"]["messages"]["records"] == 10
    assert result["window"] == {"start": "2025-11-24T16:00:00+00:00", "end": "2025-11-25T16:00:00+00:00"}


def test_paging_a_chats_messages_stops_at_the_first_one_older_than_the_window(
    tmp_path, make_helpcrunch_standin
):
    standin = make_helpcrunch_standin(chats=0, api_key=API_KEY, requests_per_minute=None)
    standin.add_chat(id=7)
    for n in range(100):
        standin.add_message(7, createdAt=START - 10_000 - n)  # older than the window: positions 250-349
    for n in range(200):
        standin.add_message(7, createdAt=START + n * 10)  # in it: positions 50-249
    for n in range(50):
        standin.add_message(7, createdAt=END + n)  # newer than it: positions 0-49
    standin.update_chat(7, updatedAt=START + 5)
    result = export(tmp_path)
    assert result["streams"]["messages"]["records"] == 200
    pages = [r.path for r in standin.requests if "/messages" in r.path]
    assert len(pages) == 3  # 0-99, 100-199, 200-299 (which holds the first older one); never 300-349
    written = lines(tmp_path / "messages" / f"{WINDOW}.jsonl")
    assert [seconds(m["createdAt"]) for m in written] == sorted(
        (START + n * 10 for n in range(200)), reverse=True
    )


def test_a_rerun_of_the_interval_writes_the_same_bytes(tmp_path, inbox):
    export(tmp_path, compression="gzip")
    first = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    export(tmp_path, compression="gzip")
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == first
    assert sorted(str(p.relative_to(tmp_path)) for p in first) == [
        f"chats/{WINDOW}.jsonl.gz",
        "chats/_schema.v1.json",
        f"messages/{WINDOW}.jsonl.gz",
        "messages/_schema.v1.json",
    ]


def test_customers_are_a_full_snapshot_named_after_when_it_was_read(tmp_path, make_helpcrunch_standin):
    standin = make_helpcrunch_standin(chats=230, api_key=API_KEY, requests_per_minute=None)
    before = datetime.now(UTC).replace(microsecond=0)
    result = export(tmp_path, streams=["customers"], snapshot_max_delay=timedelta(days=36500))
    after = datetime.now(UTC)
    expected = {chat["customer"]["id"] for chat in standin.chats.values()}
    (snapshot,) = (tmp_path / "customers").glob("snapshot_*.jsonl")
    taken = datetime.strptime(snapshot.name, "snapshot_%Y%m%dT%H%M%SZ.jsonl").replace(tzinfo=UTC)
    assert before <= taken <= after  # the moment it holds, not the window's end
    assert result["streams"]["customers"]["taken_at"] == taken.isoformat()
    written = lines(snapshot)
    assert sorted(c["id"] for c in written) == sorted(expected)
    assert result["streams"]["customers"]["records"] == len(expected)
    assert sum(1 for r in standin.requests if r.path.startswith("/v1/customers")) == len(expected) // 100 + 1


def test_a_past_window_takes_no_customer_snapshot(tmp_path, make_helpcrunch_standin):
    standin = make_helpcrunch_standin(chats=30, api_key=API_KEY, requests_per_minute=None)
    result = export(tmp_path, streams=["chats", "customers"])  # a window of 2025: a backfill's
    assert "customers" not in result["streams"]
    assert "more than 1 day, 0:00:00 ago" in result["skipped"]["customers"]
    assert not any(r.path.startswith("/v1/customers") for r in standin.requests)
    assert not (tmp_path / "customers").exists()


def test_a_recent_window_takes_the_snapshot_by_default(tmp_path, make_helpcrunch_standin):
    make_helpcrunch_standin(chats=30, api_key=API_KEY, requests_per_minute=None)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    op = HelpCrunchToObjectStorageOperator(
        task_id="export",
        path=f"file://{tmp_path}",
        streams=["customers"],
        window_start=end - timedelta(days=1),
        window_end=end,
        requests_per_minute=6000,
    )
    result = op.execute({})
    assert result["skipped"] == {}
    assert result["streams"]["customers"]["records"] > 0


def test_a_429_storm_loses_nothing(tmp_path, make_helpcrunch_standin):
    standin = make_helpcrunch_standin(chats=0, api_key=API_KEY, requests_per_minute=5, window=1.0)
    for chat_id in range(1, 9):
        standin.add_chat(id=chat_id)
        standin.add_message(chat_id, createdAt=START + chat_id)
        standin.update_chat(chat_id, updatedAt=START + chat_id)
    result = export(tmp_path, max_in_flight=4)
    assert sum(1 for r in standin.requests if r.status == 429) > 0
    assert result["streams"]["chats"]["records"] == 8
    assert result["streams"]["messages"]["records"] == 8


def test_a_stop_mid_export_leaves_no_file_at_the_final_path(tmp_path, inbox):
    inbox.inject(Fault(status=401), chat_id=4)  # its messages page: after the chats file was half written
    with pytest.raises(HelpCrunchAuthError, match="401") as caught:
        export(tmp_path)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # no final file, no partial one
    # the same kind of error, saying how far it got and that nothing of it was kept
    assert str(caught.value).startswith("The export of chats and messages from 2025-11-24T16:00:00+00:00")
    assert "stopped after 3 chats, 6 messages had been read; none of it is at the final paths" in str(
        caught.value
    )


def test_after_a_401_no_request_leaves_only_those_on_the_wire_finish(tmp_path, make_helpcrunch_standin):
    latency = 0.05
    standin = make_helpcrunch_standin(chats=0, api_key=API_KEY, requests_per_minute=None, latency=latency)
    for chat_id in range(1, 61):
        standin.add_chat(id=chat_id, createdAt=START - 86400 + chat_id)
        standin.add_message(chat_id, createdAt=START + chat_id)
    standin.inject(Fault(hang=2.0), chat_id=8)  # the file waits for chat 8 while the others go on
    standin.inject(Fault(status=401), chat_id=10)
    with pytest.raises(HelpCrunchAuthError, match="401"):
        export(tmp_path, streams=["messages"], max_in_flight=4)
    (refused,) = [r for r in standin.requests if r.status == 401]
    answered_at = refused.time + latency
    # sent after the stop: none (a request arrives within milliseconds of being sent; 0.3 s of margin)
    late = [r.path for r in standin.requests if r.time > answered_at + 0.3]
    assert late == []
    on_the_wire = [r for r in standin.requests if refused.time < r.time <= answered_at + 0.3]
    assert len(on_the_wire) <= 3  # max_in_flight - 1 other chats were under way
    assert len([r for r in standin.requests if "/messages" in r.path]) <= 13  # of 60 chats


@pytest.mark.parametrize("path", ["", "   ", None, 7])
def test_an_empty_or_missing_path_is_refused_when_the_dag_is_parsed(path):
    from airflow_provider_helpcrunch.exceptions import HelpCrunchConfigError

    with pytest.raises(HelpCrunchConfigError, match="path must be the folder to export to"):
        HelpCrunchToObjectStorageOperator(task_id="export", path=path)


def test_a_path_rendered_empty_is_refused_before_any_request(tmp_path, inbox, monkeypatch):
    from airflow_provider_helpcrunch.exceptions import HelpCrunchConfigError

    monkeypatch.chdir(tmp_path)
    op = HelpCrunchToObjectStorageOperator(
        task_id="export", path="{{ var.value.export_path }}", window_start=START, window_end=END
    )
    op.path = ""  # what it rendered to
    inbox.clear_requests()
    with pytest.raises(HelpCrunchConfigError, match=r"path must be the folder to export to .*got ''$"):
        op.execute({})
    assert inbox.requests == []
    assert list(tmp_path.iterdir()) == []  # nothing in the worker's current directory


def test_a_lone_surrogate_in_a_message_is_exported_escaped(tmp_path, make_helpcrunch_standin):
    standin = make_helpcrunch_standin(chats=0, api_key=API_KEY, requests_per_minute=None)
    standin.add_chat(id=1, createdAt=START - 86400)
    standin.add_message(1, createdAt=START + 1, text="half an emoji: \ud83d")
    result = export(tmp_path)
    raw = (tmp_path / "messages" / f"{WINDOW}.jsonl").read_bytes()
    raw.decode("utf-8")  # valid UTF-8
    assert b"half an emoji: \\ud83d" in raw
    assert [m["text"] for m in lines(tmp_path / "messages" / f"{WINDOW}.jsonl")] == ["half an emoji: \ud83d"]
    assert result["streams"]["messages"]["records"] == 1


def test_stale_partial_files_of_killed_tries_are_removed_by_the_next_run(tmp_path, inbox):
    import os

    folder = tmp_path / "chats"
    folder.mkdir()
    stale = folder / f"_{WINDOW}.jsonl.{'a' * 32}.partial"
    fresh = folder / f"_{WINDOW}.jsonl.{'b' * 32}.partial"  # another task may be writing it
    other = folder / "notes.partial"  # not one of ours
    final = folder / "20250101T000000Z_20250102T000000Z.jsonl"
    for path in (stale, fresh, other, final):
        path.write_text("x")
    old = time.time() - 7 * 3600
    for path in (stale, other, final):
        os.utime(path, (old, old))
    export(tmp_path, streams=["chats"])
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [fresh.name, other.name, final.name, f"{WINDOW}.jsonl", "_schema.v1.json"]
    )


def test_a_failed_run_removes_no_stale_file(tmp_path, inbox):
    import os

    folder = tmp_path / "chats"
    folder.mkdir()
    stale = folder / f"_{WINDOW}.jsonl.{'a' * 32}.partial"
    stale.write_text("x")
    old = time.time() - 7 * 3600
    os.utime(stale, (old, old))
    inbox.inject(Fault(status=401), path="/v1/chats/search")
    with pytest.raises(HelpCrunchAuthError):
        export(tmp_path, streams=["chats"])
    assert [p.name for p in folder.iterdir()] == [stale.name]


def test_the_summary_and_output_say_how_many_429s_were_met(tmp_path, make_helpcrunch_standin, caplog, capsys):
    import logging

    standin = make_helpcrunch_standin(chats=0, api_key=API_KEY, requests_per_minute=None)
    for chat_id in range(1, 4):
        standin.add_chat(id=chat_id, createdAt=START - 86400 + chat_id)
        standin.add_message(chat_id, createdAt=START + chat_id)
    standin.inject(Fault(status=429, retry_after=0.2), path="/v1/chats/", attempts=(1, 2))
    caplog.set_level(logging.INFO)
    result = export(tmp_path)
    sent = len(standin.requests)
    assert result["requests"]["sent"] == sent
    assert result["requests"]["rate_limited"] == 2
    assert result["requests"]["rate_limit_wait_seconds"] >= 0.4
    logged = caplog.text + capsys.readouterr().out
    assert f"HelpCrunch was sent {sent} request(s), 2 answered 429 (waited" in logged
    assert "Set redis_conn_id on the connection" in logged


def test_lineage_for_openlineage_names_helpcrunch_in_and_each_streams_folder_out(tmp_path, inbox):
    op = export_operator(tmp_path, START, END)
    assert op.get_openlineage_facets_on_complete(None) is None  # nothing exported yet
    op.execute({})
    lineage = op.get_openlineage_facets_on_complete(None)
    base = urlsplit(inbox.base_url)
    assert [(d.namespace, d.name) for d in lineage.inputs] == [
        (f"http://{base.netloc}", "/v1/chats"),
        (f"http://{base.netloc}", "/v1/chats/messages"),
    ]
    assert [(d.namespace, d.name) for d in lineage.outputs] == [
        ("file", f"{tmp_path}/chats"),
        ("file", f"{tmp_path}/messages"),
    ]


def test_without_the_openlineage_provider_lineage_is_none_and_nothing_breaks(tmp_path, inbox, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "airflow.providers.openlineage.extractors", None)  # not installed
    op = export_operator(tmp_path, START, END)
    op.execute({})
    assert op.get_openlineage_facets_on_complete(None) is None


@pytest.mark.parametrize(
    ("where", "field"),
    [("chat", "closedAt"), ("chat", "snoozedUntil"), ("message", "createdAt"), ("message", "updatedAt")],
)
def test_a_record_echoing_the_api_key_fails_without_the_key(tmp_path, make_helpcrunch_standin, where, field):
    standin = make_helpcrunch_standin(chats=0, api_key=API_KEY, requests_per_minute=None)
    standin.add_chat(id=1, createdAt=START - 86400)
    message = standin.add_message(1, createdAt=START + 1)
    if where == "chat":
        standin.update_chat(1, **{field: f"token {API_KEY}"}, updatedAt=START + 1)
    else:
        standin._messages[1][0][field] = f"token {API_KEY}"
    with pytest.raises(HelpCrunchAPIError) as caught:
        export(tmp_path)
    assert API_KEY not in str(caught.value)
    assert "***" in str(caught.value)
    assert message["id"]  # the export did reach the record


def test_every_timestamp_in_the_files_has_one_type_and_form(tmp_path, make_helpcrunch_standin):
    import jsonschema

    from airflow_provider_helpcrunch.transfers.export_records import schema, timestamp_fields

    # seeded chats write their timestamps in all three of HelpCrunch's forms (int, "int", "int.000")
    standin = make_helpcrunch_standin(chats=120, now=END, api_key=API_KEY, requests_per_minute=None)
    for chat_id in standin.chats:
        standin.update_chat(chat_id, updatedAt=START + chat_id % 80_000)
    result = export(
        tmp_path, streams=["chats", "messages", "customers"], snapshot_max_delay=timedelta(days=36500)
    )
    for stream, written in result["streams"].items():
        records = lines(Path(written["path"].removeprefix("file://")))
        assert records, stream
        for record in records:
            jsonschema.validate(record, schema(stream))
            for name in timestamp_fields(stream):
                value = record.get(name)
                assert value is None or (isinstance(value, str) and value.endswith("Z")), (
                    stream,
                    name,
                    value,
                )
                if value is not None:
                    assert datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ")  # one form
