"""
``make demo``: run the example cleanup DAG end to end on a local HelpCrunch stand-in, then report: the chats
that went quiet were closed, then marked read by agent.

No account and no network: Airflow's metadata DB is SQLite under ``.demo/``, HelpCrunch is the stand-in
from ``airflow_provider_helpcrunch.testing`` on loopback, limited like the real API (120 requests in any
60 s). Exits non-zero if the DAG run failed, or a quiet chat was not closed or not marked read.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from airflow_provider_helpcrunch.testing.airflow_home import load_dagbag, use_airflow_home
from airflow_provider_helpcrunch.testing.traffic import summarize
from scripts.output_capture import output_to

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / ".demo"
AIRFLOW_HOME = DEMO / "airflow"
DAGS = AIRFLOW_HOME / "dags"
RUN_LOG = DEMO / "dag-run.log"
DAG_FILE = REPO / "example_dags" / "example_helpcrunch_cleanup.py"
DAG_ID = "example_helpcrunch_cleanup"
QUIET_DAYS = 7  # the DAG's default
CHATS = 80
LIMIT = 120

use_airflow_home(AIRFLOW_HOME)


def step(message: str) -> None:
    print(f"==> {message}", flush=True)


def print_task_lines(log: Path) -> None:
    """The run's lines that say what the tasks did, and its errors."""
    for line in log.read_text().splitlines():
        if line.startswith("airflow_provider_helpcrunch.exceptions."):
            print("    " + line.removeprefix("airflow_provider_helpcrunch.exceptions."))
        elif "airflow_provider_helpcrunch" in line and any(
            word in line for word in ("Found ", "Setting ", "Marking ", "Progress: ", "Done: ", "not found")
        ):
            print("    " + line.split("] ", 1)[-1].split(" [airflow", 1)[0].strip())


def main() -> int:
    started = time.monotonic()
    shutil.copy(DAG_FILE, DAGS / DAG_FILE.name)

    step(f"Airflow metadata DB (SQLite) in {AIRFLOW_HOME.relative_to(REPO)}")
    migrated = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True, check=False
    )
    if migrated.returncode:
        print(migrated.stdout[-3000:], migrated.stderr[-3000:], sep="\n")
        return 1

    from airflow_provider_helpcrunch.testing import HelpCrunchStandIn
    from airflow_provider_helpcrunch.timestamps import timestamp_seconds

    with HelpCrunchStandIn(chats=CHATS, now=int(time.time()), requests_per_minute=LIMIT) as standin:
        os.environ["AIRFLOW_CONN_HELPCRUNCH_DEFAULT"] = standin.connection_json()
        step(f"HelpCrunch stand-in at {standin.base_url}: {CHATS} chats, limit {LIMIT} requests per 60 s")
        before = standin.chats

        step(f"dag.test() of {DAG_ID}, sweeping the whole history; full log in {RUN_LOG.relative_to(REPO)}")
        with output_to(RUN_LOG):
            dag = load_dagbag(DAGS).get_dag(DAG_ID)
            # The example retries twice, 5 minutes apart, as a production DAG should; the demo reports a
            # failure at once instead.
            for task in dag.tasks:
                task.retries = 0
            dag_run = dag.test(run_conf={"lookback_days": 3650})
        print_task_lines(RUN_LOG)

        after = standin.chats
        requests_seen = standin.requests

    cutoff = dag_run.data_interval_end.timestamp() - QUIET_DAYS * 86400
    quiet = sorted(
        chat_id
        for chat_id, chat in before.items()
        if chat["status"] != "closed" and timestamp_seconds(chat["updatedAt"]) < cutoff
    )
    not_closed = [i for i in quiet if after[i]["status"] != "closed"]
    not_read = [i for i in quiet if not after[i]["readByAgent"]]
    puts = [r for r in requests_seen if r.method == "PUT"]
    closing = [r for r in puts if r.path.endswith("/chats/status")]
    marking = [r for r in puts if r.path.endswith("/chats/readByAgent")]
    missing = [r.chat_id for r in puts if r.status == 404]
    traffic = summarize(requests_seen, limit=LIMIT)
    # each step's pace
    rates = [summarize(step, limit=LIMIT).rate for step in (closing, marking)]

    print()
    print("HelpCrunch cleanup demo")
    print(f"  DAG run              {dag_run.state}")
    print(f"  chats in the inbox   {len(before)}")
    print(f"  went quiet           {len(quiet)} (not closed, no update for {QUIET_DAYS} days)")
    print(f"  closed               {len({r.chat_id for r in closing if r.status == 200})}")
    print(f"  marked read          {len({r.chat_id for r in marking if r.status == 200})} (by agent)")
    print(f"  missing (404)        {len(missing)}")
    print(f"  still open / unread  {len(not_closed)} / {len(not_read)}")
    errors = traffic.failed - len(missing)
    throttled = traffic.throttled
    print(f"  HTTP requests        {traffic.requests} ({throttled} answered 429, {errors} other errors)")
    for name, rate in zip(("closing rate", "marking rate"), rates, strict=True):
        print(f"  {name:<20} {rate:.1f} requests/min against a limit of {LIMIT}/min ({rate / LIMIT:.0%})")
    print(f"  busiest 60 s         {traffic.busiest} requests (limit {LIMIT})")
    print(f"  elapsed              {time.monotonic() - started:.1f} s in all")

    if dag_run.state != "success":
        print(f"\nFAILED: the DAG run ended {dag_run.state}; see {RUN_LOG}", file=sys.stderr)
        return 1
    if not_closed or not_read or not quiet:
        left = f"not closed {not_closed}, not read {not_read}" if quiet else "none were found"
        print(f"\nFAILED: quiet chats that should be closed and read are not: {left}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
