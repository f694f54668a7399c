"""A run against a server that echoes the credentials it was sent in its error answers."""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_helpcrunch.operators.helpcrunch import MarkChatReadOperator

with DAG(
    dag_id="helpcrunch_echoing_server",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
) as dag:
    MarkChatReadOperator(task_id="mark_against_an_echoing_server", chat_ids=[5240, 5241, 5242])
