"""The export to object storage over real HTTP against the stand-in, to file:// (and S3 in test_export_s3)."""

from __future__ import annotations

import gzip
import json
from typing import TYPE_CHECKING

import pytest

from airflow_provider_helpcrunch.exceptions import HelpCrunchAuthError
from airflow_provider_helpcrunch.testing import Fault
from airflow_provider_helpcrunch.transfers.helpcrunch_to_object_storage import (
    HelpCrunchToObjectStorageOperator,
)
from tests.helpers import API_KEY

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration

START, END = 1_764_000_000, 1_764_086_400  # one day
WINDOW = "20251124T160000Z_20251125T160000Z"


def lines(path: Path) -> list[dict]:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return [json.loads(line) for line in data.decode().splitlines()]


def export(tmp_path, **kwargs) -> dict:
    kwargs.setdefault("streams", ["chats", "messages"])
    op = HelpCrunchToObjectStorageOperator(
        task_id="export",
        path=f"file://{tmp_path}",
        window_start=START,
        window_end=END,
        requests_per_minute=6000,
        hook_params={"retry_backoff": 0.05},
        **kwargs,
    )
    return op.execute({})


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
    # messages created at START and END - 1, of every chat changed since START (5 changed after the end)
    assert sorted((m["chat"], float(m["createdAt"])) for m in messages) == sorted(
        (chat, float(moment)) for chat in (2, 3, 4, 5) for moment in (START, END - 1)
    )
    assert result["streams"]["chats"] == {"path": f"file://{tmp_path}/chats/{WINDOW}.jsonl", "records": 3}
    assert result["streams"]["messages"]["records"] == 8
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
    assert [float(m["createdAt"]) for m in written] == sorted(
        (START + n * 10 for n in range(200)), reverse=True
    )


def test_a_rerun_of_the_interval_writes_the_same_bytes(tmp_path, inbox):
    export(tmp_path, compression="gzip", streams=["chats", "messages", "customers"])
    first = {p: p.read_bytes() for p in tmp_path.rglob("*.gz")}
    export(tmp_path, compression="gzip", streams=["chats", "messages", "customers"])
    assert {p: p.read_bytes() for p in tmp_path.rglob("*.gz")} == first
    assert len(first) == 3
    assert sorted(p.name for p in tmp_path.rglob("*")) == sorted(
        [
            f"{WINDOW}.jsonl.gz",
            f"{WINDOW}.jsonl.gz",
            "snapshot_20251125T160000Z.jsonl.gz",
            "chats",
            "messages",
            "customers",
        ]
    )


def test_customers_are_a_full_snapshot(tmp_path, make_helpcrunch_standin):
    standin = make_helpcrunch_standin(chats=230, api_key=API_KEY, requests_per_minute=None)
    result = export(tmp_path, streams=["customers"])
    expected = {chat["customer"]["id"] for chat in standin.chats.values()}
    written = lines(tmp_path / "customers" / "snapshot_20251125T160000Z.jsonl")
    assert sorted(c["id"] for c in written) == sorted(expected)
    assert result["streams"]["customers"]["records"] == len(expected)
    assert sum(1 for r in standin.requests if r.path.startswith("/v1/customers")) == len(expected) // 100 + 1


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
    assert "stopped after 3 chats, 4 messages had been read; none of it is at the final paths" in str(
        caught.value
    )
