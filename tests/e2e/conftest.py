"""End-to-end: real DAG runs with ``dag.test()`` on a throwaway SQLite metadata DB."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from airflow_provider_helpcrunch.testing.airflow_home import load_dagbag
from tests.helpers import AIRFLOW_HOME, API_KEY, REPO

pytestmark = pytest.mark.e2e

E2E_DAGS = REPO / "tests" / "e2e" / "dags"
DAGS_FOLDER = AIRFLOW_HOME / "dags"
EXAMPLE_DAGS = REPO / "example_dags"


def airflow_cli(*args: str) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "airflow", *args], capture_output=True, text=True, timeout=600, check=False
    )
    if completed.returncode:
        raise RuntimeError(f"airflow {' '.join(args)} failed:\n{completed.stdout}\n{completed.stderr}")


@pytest.fixture(scope="session")
def airflow_db():
    """Migrate the metadata DB once, and put the DAG files in the dags folder."""
    for source in (*EXAMPLE_DAGS.glob("*.py"), *E2E_DAGS.glob("*.py")):
        shutil.copy(source, DAGS_FOLDER / source.name)
    airflow_cli("db", "migrate")
    return AIRFLOW_HOME


@pytest.fixture(scope="session")
def dagbag(airflow_db):
    return load_dagbag(str(DAGS_FOLDER))


@pytest.fixture
def e2e_standin(make_helpcrunch_standin):
    """60 chats (ids 5200-5259) behind helpcrunch_default, paced fast so that runs stay short."""
    import time

    return make_helpcrunch_standin(chats=60, now=int(time.time()), api_key=API_KEY, requests_per_minute=6000)


@pytest.fixture
def fast_connection(e2e_standin, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_HELPCRUNCH_DEFAULT", e2e_standin.connection_json(requests_per_minute=6000)
    )
    return e2e_standin
