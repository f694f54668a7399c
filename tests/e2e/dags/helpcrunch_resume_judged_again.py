"""
Resuming against inputs that change between tries, and against a damaged progress record.

``chat_ids`` renders from ``ti.try_number``: try 1 gets chat dicts of which 5200-5209 show them read by the
agent already, try 2 the same chats all unread. Chat 5230 fails try 1 (the test scripts the fault). With
``damage`` set in the run's conf, try 1 leaves a damaged progress record behind as it fails.
"""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_helpcrunch.operators.helpcrunch import MarkChatReadOperator
from airflow_provider_helpcrunch.operators.task_state import PROGRESS_KEY, fingerprint

IDS = list(range(5200, 5260))
TRY_1 = [{"id": i, "readByAgent": i < 5210} for i in IDS]
TRY_2 = [{"id": i, "readByAgent": False} for i in IDS]
#: damaged records, by name: one of the format this version writes, one of the earlier format
DAMAGED = {
    "runs_a_list": {"format": 2, "runs": ["m", 30]},
    "beyond_a_list": {"format": 1, "done_below": 10, "missing": [], "beyond": []},
}


class DamagingMarkChatReadOperator(MarkChatReadOperator):
    """Marks as its parent does; in try 1, leaves the record named by ``damage`` behind it as it fails."""

    def execute(self, context):
        try:
            return super().execute(context)
        finally:
            store = context.get("task_state_store")
            damage = context["dag_run"].conf.get("damage")
            if store is not None and damage and context["ti"].try_number == 1:
                store.set(
                    PROGRESS_KEY.format("mark"),
                    {**DAMAGED[damage], "fingerprint": fingerprint(IDS, "agent", True)},
                )


with DAG(
    dag_id="helpcrunch_resume_judged_again",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    render_template_as_native_obj=True,
    params={"try_1": TRY_1, "try_2": TRY_2},
) as dag:
    mark = DamagingMarkChatReadOperator(
        task_id="mark",
        chat_ids="{{ params.try_1 if ti.try_number == 1 else params.try_2 }}",
        max_in_flight=1,
        max_retries=0,
        retries=1,
        retry_delay=pendulum.duration(seconds=0),
    )

    @task
    def check(result: dict) -> None:
        """Every chat was marked, in this try or the first; none counts as skipped (try 2 says unread)."""
        assert result["marked"] == IDS, result["marked"]
        assert result["skipped"] == [], result["skipped"]

    check(mark.output)
