"""
Daily HelpCrunch inbox cleanup: find the chats closed more than N days ago and mark them read by agent.

The search runs first and pushes the chat IDs to XCom; MarkChatReadOperator takes them from there. Both
share the ``helpcrunch_default`` connection and stay under the account's 120 requests per minute.

Each run looks back ``lookback_days`` before the cut-off, so a missed day is caught up by the next run;
chats that were already read are simply marked again (the call is idempotent). Trigger it with
``{"lookback_days": 3650}`` once to sweep the whole history.
"""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG, Param

from airflow_provider_helpcrunch.operators.helpcrunch import (
    HelpCrunchSearchChatsOperator,
    MarkChatReadOperator,
)

CUTOFF = "(data_interval_end - macros.timedelta(days=params.closed_days_ago))"

with DAG(
    dag_id="example_helpcrunch_cleanup",
    description="Mark HelpCrunch chats read by agent once they have been closed for N days",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    params={
        "closed_days_ago": Param(7, type="integer", minimum=0, description="Mark chats closed this long ago"),
        "lookback_days": Param(30, type="integer", minimum=1, description="How far before that to look"),
    },
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=5)},
    tags=["helpcrunch", "example"],
) as dag:
    find_closed_chats = HelpCrunchSearchChatsOperator(
        task_id="find_closed_chats",
        filters=[
            ("status", "=", "closed"),
            ("closedAt", "<", "{{ " + CUTOFF + ".int_timestamp }}"),
            (
                "closedAt",
                ">=",
                "{{ (" + CUTOFF + " - macros.timedelta(days=params.lookback_days)).int_timestamp }}",
            ),
        ],
        sort="closedAt",
        order="asc",
    )

    mark_read_by_agent = MarkChatReadOperator(
        task_id="mark_read_by_agent",
        chat_ids=find_closed_chats.output,
        by="agent",
        # a chat deleted between the search and the marking is not an error for a cleanup job
        on_missing="skip",
    )
