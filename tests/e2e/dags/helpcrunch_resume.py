"""A marking task that fails in try 1 (a HelpCrunch fault outlives its retries) and is retried once."""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_helpcrunch.operators.helpcrunch import MarkChatReadOperator

with DAG(
    dag_id="helpcrunch_resume",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
) as dag:
    MarkChatReadOperator(
        task_id="mark",
        chat_ids=list(range(5200, 5260)),
        max_retries=0,
        retries=1,
        retry_delay=pendulum.duration(seconds=0),
    )
