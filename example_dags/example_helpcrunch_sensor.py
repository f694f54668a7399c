"""
Wait for work, then do it (every supported Airflow, 2.11 included): a deferrable sensor waits until at least
10 chats are pending, frees its worker slot while it waits, then hands the chats it found to a write.

The sensor searches once on the worker; if fewer than ``min_chats`` match it defers to the triggerer, which
searches every ``poke_interval`` without holding a worker, until enough match or ``timeout`` passes.
"""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_helpcrunch.operators.helpcrunch import SetChatStatusOperator
from airflow_provider_helpcrunch.sensors.helpcrunch import HelpCrunchSearchChatsSensor

with DAG(
    dag_id="example_helpcrunch_sensor",
    description="When 10 chats are pending, put them on hold",
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=5)},
    tags=["helpcrunch", "example"],
):
    pending = HelpCrunchSearchChatsSensor(
        task_id="ten_pending_chats",
        filters=[("status", "=", "pending")],
        min_chats=10,
        poke_interval=120,
        timeout=3000,
        deferrable=True,
    )
    SetChatStatusOperator(task_id="put_on_hold", chat_ids=pending.output, status="on hold")
