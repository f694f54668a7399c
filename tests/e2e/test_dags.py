from __future__ import annotations

import warnings

import pytest
from airflow import __version__ as airflow_version
from packaging.version import Version

from airflow_provider_helpcrunch.testing.airflow_home import load_dagbag
from airflow_provider_helpcrunch.timestamps import timestamp_seconds
from tests.helpers import AIRFLOW_HOME, API_KEY

pytestmark = pytest.mark.e2e

AIRFLOW_VERSION = Version(airflow_version)

EXAMPLES = (
    "example_helpcrunch_cleanup",
    "example_helpcrunch_mark_in_batches",
    "example_helpcrunch_export",
    "example_helpcrunch_export_loaded",
    "example_helpcrunch_sensor",
    # the watcher example needs Airflow 3's AssetWatcher; on 2.11 its file defines no DAG, importing cleanly
    *(("example_helpcrunch_on_closed_chats",) if AIRFLOW_VERSION.major >= 3 else ()),
)


def run(dag, **conf):
    dag_run = dag.test(run_conf=conf or None)
    states = {
        ti.task_id + (f"[{ti.map_index}]" if ti.map_index >= 0 else ""): ti.state
        for ti in dag_run.get_task_instances()
    }
    return dag_run, states


def test_example_dags_import_cleanly(dagbag):
    assert dagbag.import_errors == {}
    for dag_id in EXAMPLES:
        dag = dagbag.get_dag(dag_id)
        assert dag is not None
        assert set(dag.tags) == {"helpcrunch", "example"}
        assert all(task.retries >= 1 for task in dag.tasks)
        # loaded afresh: no warning (deprecations included) from the example or from this package
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fresh = load_dagbag(dag.fileloc)
        assert fresh.import_errors == {}
        ours = [
            w
            for w in caught
            if "example_helpcrunch" in w.filename or "airflow_provider_helpcrunch" in w.filename
        ]
        assert ours == [], [str(w.message) for w in ours]


# A run with no logical date (no data interval) exists from Airflow 3 on: `airflow dags trigger` makes one.
RUN_KINDS = ["scheduled", None] if AIRFLOW_VERSION.major >= 3 else ["scheduled"]


@pytest.mark.parametrize("logical_date", RUN_KINDS, ids=lambda kind: kind or "no logical date")
def test_cleanup_example_closes_the_chats_that_went_quiet_and_marks_them_read(
    dagbag, fast_connection, capsys, logical_date
):
    import time

    standin = fast_connection
    before = standin.chats
    recent = standin.add_chat(status="opened", updatedAt=str(int(time.time() - 86400)), readByAgent=False)

    dag = dagbag.get_dag("example_helpcrunch_cleanup")
    if logical_date is None:  # as `airflow dags trigger` makes it on Airflow 3: no data interval
        dag_run = dag.test(run_conf={"lookback_days": 3650}, logical_date=None)
        states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    else:
        dag_run, states = run(dag, lookback_days=3650)

    assert dag_run.state == "success", states
    # the DAG's cut-off: 7 days (the default param) before the end of the run's data interval, or before
    # the run's run_after when it has none
    run_end = dag_run.data_interval_end or dag_run.run_after
    cutoff = run_end.timestamp() - 7 * 86400
    quiet = {
        i for i, c in before.items() if c["status"] != "closed" and timestamp_seconds(c["updatedAt"]) < cutoff
    }
    assert len(quiet) >= 5
    after = standin.chats
    assert all(after[i]["status"] == "closed" and after[i]["readByAgent"] for i in quiet)
    assert (after[recent["id"]]["status"], after[recent["id"]]["readByAgent"]) == ("opened", False)
    # each quiet chat was closed once, then marked once: nothing else was written
    puts = [(r.path.rsplit("/", 1)[1], r.chat_id) for r in standin.requests if r.method == "PUT"]
    assert sorted(chat for path, chat in puts if path == "status") == sorted(quiet)
    assert sorted(chat for path, chat in puts if path == "readByAgent") == sorted(quiet)
    assert [path for path, _ in puts] == ["status"] * len(quiet) + ["readByAgent"] * len(quiet)
    changed = {i for i in after if after[i] != before.get(i)} - {recent["id"]}
    assert changed == quiet
    assert API_KEY not in capsys.readouterr().out


