"""The export to a real S3 API on loopback: moto's server mode, started by the test, through Airflow's
object storage and the Amazon provider's s3fs, as a user's ``s3://`` path would go."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timedelta

import pytest

from airflow_provider_helpcrunch.testing import Fault
from airflow_provider_helpcrunch.transfers.helpcrunch_to_object_storage import (
    HelpCrunchToObjectStorageOperator,
)
from tests.helpers import API_KEY

pytestmark = pytest.mark.integration

START, END = 1_764_000_000, 1_764_086_400
WINDOW = "20251124T160000Z_20251125T160000Z"


@pytest.fixture
def s3(s3_server, monkeypatch):
    """The module's S3 server behind the Airflow connection aws_default, its bucket emptied."""
    client, conn = s3_server
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(conn))
    for key in keys(client):
        client.delete_object(Bucket="exports", Key=key)
    return client


def keys(client) -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket="exports").get("Contents", []))


@pytest.fixture
def inbox(make_helpcrunch_standin):
    standin = make_helpcrunch_standin(chats=0, api_key=API_KEY, requests_per_minute=None)
    for chat_id in range(1, 6):
        standin.add_chat(id=chat_id, createdAt=START - 86400 + chat_id)
        standin.add_message(chat_id, createdAt=START + chat_id)
        standin.update_chat(chat_id, updatedAt=START + chat_id)
    return standin


def export(**kwargs):
    return HelpCrunchToObjectStorageOperator(
        task_id="export",
        path="s3://aws_default@exports/helpcrunch",
        window_start=START,
        window_end=END,
        requests_per_minute=6000,
        compression="gzip",
        **kwargs,
    ).execute({})


def test_an_export_lands_in_s3(s3, inbox):
    result = export(streams=["chats", "messages", "customers"], snapshot_max_delay=timedelta(days=36500))
    taken = datetime.fromisoformat(result["streams"]["customers"]["taken_at"]).strftime("%Y%m%dT%H%M%SZ")
    assert keys(s3) == [
        f"helpcrunch/chats/{WINDOW}.jsonl.gz",
        "helpcrunch/chats/_schema.v1.json",
        "helpcrunch/customers/_schema.v1.json",
        f"helpcrunch/customers/snapshot_{taken}.jsonl.gz",
        f"helpcrunch/messages/{WINDOW}.jsonl.gz",
        "helpcrunch/messages/_schema.v1.json",
    ]
    body = s3.get_object(Bucket="exports", Key=f"helpcrunch/chats/{WINDOW}.jsonl.gz")["Body"].read()
    assert [json.loads(line)["id"] for line in gzip.decompress(body).splitlines()] == [1, 2, 3, 4, 5]
    assert result["streams"]["messages"]["records"] == 5
    assert (
        result["streams"]["chats"]["path"] == f"s3://aws_default@exports/helpcrunch/chats/{WINDOW}.jsonl.gz"
    )


def test_a_rerun_rewrites_the_same_objects(s3, inbox):
    export()
    first = {key: s3.get_object(Bucket="exports", Key=key)["Body"].read() for key in keys(s3)}
    export()
    assert {key: s3.get_object(Bucket="exports", Key=key)["Body"].read() for key in keys(s3)} == first


def test_a_failed_export_leaves_no_object_behind(s3, inbox):
    inbox.inject(Fault(status=401), chat_id=3)
    with pytest.raises(Exception, match="401"):
        export()
    assert keys(s3) == []
