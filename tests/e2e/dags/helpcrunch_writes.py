"""Every chat write in real DAG runs: one of each, and a status write whose retry resumes."""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_helpcrunch.operators.helpcrunch import (
    AssignChatOperator,
    SetChatStatusOperator,
    SnoozeChatOperator,
)

START = pendulum.datetime(2026, 1, 1, tz="UTC")

with DAG(dag_id="helpcrunch_every_write", schedule=None, start_date=START, params={"until": 1_900_000_000}):
    hold = SetChatStatusOperator(task_id="hold", chat_ids=[5200, 5201, 5202], status="on-hold")
    assign = AssignChatOperator(task_id="assign", chat_ids=[5203, 5204], assignee=12, department="2")
    unassign = AssignChatOperator(task_id="unassign", chat_ids="5205,5206", unassign=True)
    snooze = SnoozeChatOperator(task_id="snooze", chat_ids=hold.output, snoozed_until="{{ params.until }}")
    unsnooze = SnoozeChatOperator(task_id="unsnooze", chat_ids=[5207], snoozed_until=None)
    hold >> assign >> unassign >> snooze >> unsnooze

with DAG(dag_id="helpcrunch_write_resume", schedule=None, start_date=START):
    SetChatStatusOperator(
        task_id="close",
        chat_ids=list(range(5200, 5260)),
        status="closed",
        skip_unchanged=False,  # every chat is sent once, whatever the seeded status
        max_retries=0,
        retries=1,
        retry_delay=pendulum.duration(seconds=0),
    )
