"""
Daily export of HelpCrunch into the warehouse's object storage: the chats that changed yesterday, the
messages written yesterday, and a snapshot of the customers, as JSON Lines (gzip) under one folder.

Each scheduled run exports its data interval (the previous day), a backfill exports its days, and
re-running a day rewrites the same files. Point ``HELPCRUNCH_EXPORT_PATH`` at any Airflow object storage:
``s3://aws_default@my-bucket/helpcrunch`` (with ``apache-airflow-providers-amazon[s3fs]``), ``gs://...``,
or a local folder (the default, under ``AIRFLOW_HOME``).

A second DAG runs whenever a new chats file lands (the export emits an asset event per stream): here it
counts the chats, where a warehouse would load them. It names the asset with ``export_asset``, from the same
path as the export: Airflow leaves the connection out of an asset's URI (``s3://aws_default@bucket/x``
emits on ``s3://bucket/x/chats``), so a URI rebuilt by hand from the path would name another asset.

Run it locally against the stand-in: see "Run the export example locally" in the README.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import DAG, task
from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_helpcrunch.transfers.helpcrunch_to_object_storage import (
    HelpCrunchToObjectStorageOperator,
    export_asset,
)

AIRFLOW_HOME = Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser()
EXPORT_PATH = os.environ.get("HELPCRUNCH_EXPORT_PATH", f"file://{AIRFLOW_HOME}/helpcrunch-export")

with DAG(
    dag_id="example_helpcrunch_export",
    description="Export yesterday's HelpCrunch chats and messages, and the customers, to object storage",
    # each run's data interval is the day before it (Airflow 3's "@daily" alone gives an empty interval)
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=5)},
    tags=["helpcrunch", "example"],
):
    HelpCrunchToObjectStorageOperator(
        task_id="export",
        path=EXPORT_PATH,
        streams=["chats", "messages", "customers"],
        compression="gzip",
    )

with DAG(
    dag_id="example_helpcrunch_export_loaded",
    description="Runs when the export writes a new chats file",
    schedule=[export_asset(EXPORT_PATH, "chats")],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=5)},
    tags=["helpcrunch", "example"],
):

    @task
    def count_chats(**context: Any) -> int:
        import gzip

        from airflow.providers.common.compat.sdk import ObjectStoragePath

        # what the export wrote, from every one of its asset events since the last run ("dataset" events
        # on Airflow 2): several exports may have landed before this run started
        events = context.get("triggering_asset_events") or context.get("triggering_dataset_events") or {}
        written = [event.extra["path"] for asset_events in events.values() for event in asset_events]
        return sum(gzip.decompress(ObjectStoragePath(path).read_bytes()).count(b"\n") for path in written)

    count_chats()
