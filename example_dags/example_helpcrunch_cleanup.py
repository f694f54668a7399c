"""
End-of-day HelpCrunch inbox cleanup: close the chats that went quiet, then mark them read by agent.

A chat went quiet when it is not closed and nothing happened in it (no message, no change) for
``quiet_days``: the search filters on ``chats.updatedAt``. The search runs first and pushes those chats to
XCom; SetChatStatusOperator closes them and MarkChatReadOperator marks them read, both taking the chats from
the search. All three share the ``helpcrunch_default`` connection and stay under the account's 120 requests
per minute; a retry of either write resumes where the earlier try stopped (Airflow 3.3).

Each run looks back ``lookback_days`` before the cut-off, so a missed day is caught up by the next run; a
chat closed by an earlier run no longer matches, so a daily run sends about one day's worth of requests.
Trigger it with ``{"lookback_days": 3650}`` once to sweep the whole history: a run triggered by hand has no
data interval on Airflow 3, so the cut-off counts from the run's ``run_after`` then.
"""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG, Param

from airflow_provider_helpcrunch.operators.helpcrunch import (
    HelpCrunchSearchChatsOperator,
    MarkChatReadOperator,
    SetChatStatusOperator,
)

# The end of the run's data interval; a run triggered without a logical date (Airflow 3) has none, but every
# run has run_after.
RUN_END = "(data_interval_end if data_interval_end is defined and data_interval_end else dag_run.run_after)"
CUTOFF = "(" + RUN_END + " - macros.timedelta(days=params.quiet_days))"

with DAG(
    dag_id="example_helpcrunch_cleanup",
    description="Close HelpCrunch chats that went quiet for N days, then mark them read by agent",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    params={
        "quiet_days": Param(7, type="integer", minimum=0, description="Close chats with no update this long"),
        "lookback_days": Param(30, type="integer", minimum=1, description="How far before that to look"),
    },
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=5)},
    tags=["helpcrunch", "example"],
) as dag:
    find_quiet_chats = HelpCrunchSearchChatsOperator(
        task_id="find_quiet_chats",
        filters=[
            ("status", "!=", "closed"),
            ("updatedAt", "<", "{{ " + CUTOFF + ".timestamp() | int }}"),
            (
                "updatedAt",
                ">=",
                "{{ (" + CUTOFF + " - macros.timedelta(days=params.lookback_days)).timestamp() | int }}",
            ),
        ],
        sort="createdAt",
        order="asc",
        # the chat dicts, so that each write skips the chats already as it wants them
        return_ids=False,
    )

    close_quiet_chats = SetChatStatusOperator(
        task_id="close_quiet_chats",
        chat_ids=find_quiet_chats.output,
        status="closed",
        # a chat deleted between the search and the write is not an error for a cleanup job
        on_missing="skip",
    )

    mark_read_by_agent = MarkChatReadOperator(
        task_id="mark_read_by_agent",
        chat_ids=find_quiet_chats.output,
        by="agent",
        on_missing="skip",
    )

    close_quiet_chats >> mark_read_by_agent
