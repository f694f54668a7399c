"""Jinja with render_template_as_native_obj=True: the template renders to a list, not a string."""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_helpcrunch.operators.helpcrunch import MarkChatReadOperator

with DAG(
    dag_id="helpcrunch_native_templates",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    render_template_as_native_obj=True,
) as dag:

    @task
    def find() -> list[dict]:
        return [{"id": 5230}, {"id": 5231}]

    mark = MarkChatReadOperator(task_id="mark", chat_ids="{{ ti.xcom_pull(task_ids='find') }}")

    @task
    def check(ti=None) -> None:
        assert ti.xcom_pull(task_ids="mark")["marked"] == [5230, 5231]

    find() >> mark >> check()
