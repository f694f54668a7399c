"""
Case 2 of ``make bench``: what a DAG author writes with the HTTP provider, one mapped ``HttpOperator`` per
chat. The chat IDs come from ``HELPCRUNCH_BENCH_PARAMS`` (JSON), set by the benchmark.
"""

from __future__ import annotations

import json
import os

import pendulum
from airflow.providers.common.compat.sdk import DAG
from airflow.providers.http.operators.http import HttpOperator

PARAMS = json.loads(os.environ.get("HELPCRUNCH_BENCH_PARAMS", "{}"))
CHAT_IDS: list[int] = PARAMS.get("chat_ids", [])

with DAG(
    "bench_http_operator", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False
) as dag:
    HttpOperator.partial(
        task_id="mark_read",
        http_conn_id="helpcrunch_http",
        endpoint="v1/chats/readByAgent",
        method="PUT",
        headers={
            "Authorization": "Bearer {{ conn.helpcrunch_default.password }}",
            "Content-Type": "application/json",
        },
    ).expand(data=[json.dumps({"id": chat_id, "read": True}) for chat_id in CHAT_IDS])
