"""
The watcher end to end with real Airflow 3 processes (scheduler, triggerer, DAG processor and the execution
API, LocalExecutor, SQLite): chats closed on the stand-in start the example DAG, which marks exactly them
read; once per change, across a restart of the triggerer too. On Airflow 2.11 (no AssetWatcher) the
example defines no DAG.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from airflow import __version__ as airflow_version
from packaging.version import Version

from tests.e2e.deployment import DAG_ID, EXAMPLE, Deployment, wait_until
from tests.helpers import API_KEY

pytestmark = pytest.mark.e2e

AIRFLOW_VERSION = Version(airflow_version)


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
