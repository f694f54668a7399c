"""
Case 7 of ``make bench``: a marking run that a fault stops, retried once, with or without ``resume``. Its
chats, ``resume`` and pace come from ``HELPCRUNCH_BENCH_PARAMS`` (JSON), set by the benchmark.
"""

from __future__ import annotations

import json
import os

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_helpcrunch.operators.helpcrunch import MarkChatReadOperator

PARAMS = json.loads(os.environ.get("HELPCRUNCH_BENCH_PARAMS", "{}"))

with DAG(dag_id="bench_resume", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
    MarkChatReadOperator(
        task_id="mark",
        chat_ids=PARAMS.get("chat_ids", []),
        resume=PARAMS.get("resume", True),
        max_retries=0,
        requests_per_minute=PARAMS.get("limit", 120),
        max_in_flight=1,
        retries=1,
        retry_delay=pendulum.duration(seconds=0),
    )
