"""A run that must fail: one chat does not exist and on_missing is "fail"; the others are still marked."""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_helpcrunch.operators.helpcrunch import MarkChatReadOperator

with DAG(
    dag_id="helpcrunch_failures",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
) as dag:
    MarkChatReadOperator(task_id="mark_with_a_missing_chat", chat_ids=[5220, 999999, 5221])
    MarkChatReadOperator(task_id="mark_bad_input", chat_ids=[5222, "not-a-chat"])
