"""The export to a real S3 API on loopback: moto's server mode, started by the test, through Airflow's
object storage and the Amazon provider's s3fs, as a user's ``s3://`` path would go."""

from __future__ import annotations

import gzip
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from airflow_provider_helpcrunch.testing import Fault
from airflow_provider_helpcrunch.transfers.helpcrunch_to_object_storage import (
    HelpCrunchToObjectStorageOperator,
)
from tests.helpers import API_KEY

pytestmark = pytest.mark.integration

START, END = 1_764_000_000, 1_764_086_400
WINDOW = "20251124T160000Z_20251125T160000Z"


@pytest.fixture(scope="module")
def s3_server():
    """A moto S3 server on a free loopback port, with a bucket, for the module (Airflow caches the
    filesystem of a connection, so every test uses the same endpoint)."""
    import boto3

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            assert time.monotonic() < deadline, "moto_server did not start"
            time.sleep(0.1)
    conn = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"},
    }
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket="exports")
    yield client, conn
    server.terminate()
    server.wait(timeout=10)


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
    result = export(streams=["chats", "messages", "customers"])
    assert keys(s3) == [
        f"helpcrunch/chats/{WINDOW}.jsonl.gz",
        "helpcrunch/customers/snapshot_20251125T160000Z.jsonl.gz",
        f"helpcrunch/messages/{WINDOW}.jsonl.gz",
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
