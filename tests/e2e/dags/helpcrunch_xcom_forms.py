"""Every way a DAG author hands chat IDs to MarkChatReadOperator, in one run; ``check`` asserts them."""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_helpcrunch.operators.helpcrunch import (
    HelpCrunchSearchChatsOperator,
    MarkChatReadOperator,
)

with DAG(
    dag_id="helpcrunch_xcom_forms",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
) as dag:

    @task
    def find_ids() -> list[int]:
        return [5200, 5201]

    @task
    def find_dicts() -> list[dict]:
        return [{"id": 5202, "status": "closed"}, {"id": 5203, "status": "closed"}]

    @task
    def find_strings() -> list[str]:
        return ["5204", "5205", "5204"]

    @task
    def find_nothing() -> None:
        return None

    @task
    def batch(ids: list[int]) -> list[int]:
        return ids

    search = HelpCrunchSearchChatsOperator(
        task_id="search", filters=[("chats.status", "=", "new")], sort="createdAt", max_chats=2
    )
    marks = [
        MarkChatReadOperator(task_id="by_xcomarg", chat_ids=find_ids()),
        MarkChatReadOperator(task_id="by_output", chat_ids=search.output, by="customer"),
        MarkChatReadOperator(task_id="by_jinja_string", chat_ids="{{ ti.xcom_pull(task_ids='find_dicts') }}"),
        MarkChatReadOperator(task_id="by_xcom_task_ids", xcom_task_ids="find_strings"),
        MarkChatReadOperator(task_id="by_plain_list", chat_ids=[5206, "5207"]),
        MarkChatReadOperator(task_id="by_mapped_upstream", chat_ids=batch.expand(ids=[[5208, 5209], [5210]])),
        MarkChatReadOperator(
            task_id="by_empty_jinja", chat_ids="{{ ti.xcom_pull(task_ids='find_nothing') }}"
        ),
    ]
    by_expand = MarkChatReadOperator.partial(task_id="by_expand").expand(chat_ids=[[5211, 5212], [5213]])
    find_dicts() >> marks[2]
    find_strings() >> marks[3]
    find_nothing() >> marks[6]

    @task
    def check(ti=None) -> None:
        def marked(task_id: str) -> list[int]:
            return ti.xcom_pull(task_ids=task_id)["marked"]

        assert marked("by_xcomarg") == [5200, 5201]
        assert marked("by_output") == ti.xcom_pull(task_ids="search")
        assert len(marked("by_output")) == 2
        assert ti.xcom_pull(task_ids="by_output")["by"] == "customer"
        assert marked("by_jinja_string") == [5202, 5203]
        assert marked("by_xcom_task_ids") == [5204, 5205]
        assert marked("by_plain_list") == [5206, 5207]
        assert marked("by_mapped_upstream") == [5208, 5209, 5210]
        assert ti.xcom_pull(task_ids="by_empty_jinja") == {
            "marked": [],
            "missing": [],
            "skipped": [],
            "by": "agent",
            "read": True,
            "requested": 0,
            "requests": {"sent": 0, "rate_limited": 0, "rate_limit_wait_seconds": 0.0},
        }
        assert sorted(r["marked"] for r in ti.xcom_pull(task_ids="by_expand")) == [[5211, 5212], [5213]]

    checked = check()
    marks >> checked
    by_expand >> checked
