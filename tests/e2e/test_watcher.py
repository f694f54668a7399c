"""
The watcher end to end with real Airflow 3 processes (scheduler, triggerer, DAG processor and the execution
API, LocalExecutor, SQLite): chats closed on the stand-in start the example DAG, which marks exactly them
read; once per change, across a restart of the triggerer too. On Airflow 2.11 (no AssetWatcher) the
example defines no DAG.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import pytest
from airflow import __version__ as airflow_version
from packaging.version import Version

from tests.helpers import API_KEY, REPO

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.e2e

AIRFLOW_VERSION = Version(airflow_version)
DAG_ID = "example_helpcrunch_on_closed_chats"
EXAMPLE = REPO / "example_dags" / "example_helpcrunch_watcher.py"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(what: str, check: Any, timeout: float, logs: Path) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    tails = "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for log in sorted(logs.glob("*.log")))
    pytest.fail(f"waited {timeout:.0f} s for {what}\n{tails}")


class Deployment:
    """A throwaway Airflow 3 deployment's processes, with the watcher example in its dags folder."""

    PROCESSES = {
        "dag-processor": ["dag-processor"],
        "scheduler": ["scheduler", "--skip-serve-logs"],
        "triggerer": ["triggerer", "--skip-serve-logs"],
    }

    def __init__(self, home: Path, connection: str) -> None:
        self.home = home
        self.logs = home / "process-logs"
        self.logs.mkdir(parents=True)
        (home / "dags").mkdir()
        shutil.copy(EXAMPLE, home / "dags" / EXAMPLE.name)
        self.api_port = free_port()
        self.env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.api_port}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": "helpcrunch-e2e-jwt-secret",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW_CONN_HELPCRUNCH_DEFAULT": connection,
            "HELPCRUNCH_WATCH_INTERVAL": "15",
        }
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def cli(self, *args: str) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            capture_output=True,
            timeout=300,
            check=False,
        )
        if done.returncode:
            raise RuntimeError(f"airflow {' '.join(args)}: {done.stdout[-2000:]!r} {done.stderr[-2000:]!r}")

    def start(self, name: str) -> None:
        args = self.PROCESSES.get(name) or [
            "api-server", "--apps", "execution", "-H", "127.0.0.1", "-p", str(self.api_port)
        ]  # fmt: skip
        log = (self.logs / f"{name}.log").open("ab")
        self.running[name] = subprocess.Popen(
            [sys.executable, "-m", "airflow", *args], env=self.env, stdout=log, stderr=subprocess.STDOUT
        )

    def stop(self, name: str) -> None:
        process = self.running.pop(name)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop_all(self) -> None:
        for name in list(self.running):
            self.stop(name)

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.home / "airflow.db", timeout=30) as db:
            return db.execute(sql, args).fetchall()

    def runs(self) -> list[tuple[str, str]]:
        return self.query("select run_id, state from dag_run where dag_id = ? order by id", DAG_ID)


def payloads(deployment: Deployment) -> list[dict[str, Any]]:
    rows = deployment.query("select extra from asset_event order by id")
    return [json.loads(extra).get("payload", {}) for (extra,) in rows]


if AIRFLOW_VERSION.major >= 3:

    @pytest.mark.timeout(900)
    def test_closed_chats_start_the_example_dag_once_each_across_a_triggerer_restart(
        make_helpcrunch_standin, tmp_path
    ):
        standin = make_helpcrunch_standin(chats=0, api_key=API_KEY, requests_per_minute=None)
        now = int(time.time())
        for n in range(8):
            standin.add_chat(id=6100 + n, status="opened", updatedAt=now - 86400, readByAgent=False)
        deployment = Deployment(tmp_path / "airflow", standin.connection_json())
        deployment.cli("db", "migrate")
        try:
            for name in ("api-server", "dag-processor", "scheduler", "triggerer"):
                deployment.start(name)
            wait_until(
                "the DAG to be parsed",
                lambda: deployment.query("select 1 from dag where dag_id = ?", DAG_ID),
                180,
                deployment.logs,
            )
            deployment.cli("dags", "unpause", DAG_ID)

            def searches() -> list[Any]:
                return [r for r in standin.requests if r.path.endswith("/chats/search")]

            wait_until("the watcher's first poll", searches, 180, deployment.logs)
            assert deployment.runs() == []  # nothing changed yet: no run

            standin.update_chat(6101, status="closed", updatedAt=int(time.time()))
            standin.update_chat(6104, status="closed", updatedAt=int(time.time()))
            changed_at = time.monotonic()
            wait_until(
                "the first run to succeed",
                lambda: [run for run in deployment.runs() if run[1] == "success"],
                240,
                deployment.logs,
            )
            delay = time.monotonic() - changed_at
            print(f"\nfrom a change to its DAG run's success: {delay:.1f} s (polls every 15 s)")
            chats = standin.chats
            assert [i for i in sorted(chats) if chats[i]["readByAgent"]] == [6101, 6104]

            # a poll after the run: the cursor kept in the asset's state store has passed that change
            polls = len(searches())
            wait_until("another poll", lambda: len(searches()) > polls + 1, 60, deployment.logs)
            deployment.stop("triggerer")
            standin.update_chat(6106, status="closed", updatedAt=int(time.time()))  # while it is down
            deployment.start("triggerer")
            wait_until(
                "the second run to succeed",
                lambda: len([run for run in deployment.runs() if run[1] == "success"]) >= 2,
                300,
                deployment.logs,
            )
            time.sleep(35)  # two more polls: no third run, no repeat of a change already reported
            runs = deployment.runs()
            assert [state for _, state in runs] == ["success", "success"], runs
            chats = standin.chats
            assert [i for i in sorted(chats) if chats[i]["readByAgent"]] == [6101, 6104, 6106]
            events = payloads(deployment)
            assert [sorted(event["chat_ids"]) for event in events] == [[6101, 6104], [6106]]
            puts = sorted(r.chat_id for r in standin.requests if r.method == "PUT")
            assert puts == [6101, 6104, 6106]  # each chat marked once
            logged = "".join(log.read_text() for log in deployment.logs.glob("*.log"))
            assert API_KEY not in logged
        finally:
            deployment.stop_all()

else:

    def test_on_airflow_2_the_watcher_example_defines_no_dag_and_the_trigger_still_imports():
        from airflow.triggers.base import BaseTrigger

        from airflow_provider_helpcrunch.testing.airflow_home import load_dagbag
        from airflow_provider_helpcrunch.triggers.helpcrunch import HelpCrunchChatsChangedTrigger

        bag = load_dagbag(EXAMPLE)
        assert bag.import_errors == {}
        assert bag.dag_ids == []
        assert issubclass(HelpCrunchChatsChangedTrigger, BaseTrigger)
