"""The search sensor in real DAG runs: poking on the worker, and deferred to the triggerer."""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_helpcrunch.operators.helpcrunch import MarkChatReadOperator
from airflow_provider_helpcrunch.sensors.helpcrunch import HelpCrunchSearchChatsSensor

START = pendulum.datetime(2026, 1, 1, tz="UTC")

for dag_id, deferrable in (("helpcrunch_sensor_poke", False), ("helpcrunch_sensor_deferred", True)):
    with DAG(dag_id=dag_id, schedule=None, start_date=START):
        wait = HelpCrunchSearchChatsSensor(
            task_id="wait",
            filters=[("status", "=", "pending")],
            min_chats=3,
            poke_interval=15,
            timeout=110,
            deferrable=deferrable,
        )
        MarkChatReadOperator(task_id="mark", chat_ids=wait.output)
