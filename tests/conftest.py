"""Test set-up shared by every layer: a throwaway Airflow home, set before Airflow is imported."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from airflow_provider_helpcrunch.testing.airflow_home import use_airflow_home
from tests.helpers import AIRFLOW_HOME

# the stand-in's fixtures, as a user's conftest.py takes them (the package does not load them by itself)
pytest_plugins = ["airflow_provider_helpcrunch.testing.pytest_plugin"]

use_airflow_home(
    AIRFLOW_HOME,
    AIRFLOW__CORE__ALLOWED_DESERIALIZATION_CLASSES_REGEXP="airflow.* airflow_provider_helpcrunch.*",
)
# A developer's own HelpCrunch connection must never leak into the tests.
for name in list(os.environ):
    if name.startswith("AIRFLOW_CONN_HELPCRUNCH"):
        del os.environ[name]


@pytest.fixture
def redis_server(monkeypatch):
    """A fresh Redis server on loopback, behind the Airflow connection ``redis_pacer``."""
    from airflow_provider_helpcrunch.testing.redis_server import RedisServer

    server = RedisServer().start()
    monkeypatch.setenv("AIRFLOW_CONN_REDIS_PACER", server.connection_json())
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_server():
    """A moto S3 server on a free loopback port, with the bucket ``exports``, for the session (Airflow
    caches the filesystem of a connection, so every test uses the same endpoint)."""
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
