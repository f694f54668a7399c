"""
A throwaway Airflow home for tests, demos and benchmarks.

A SQLite metadata DB, a dags folder, no example DAGs. Set it up before Airflow is imported; this module
imports nothing of Airflow's until asked to.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path


def use_airflow_home(home: Path, **settings: str) -> Path:
    """
    Point Airflow at ``home`` through the environment: ``home/airflow.db`` (SQLite) and ``home/dags``.

    :param settings: more ``AIRFLOW__...`` variables to set.
    :return: the dags folder (created).
    """
    dags = home / "dags"
    dags.mkdir(parents=True, exist_ok=True)
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__METRICS__TIMER_UNIT_CONSISTENCY": "True",
            **settings,
        }
    )
    return dags


def load_dagbag(folder: str | Path) -> Any:
    """Return a ``DagBag`` of ``folder``, from where the running Airflow keeps the class (3.x or 2.x)."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 2
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]
    return DagBag(dag_folder=str(folder))
