"""
A throwaway Airflow 3 deployment with real processes (DAG processor, scheduler, triggerer and the execution
API; LocalExecutor on SQLite) and the watcher example in its dags folder: for the end-to-end test of the
watcher and for its benchmark.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

from tests.helpers import REPO

if TYPE_CHECKING:
    from pathlib import Path

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
    raise AssertionError(f"waited {timeout:.0f} s for {what}\n{tails}")


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
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopping it stops its workers too
        )

    def stop(self, name: str) -> None:
        process = self.running.pop(name)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        with contextlib.suppress(ProcessLookupError):  # whatever it started and left behind
            os.killpg(process.pid, signal.SIGKILL)

    def stop_all(self) -> None:
        for name in list(self.running):
            self.stop(name)

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.home / "airflow.db", timeout=30) as db:
            return db.execute(sql, args).fetchall()

    def runs(self) -> list[tuple[str, str]]:
        return self.query("select run_id, state from dag_run where dag_id = ? order by id", DAG_ID)
