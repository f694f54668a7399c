"""The export operator's arguments, window rule and asset URIs (its runs are in tests/integration)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pendulum
import pytest

from airflow_provider_helpcrunch.exceptions import HelpCrunchConfigError
from airflow_provider_helpcrunch.transfers.helpcrunch_to_object_storage import (
    HelpCrunchToObjectStorageOperator,
    export_asset,
)

DAY_START = datetime(2026, 12, 1, tzinfo=UTC)
DAY_END = datetime(2026, 12, 2, tzinfo=UTC)


def operator(**kwargs):
    return HelpCrunchToObjectStorageOperator(task_id="export", path="file:///tmp/x", **kwargs)


class FakeRun:
    run_after = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)


class TestWindow:
    def test_the_data_interval_by_default(self):
        context = {"data_interval_start": DAY_START, "data_interval_end": DAY_END}
        assert operator()._window(context) == (DAY_START, DAY_END)

    def test_given_bounds_in_every_form(self):
        op = operator(window_start="2026-12-01T00:00:00+00:00", window_end=str(int(DAY_END.timestamp())))
        assert op._window({}) == (DAY_START, DAY_END)
        op = operator(window_start=pendulum.instance(DAY_START), window_end=DAY_END.replace(tzinfo=None))
        assert op._window({}) == (DAY_START, DAY_END)

    def test_an_empty_interval_exports_the_day_before_its_end(self):
        # Airflow 3's default cron timetable gives a run an interval that starts where it ends
        context = {"data_interval_start": DAY_END, "data_interval_end": DAY_END}
        assert operator()._window(context) == (DAY_START, DAY_END)

    def test_no_interval_exports_the_window_before_run_after(self):
        op = operator(window_if_no_interval=timedelta(hours=6))
        start, end = op._window(
            {"data_interval_start": None, "data_interval_end": None, "dag_run": FakeRun()}
        )
        assert (start, end) == (FakeRun.run_after - timedelta(hours=6), FakeRun.run_after)

    def test_a_window_that_ends_before_it_starts_is_refused(self):
        with pytest.raises(HelpCrunchConfigError, match="must start before it ends"):
            operator(window_start=DAY_END, window_end=DAY_START)._window({})

    def test_a_rendered_bound_is_checked_once_rendered(self):
        op = operator(window_start="{{ params.start }}", window_end=DAY_END)
        op.window_start = "not a date"  # what it rendered to
        with pytest.raises(HelpCrunchConfigError, match="window_start must be"):
            op._window({})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"streams": ["chats", "tickets"]}, "streams must be some of"),
        ({"streams": []}, "streams must be some of"),
        ({"streams": ["chats", "chats"]}, "each once"),
        ({"compression": "zip"}, "compression must be None or 'gzip'"),
        ({"window_if_no_interval": 3600}, "window_if_no_interval must be a positive timedelta"),
        ({"max_in_flight": 0}, "max_in_flight must be"),
        ({"resume": "no"}, "resume must be True or False"),
        ({"window_start": "yesterday"}, "window_start must be a datetime"),
        ({"window_end": True}, "window_end must be"),
    ],
)
def test_bad_arguments_fail_when_the_dag_is_parsed(kwargs, message):
    with pytest.raises(HelpCrunchConfigError, match=message):
        operator(**kwargs)


def test_an_asset_per_stream_without_the_connection_in_its_uri():
    op = HelpCrunchToObjectStorageOperator(
        task_id="export", path="s3://aws_default@bucket/helpcrunch/", streams=["chats", "customers"]
    )
    assert [outlet.uri for outlet in op.outlets] == [
        "s3://bucket/helpcrunch/chats",
        "s3://bucket/helpcrunch/customers",
    ]
    assert export_asset("file:///data/hc", "messages").uri == "file:///data/hc/messages"


def test_a_templated_path_declares_no_asset_of_its_own():
    op = HelpCrunchToObjectStorageOperator(task_id="export", path="{{ var.value.export_path }}")
    assert op.outlets == []


class TestExportAsset:
    @pytest.mark.parametrize(
        ("path", "uri"),
        [
            ("s3://aws_default@my-bucket/helpcrunch", "s3://my-bucket/helpcrunch/chats"),
            ("s3://my-bucket/helpcrunch/", "s3://my-bucket/helpcrunch/chats"),
            ("gs://google_cloud_default@bucket/x", "gs://bucket/x/chats"),
            ("file:///data/hc", "file:///data/hc/chats"),
        ],
    )
    def test_the_uri_the_operator_emits_on(self, path, uri):
        assert export_asset(path, "chats").uri == uri
        op = HelpCrunchToObjectStorageOperator(task_id="export", path=path, streams=["chats"])
        assert [outlet.uri for outlet in op.outlets] == [uri]

    def test_an_unknown_stream_or_path_is_refused(self):
        with pytest.raises(HelpCrunchConfigError, match="stream must be one of"):
            export_asset("s3://b/x", "tickets")
        with pytest.raises(HelpCrunchConfigError, match="path must be"):
            export_asset("", "chats")


class TestSnapshotRule:
    def test_a_daily_run_takes_the_days_snapshot(self):
        op = operator()
        assert op._no_snapshot_because(DAY_START, DAY_END, now=DAY_END + timedelta(minutes=5)) == ""
        assert op._no_snapshot_because(DAY_START, DAY_END, now=DAY_END + timedelta(hours=23)) == ""

    def test_a_past_interval_does_not(self):
        reason = operator()._no_snapshot_because(DAY_START, DAY_END, now=DAY_END + timedelta(days=2))
        assert "more than 1 day, 0:00:00 ago (snapshot_max_delay)" in reason

    def test_the_delay_is_the_users_to_choose(self):
        op = operator(snapshot_max_delay=timedelta(hours=2))
        assert op._no_snapshot_because(DAY_START, DAY_END, now=DAY_END + timedelta(hours=3)) != ""
        with pytest.raises(HelpCrunchConfigError, match="snapshot_max_delay must be a positive timedelta"):
            operator(snapshot_max_delay=timedelta(0))


def test_parsing_the_dag_makes_no_object_storage_path(monkeypatch):
    """Making one imports the storage's filesystem (s3fs: over a second on Airflow 3.3): not at parse time."""
    import airflow_provider_helpcrunch.transfers.helpcrunch_to_object_storage as module

    def refuse(*args, **kwargs):
        raise AssertionError("an ObjectStoragePath was made while the DAG was parsed")

    monkeypatch.setattr(module, "ObjectStoragePath", type("Refused", (), {"__new__": refuse}))
    op = HelpCrunchToObjectStorageOperator(
        task_id="export", path="s3://aws_default@bucket/helpcrunch/", streams=["chats", "customers"]
    )
    assert [outlet.uri for outlet in op.outlets] == [
        "s3://bucket/helpcrunch/chats",
        "s3://bucket/helpcrunch/customers",
    ]
    with pytest.raises(HelpCrunchConfigError, match="path must be"):
        HelpCrunchToObjectStorageOperator(task_id="export", path=" ")
