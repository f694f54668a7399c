"""
Mark a large set of HelpCrunch chats in parallel batches, without going over the account's limit.

An upstream task (any task: a query, a report, a search) returns the chat IDs split into batches; one
mapped MarkChatReadOperator task runs per batch. Every HelpCrunch call counts against ONE limit per
account (120 requests per minute), so parallel tasks must share it. Give the ``helpcrunch_default``
connection the extra ``redis_conn_id`` (an Airflow ``redis`` connection; ``pip install
"airflow-provider-helpcrunch[redis]"``): every task that uses the connection, on every worker, then draws
from one window kept in Redis, evenly spaced, and the account stays at 120 per minute however many batches
run at once. Nothing in this DAG has to change for it.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import DAG, Param, task

from airflow_provider_helpcrunch.hooks.helpcrunch import HelpCrunchHook
from airflow_provider_helpcrunch.operators.helpcrunch import MarkChatReadOperator

with DAG(
    dag_id="example_helpcrunch_mark_in_batches",
    description="Mark HelpCrunch chats read in parallel batches under one account limit",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={
        "status": Param("closed", type="string", description="Mark chats with this status"),
        "batch_size": Param(200, type="integer", minimum=1, maximum=10_000),
    },
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=5)},
    tags=["helpcrunch", "example"],
) as dag:

    @task
    def chat_id_batches(params: dict[str, Any] | None = None) -> list[list[int]]:
        """Find the chats and split their IDs into batches, one mapped task each."""
        assert params is not None  # Airflow passes the run's params
        hook = HelpCrunchHook()
        ids = [chat["id"] for chat in hook.search_chats([("status", "=", params["status"])])]
        size = params["batch_size"]
        return [ids[start : start + size] for start in range(0, len(ids), size)]

    MarkChatReadOperator.partial(task_id="mark_batch", by="agent", on_missing="skip").expand(
        chat_ids=chat_id_batches()
    )
