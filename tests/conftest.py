"""Test set-up shared by every layer: a throwaway Airflow home, set before Airflow is imported."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="helpcrunch-airflow-home-"))
DAGS_FOLDER = AIRFLOW_HOME / "dags"
DAGS_FOLDER.mkdir()

os.environ.update(
    {
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__METRICS__TIMER_UNIT_CONSISTENCY": "True",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME / 'airflow.db'}",
        "AIRFLOW__CORE__ALLOWED_DESERIALIZATION_CLASSES_REGEXP": "airflow.* airflow_provider_helpcrunch.*",
    }
)
# A developer's own HelpCrunch connection must never leak into the tests.
for name in list(os.environ):
    if name.startswith("AIRFLOW_CONN_HELPCRUNCH"):
        del os.environ[name]

API_KEY = "test-key-5f3c9a71e2"