def test_batches_example_shares_the_budget_through_redis(dagbag, e2e_standin, redis_server, monkeypatch):
    import redis

    standin = e2e_standin
    monkeypatch.setenv(
        "AIRFLOW_CONN_HELPCRUNCH_DEFAULT",
        standin.connection_json(requests_per_minute=6000, redis_conn_id="redis_pacer"),
    )
    closed = {i for i, c in standin.chats.items() if c["status"] == "closed"}

    dag_run, states = run(dagbag.get_dag("example_helpcrunch_mark_in_batches"), batch_size=5)

    assert dag_run.state == "success", states
    mapped = [key for key in states if key.startswith("mark_batch[")]
    assert len(mapped) == -(-len(closed) // 5)
    assert all(standin.chats[i]["readByAgent"] for i in closed)
    # every request of every task took its slot in the account's window in Redis
    client = redis.Redis(host="127.0.0.1", port=redis_server.port)
    (slots,) = client.keys("helpcrunch:pacer:*:slots")
    assert client.zcard(slots) == len(standin.requests)
    assert API_KEY.encode() not in slots


def test_every_xcom_form(dagbag, fast_connection):
    standin = fast_connection
    dag_run, states = run(dagbag.get_dag("helpcrunch_xcom_forms"))
    assert dag_run.state == "success", states
    chats = standin.chats
    assert all(chats[i]["readByAgent"] for i in range(5200, 5214))
    puts = [r.chat_id for r in standin.requests if r.method == "PUT"]
    assert sorted(set(puts)) == sorted(puts)  # duplicates were marked once


def test_failures_fail_the_run_and_say_why(dagbag, fast_connection):
    standin = fast_connection
    dag_run, states = run(dagbag.get_dag("helpcrunch_failures"))
    assert dag_run.state == "failed"
    assert states == {"mark_with_a_missing_chat": "failed", "mark_bad_input": "failed"}
    # the missing chat did not stop the others; the bad input stopped everything before a request
    assert standin.chat(5220)["readByAgent"] is True
    assert standin.chat(5221)["readByAgent"] is True
    assert {r.chat_id for r in standin.requests} == {5220, 999999, 5221}


def test_native_jinja_templates(dagbag, fast_connection):
    standin = fast_connection
    dag_run, states = run(dagbag.get_dag("helpcrunch_native_templates"))
    assert dag_run.state == "success", states
    assert standin.chat(5230)["readByAgent"] is True
    assert standin.chat(5231)["readByAgent"] is True


def test_a_server_echoing_the_key_leaves_no_trace_in_the_task_log(
    dagbag, make_helpcrunch_standin, monkeypatch, capsys, caplog
):
    import json
    import logging

    from airflow_provider_helpcrunch.testing import Fault

    key = 'e2e-k\\ey"9f8e7d6c'  # printable ASCII, with characters that escaping changes
    standin = make_helpcrunch_standin(chats=60, api_key=key, requests_per_minute=6000)
    conn = {"conn_type": "helpcrunch", "host": standin.base_url, "password": f"  {key}\n"}
    monkeypatch.setenv("AIRFLOW_CONN_HELPCRUNCH_DEFAULT", json.dumps(conn))
    standin.inject(Fault(status=401, echo_auth=True), chat_id=5240)
    caplog.set_level(logging.DEBUG)

    _, states = run(dagbag.get_dag("helpcrunch_echoing_server"))

    assert states == {"mark_against_an_echoing_server": "failed"}
    assert [r.status for r in standin.requests] == [401]  # the stop held back the two queued chats
    logged = capsys.readouterr().out + capsys.readouterr().err + caplog.text
    assert "Invalid credentials: Bearer ***" in logged
    for form in (key, json.dumps(key)[1:-1], repr(key)[1:-1], "9f8e7d6c"):
        assert form not in logged


@pytest.mark.parametrize(
    ("dag_id", "written"),
    [
        ("helpcrunch_resume", lambda chat: chat["readByAgent"]),
        ("helpcrunch_write_resume", lambda chat: chat["status"] == "closed"),
    ],
    ids=["marking", "status"],
)
def test_a_retry_resumes_where_the_first_try_stopped(
    dagbag, fast_connection, capsys, caplog, dag_id, written
):
    import logging
    import re
    from collections import Counter

    from airflow_provider_helpcrunch.testing import Fault

    standin = fast_connection
    standin.inject(Fault(status=500), chat_id=5230)  # try 1 stops there (max_retries=0)
    caplog.set_level(logging.INFO)

    dag_run, states = run(dagbag.get_dag(dag_id))

    assert dag_run.state == "success", states
    assert all(written(standin.chat(i)) for i in range(5200, 5260))
    puts = Counter(r.chat_id for r in standin.requests if r.method == "PUT")
    logged = capsys.readouterr().out + caplog.text
    if _has_task_state_store():
        # try 2 sent only what try 1 had not done: every chat once, the failed one twice
        assert puts == Counter({**dict.fromkeys(range(5200, 5260), 1), 5230: 2})
        resumed = re.search(r"Resuming: (\d+) of 60 chats were done by earlier tries", logged)
        assert resumed, "no resuming line"
        # 30 chats before the failed one, and any of the next three that were on the wire when it failed
        assert 30 <= int(resumed.group(1)) <= 33
    else:
        # no store before Airflow 3.3: try 2 sends everything again, and says why
        assert all(puts[i] == 2 for i in range(5200, 5231))
        assert "needs Airflow 3.3 or later" in logged


def _has_task_state_store() -> bool:
    try:
        from airflow.sdk.execution_time.context import TaskStateStoreAccessor  # noqa: F401
    except ImportError:
        return False
    return True


def test_a_retry_judges_earlier_skips_again_on_its_own_input(dagbag, fast_connection):
    from collections import Counter

    from airflow_provider_helpcrunch.testing import Fault

    standin = fast_connection
    for chat_id in range(5200, 5260):  # HelpCrunch shows every chat unread, whatever try 1's input says
        standin.update_chat(chat_id, readByAgent=False)
    standin.inject(Fault(status=500), chat_id=5230)  # try 1 stops there (max_retries=0)

    dag_run, states = run(dagbag.get_dag("helpcrunch_resume_judged_again"))

    assert dag_run.state == "success", states
    assert all(standin.chat(i)["readByAgent"] for i in range(5200, 5260))  # none left unread
    puts = Counter(r.chat_id for r in standin.requests if r.method == "PUT")
    if _has_task_state_store():
        # try 1 skipped 5200-5209 (its input said read) and marked 5210-5229; try 2's input says they are
        # unread, so it sends them, and resumes from 5230: every chat once, the failed one twice
        assert puts == Counter({**dict.fromkeys(range(5200, 5260), 1), 5230: 2})
    else:
        assert puts == Counter({**dict.fromkeys(range(5200, 5260), 1), **dict.fromkeys(range(5210, 5231), 2)})
    assert states["check"] == "success"  # its output lists every chat under marked, none under skipped


@pytest.mark.parametrize("damage", ["runs_a_list", "beyond_a_list"])
def test_a_damaged_progress_record_starts_over_instead_of_failing_every_retry(
    dagbag, fast_connection, capsys, caplog, damage
):
    import logging

    from airflow_provider_helpcrunch.testing import Fault

    standin = fast_connection
    standin.inject(Fault(status=500), chat_id=5230)
    caplog.set_level(logging.WARNING)

    dag_run, states = run(dagbag.get_dag("helpcrunch_resume_judged_again"), damage=damage)

    assert dag_run.state == "success", states
    assert all(standin.chat(i)["readByAgent"] for i in range(5200, 5260))
    if _has_task_state_store():
        logged = capsys.readouterr().out + caplog.text
        assert "progress record of an earlier try is unreadable" in logged
        # started over: try 2 sent every chat its input shows unread, those try 1 marked included
        assert sum(1 for r in standin.requests if r.method == "PUT" and r.chat_id == 5215) == 2


def test_every_chat_write_in_a_dag_run(dagbag, fast_connection):
    standin = fast_connection
    dag_run, states = run(dagbag.get_dag("helpcrunch_every_write"))

    assert dag_run.state == "success", states
    chats = standin.chats
    assert all(chats[i]["status"] == "on hold" for i in (5200, 5201, 5202))
    assert all(chats[i]["assignee"]["id"] == 12 and chats[i]["department"]["id"] == 2 for i in (5203, 5204))
    assert all(chats[i]["assignee"] is None for i in (5205, 5206))
    # the snooze task took the chats from the hold task's output (a dict with "updated" and the rest)
    assert all(chats[i]["snoozedUntil"] == "1900000000.000" for i in (5200, 5201, 5202))
    assert chats[5207]["snoozedUntil"] is None


def test_export_example_writes_every_stream_and_a_retry_does_not_export_a_finished_one_again(
    dagbag, fast_connection, capsys, caplog
):
    import gzip
    import json
    import logging
    from datetime import UTC, datetime
    from pathlib import Path

    import pendulum

    from airflow_provider_helpcrunch.testing import Fault

    standin = fast_connection
    standin.inject(Fault(status=500), path="/v1/customers")  # try 1 fails after chats and messages
    caplog.set_level(logging.INFO)
    dag = dagbag.get_dag("example_helpcrunch_export")
    for task in dag.tasks:  # the example retries after 5 minutes; here at once, and only once
        task.retries, task.retry_delay, task.max_retries = 1, pendulum.duration(seconds=0), 0
    interval = dag.timetable.infer_manual_data_interval(run_after=pendulum.now("UTC"))
    for chat_id in (5200, 5201):  # changed in the run's interval, with a message written in it
        standin.add_message(chat_id, createdAt=int(interval.end.timestamp()) - 3 * 3600)

    if AIRFLOW_VERSION.major < 3:  # 2.11's dag.test() does not register datasets as the DAG processor does
        _register_datasets(dag)

    dag_run, _ = run(dag)

    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert dag_run.state == "success", states
    folder = Path(AIRFLOW_HOME) / "helpcrunch-export"
    written = sorted(str(p.relative_to(folder)) for p in folder.rglob("*.jsonl.gz"))
    window = f"{dag_run.data_interval_start:%Y%m%dT%H%M%SZ}_{dag_run.data_interval_end:%Y%m%dT%H%M%SZ}"
    snapshots = [name for name in written if name.startswith("customers/")]
    assert written == [f"chats/{window}.jsonl.gz", *snapshots, f"messages/{window}.jsonl.gz"]
    # the day's run takes the customers snapshot, named after when it was read (try 2), not the window's end
    (snapshot,) = snapshots
    taken = pendulum.instance(
        datetime.strptime(snapshot, "customers/snapshot_%Y%m%dT%H%M%SZ.jsonl.gz").replace(tzinfo=UTC)
    )
    assert dag_run.data_interval_end < taken <= pendulum.now("UTC")
    chats = [json.loads(line) for line in gzip.decompress((folder / written[0]).read_bytes()).splitlines()]
    assert {5200, 5201} <= {chat["id"] for chat in chats}
    searches = [r for r in standin.requests if r.path == "/v1/chats/search"]
    customers = [r for r in standin.requests if r.path.startswith("/v1/customers")]
    assert customers[0].status == 500
    # an asset event per stream, saying which file it wrote
    extras = {uri.rsplit("/", 1)[1]: extra for uri, extra in _asset_events()}
    assert {stream: extras[stream]["path"].rsplit("/", 2)[1] for stream in extras} == {
        "chats": "chats",
        "messages": "messages",
        "customers": "customers",
    }
    assert extras["chats"]["records"] == len(chats)
    by_last_message = [r for r in standin.requests if r.path.startswith("/v1/chats?")]
    if _has_task_state_store():  # try 2 did not search the chats again: it only exported the customers
        assert "chats, messages done by an earlier try" in capsys.readouterr().out + caplog.text
        assert len(searches) == 1  # try 1's: the window's chats (one page)
        assert len(by_last_message) == 2  # try 1's: the chats by last message, and the re-read of the front
    else:
        assert len(searches) == 2
        assert len(by_last_message) == 4


def _asset_events() -> list[tuple[str, dict]]:
    """(URI, extra) of every asset event in the metadata DB (a "dataset" event on Airflow 2)."""
    from airflow.utils.session import create_session

    try:
        from airflow.models.asset import AssetEvent as Event
    except ImportError:
        from airflow.models.dataset import DatasetEvent as Event
    with create_session() as session:
        return [(event.uri, dict(event.extra or {})) for event in session.query(Event).all()]


def _register_datasets(dag) -> None:
    from airflow.models.dataset import DatasetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        for task in dag.tasks:
            for outlet in task.outlets:
                if not session.query(DatasetModel).filter_by(uri=outlet.uri).first():
                    session.add(DatasetModel(uri=outlet.uri))


def test_on_s3_the_downstream_example_dag_is_queued_by_the_export(
    airflow_db, s3_server, fast_connection, monkeypatch
):
    """With HELPCRUNCH_EXPORT_PATH=s3://aws_default@bucket/... (what the README recommends), the export's
    asset events reach the consumer DAG of the example: it is queued."""
    import json
    import uuid

    client, conn = s3_server
    folder = f"e2e-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(conn))
    monkeypatch.setenv("HELPCRUNCH_EXPORT_PATH", f"s3://aws_default@exports/{folder}")
    # the example's DAGs parsed afresh with that path (the module reads it when the file is parsed)
    bag = load_dagbag(AIRFLOW_HOME / "dags" / "example_helpcrunch_export.py")
    assert bag.import_errors == {}
    producer, consumer = (
        bag.get_dag("example_helpcrunch_export"),
        bag.get_dag("example_helpcrunch_export_loaded"),
    )
    asset_uri = f"s3://exports/{folder}/chats"
    assert producer.tasks[0].outlets[0].uri == asset_uri
    # as a deployment has them: both DAGs parsed with that path by Airflow, the consumer unpaused
    from tests.e2e.conftest import airflow_cli

    airflow_cli("dags", "reserialize")
    airflow_cli("dags", "unpause", consumer.dag_id)
    try:
        for task in producer.tasks:
            task.retries = 0
        dag_run, states = run(producer)
        assert dag_run.state == "success", states
        listed = client.list_objects_v2(Bucket="exports", Prefix=folder).get("Contents", [])
        keys = [o["Key"] for o in listed]
        assert any(key.startswith(f"{folder}/chats/") and key.endswith(".jsonl.gz") for key in keys), keys
        assert _queued(consumer.dag_id) == [asset_uri]
    finally:
        airflow_cli("dags", "pause", consumer.dag_id)


def _queued(dag_id: str) -> list[str]:
    """The asset URIs for which ``dag_id`` is queued to run (dataset URIs on Airflow 2)."""
    from airflow.utils.session import create_session

    with create_session() as session:
        try:
            from airflow.models.asset import AssetDagRunQueue as Queue
            from airflow.models.asset import AssetModel as Model

            rows = session.query(Model.uri).join(Queue, Queue.asset_id == Model.id)
        except ImportError:
            from airflow.models.dataset import DatasetDagRunQueue as Queue
            from airflow.models.dataset import DatasetModel as Model

            rows = session.query(Model.uri).join(Queue, Queue.dataset_id == Model.id)
        return sorted(uri for (uri,) in rows.filter(Queue.target_dag_id == dag_id).all())


@pytest.mark.parametrize("dag_id", ["helpcrunch_sensor_poke", "helpcrunch_sensor_deferred"])
def test_the_sensor_waits_for_the_chats_then_hands_them_on(dagbag, make_helpcrunch_standin, dag_id):
    standin = make_helpcrunch_standin(chats=0, api_key=API_KEY, requests_per_minute=6000)
    for n in range(6):
        standin.add_chat(id=7100 + n, status="pending" if n == 0 else "opened", readByAgent=False)
    searches: list[float] = []

    def agent(record) -> None:  # after the first search, an agent puts two more chats on pending
        if record.path.endswith("/chats/search") and record.status == 200:
            searches.append(record.time)
            if len(searches) == 1:
                standin.update_chat(7101, status="pending")
                standin.update_chat(7102, status="pending")

    standin.on_request = agent

    dag_run, states = run(dagbag.get_dag(dag_id))

    assert dag_run.state == "success", states
    chats = standin.chats
    assert [i for i in sorted(chats) if chats[i]["readByAgent"]] == [7100, 7101, 7102]
    assert len(searches) == 2  # the first search found 1 of 3; the next, 15 s later, all 3
    assert searches[1] - searches[0] >= 14.0
