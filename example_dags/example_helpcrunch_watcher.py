"""
Start a DAG when chats are closed in HelpCrunch, not on a clock (Airflow 3): an ``Asset`` with an
``AssetWatcher`` whose trigger polls HelpCrunch from the triggerer, and a DAG scheduled on that asset that
marks exactly the chats of its triggering events read.

One request a poll (every ``HELPCRUNCH_WATCH_INTERVAL`` seconds, default 60: under 1% of the account's 120 a
minute); the watcher runs while the DAG is unpaused. Several events can start one run: the DAG reads every
one. A change may be reported twice (an overlap covers HelpCrunch's clock and index lag, and a restart of the
triggerer may repeat its last poll): the writes are idempotent, and chats already read are skipped.

On Airflow 2.11 (no event-driven scheduling) this file defines no DAG: use the sensor
(``example_helpcrunch_sensor.py``).
"""

from __future__ import annotations

import os
from typing import Any

import pendulum
from airflow.providers.common.compat.assets import Asset
from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_helpcrunch.hooks.helpcrunch import HelpCrunchHook
from airflow_provider_helpcrunch.operators.helpcrunch import MarkChatReadOperator
from airflow_provider_helpcrunch.triggers.helpcrunch import HelpCrunchChatsChangedTrigger

try:
    from airflow.sdk import AssetWatcher
except ImportError:  # Airflow 2: no event-driven scheduling
    AssetWatcher = None  # type: ignore[assignment,misc]

CLOSED = [("status", "=", "closed")]
POLL_INTERVAL = float(os.environ.get("HELPCRUNCH_WATCH_INTERVAL", "60"))

if AssetWatcher is not None:
    closed_chats = Asset(
        "helpcrunch_closed_chats",
        watchers=[
            AssetWatcher(
                name="helpcrunch_closed_chats",
                trigger=HelpCrunchChatsChangedTrigger(filters=CLOSED, poll_interval=POLL_INTERVAL),
            )
        ],
    )

    with DAG(
        dag_id="example_helpcrunch_on_closed_chats",
        description="Mark read the chats HelpCrunch closed, as soon as the watcher sees them",
        schedule=[closed_chats],
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=1)},
        tags=["helpcrunch", "example"],
    ):

        @task
        def closed_chat_ids(**context: Any) -> list[int]:
            """Every chat of every triggering event; a truncated event's window is searched whole."""
            ids: list[int] = []
            for event in context["triggering_asset_events"][closed_chats]:
                payload = (event.extra or {}).get("payload") or {}
                ids += payload.get("chat_ids", [])
                if payload.get("truncated"):
                    window = payload["window"]
                    bounds = [("updatedAt", ">=", window["start"]), ("updatedAt", "<", window["end"])]
                    ids += [chat["id"] for chat in HelpCrunchHook().search_chats([*CLOSED, *bounds])]
            print(f"Chats closed: {sorted(set(ids))}")
            return ids

        MarkChatReadOperator(task_id="mark_read", chat_ids=closed_chat_ids())
