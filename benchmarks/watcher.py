"""
Case 11 of ``make bench``: what a watcher costs and how soon it starts a DAG.

1. An idle watcher's requests per hour, against the stand-in: one simulated hour of polls (the waits between
   polls take no real time, every request is real), at the default interval and at the floor.
2. From a chat changed on the stand-in to the start of the DAG run it causes, with real Airflow 3 processes
   (the watcher example, polling at the 15 s floor): a few changes, one at a time.

``python -m benchmarks.watcher`` prints the table; ``make bench`` includes it.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow_provider_helpcrunch.testing import HelpCrunchStandIn

HOUR = 3600.0


def idle_requests_per_hour(poll_interval: float) -> int:
    """Requests a watcher sends in one simulated hour when nothing changes."""
    import os

    from airflow_provider_helpcrunch.triggers.helpcrunch import HelpCrunchChatsChangedTrigger

    class OneHour(HelpCrunchChatsChangedTrigger):
        waited = 0.0

        def _now(self) -> float:
            return 1_800_000_000.0 + self.waited  # the hour's own clock: a request takes none of it

        async def _sleep(self, seconds: float) -> None:
            self.waited += seconds
            if self.waited >= HOUR:
                raise asyncio.CancelledError

    standin = HelpCrunchStandIn(chats=50, requests_per_minute=None).start()
    os.environ["AIRFLOW_CONN_HELPCRUNCH_DEFAULT"] = standin.connection_json()
    trigger = OneHour(filters=[("status", "=", "closed")], poll_interval=poll_interval)

    async def run() -> None:
        try:
            async for _ in trigger.run():
                pass
        except asyncio.CancelledError:
            pass

    try:
        asyncio.run(run())
        return len(standin.requests)
    finally:
        standin.stop()


def change_to_run(samples: int) -> list[float]:
    """Seconds from a chat closed on the stand-in to the start of the DAG run it caused, per change."""
    from tests.e2e.deployment import DAG_ID, Deployment, wait_until

    standin = HelpCrunchStandIn(chats=0, requests_per_minute=None).start()
    now = int(time.time())
    for n in range(samples):
        standin.add_chat(id=6100 + n, status="opened", updatedAt=now - 86400, readByAgent=False)
    home = Path(tempfile.mkdtemp(prefix="helpcrunch-bench-watcher-"))
    deployment = Deployment(home, standin.connection_json())
    delays: list[float] = []
    try:
        deployment.cli("db", "migrate")
        for name in ("api-server", "dag-processor", "scheduler", "triggerer"):
            deployment.start(name)
        wait_until(
            "the DAG", lambda: deployment.query("select 1 from dag where dag_id = ?", DAG_ID), 180, home
        )
        deployment.cli("dags", "unpause", DAG_ID)
        wait_until("a first poll", lambda: standin.requests, 180, home)
        for n in range(samples):
            changed = time.time()
            standin.update_chat(6100 + n, status="closed", updatedAt=int(changed))
            started = wait_until(
                f"run {n + 1}",
                lambda n=n: [row for row in _starts(deployment, DAG_ID) if row is not None][n:],
                300,
                home,
            )
            delays.append(started[0] - changed)
            wait_until(f"run {n + 1} to end", lambda: _all_ended(deployment, DAG_ID), 300, home)
    finally:
        deployment.stop_all()
        standin.stop()
    return delays


def _starts(deployment: Any, dag_id: str) -> list[float | None]:
    rows = deployment.query("select start_date from dag_run where dag_id = ? order by id", dag_id)
    return [datetime.fromisoformat(value).timestamp() if value else None for (value,) in rows]


def _all_ended(deployment: Any, dag_id: str) -> bool:
    states = [state for (state,) in deployment.query("select state from dag_run where dag_id = ?", dag_id)]
    return bool(states) and all(state in ("success", "failed") for state in states)


def rows(samples: int = 3) -> dict[str, Any]:
    idle = {interval: idle_requests_per_hour(interval) for interval in (60.0, 15.0)}
    delays = change_to_run(samples)
    return {"idle": idle, "delays": delays}


def table(result: dict[str, Any]) -> str:
    lines = [
        "| idle watcher | requests per hour | share of the account's 7,200 an hour |",
        "|---|---:|---:|",
    ]
    lines += [
        f"| poll_interval={interval:g} s | {count} | {count / 7200:.1%} |"
        for interval, count in result["idle"].items()
    ]
    delays = result["delays"]
    lines += [
        "",
        "| from a chat closed to its DAG run's start (poll_interval=15 s, real Airflow 3) | seconds |",
        "|---|---:|",
        f"| median of {len(delays)} | {statistics.median(delays):.1f} |",
        f"| longest | {max(delays):.1f} |",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    print(table(rows()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
