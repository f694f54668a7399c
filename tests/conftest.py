"""Test set-up shared by every layer: a throwaway Airflow home, set before Airflow is imported."""

from __future__ import annotations

import os

import pytest

from airflow_provider_helpcrunch.testing.airflow_home import use_airflow_home
from tests.helpers import AIRFLOW_HOME

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
