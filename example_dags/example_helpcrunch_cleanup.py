"""
Daily HelpCrunch inbox cleanup: find the chats closed more than N days ago and mark them read by agent.

The search runs first and pushes the chat IDs to XCom; MarkChatReadOperator takes them from there. Both
share the ``helpcrunch_default`` connection and stay under the account's 120 requests per minute.

Each run looks back ``lookback_days`` before the cut-off, so a missed day is caught up by the next run.
Only the chats not read by the agent yet are kept (``unread_by="agent"``), so a daily run sends about one
day's worth of requests, not the whole lookback's. Trigger it with ``{"lookback_days": 3650}`` once to sweep
the whole history: a run triggered by hand has no data interval on Airflow 3, so the cut-off counts from the
run's ``run_after`` then.
"""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG, Param

from airflow_provider_helpcrunch.operators.helpcrunch import (
    HelpCrunchSearchChatsOperator,
    MarkChatReadOperator,
)

# The end of the run's data interval; a run triggered without a logical date (Airflow 3) has none, but every
# run has run_after.
RUN_END = "(data_interval_end if data_interval_end is defined and data_interval_end else dag_run.run_after)"
CUTOFF = "(" + RUN_END + " - macros.timedelta(days=params.closed_days_ago))"

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
            ("closedAt", "<", "{{ " + CUTOFF + ".timestamp() | int }}"),
            (
                "closedAt",
                ">=",
                "{{ (" + CUTOFF + " - macros.timedelta(days=params.lookback_days)).timestamp() | int }}",
            ),
        ],
        sort="closedAt",
        order="asc",
        # search cannot filter on it: pages are filtered as they arrive
        unread_by="agent",
    )

    mark_read_by_agent = MarkChatReadOperator(
        task_id="mark_read_by_agent",
        chat_ids=find_closed_chats.output,
        by="agent",
        # a chat deleted between the search and the marking is not an error for a cleanup job
        on_missing="skip",
    )
