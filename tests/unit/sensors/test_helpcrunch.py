"""The search sensor: pokes on the worker, deferral to the triggerer, and what it pushes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_helpcrunch.exceptions import HelpCrunchConfigError, HelpCrunchError
from airflow_provider_helpcrunch.sensors.helpcrunch import HelpCrunchSearchChatsSensor
from airflow_provider_helpcrunch.triggers.helpcrunch import HelpCrunchSearchTrigger
from tests.helpers import SEARCH_URL, pages_of


@pytest.fixture(autouse=True)
def fast_connection(set_connection):
    set_connection(extra={"requests_per_minute": 60000})


def sensor(**kwargs) -> HelpCrunchSearchChatsSensor:
    kwargs.setdefault("task_id", "wait")
    kwargs.setdefault("filters", [("status", "=", "closed")])
    return HelpCrunchSearchChatsSensor(**kwargs)


class TestPoke:
    def test_not_done_until_enough_chats_match(self, requests_mock):
        requests_mock.post(SEARCH_URL, json=pages_of([1, 2]))
        result = sensor(min_chats=3).poke({})
        assert (result.is_done, result.xcom_value) == (False, [1, 2])

    def test_done_with_the_ids_found(self, requests_mock):
        requests_mock.post(SEARCH_URL, json=pages_of(list(range(1, 151))))
        result = sensor(min_chats=100).poke({})
        assert result.is_done
        assert result.xcom_value == list(range(1, 151))
        sent = requests_mock.request_history[0].json()
        assert sent["filter"][0] == {"field": "chats.status", "operator": "=", "value": "closed"}

    def test_max_chats_bounds_what_is_read_and_pushed(self, requests_mock):
        requests_mock.post(SEARCH_URL, json=pages_of(list(range(1, 301))))
        result = sensor(min_chats=1, max_chats=120).poke({})
        assert result.xcom_value == list(range(1, 121))
        assert len(requests_mock.request_history) == 2  # the third page is never asked for


class TestDeferral:
    def test_it_defers_to_the_search_trigger_when_the_chats_are_not_there_yet(self, requests_mock):
        requests_mock.post(SEARCH_URL, json=pages_of([]))
        task = sensor(min_chats=2, deferrable=True, poke_interval=30, timeout=3600, max_chats=500)
        with pytest.raises(TaskDeferred) as deferred:
            task.execute({})
        trigger = deferred.value.trigger
        assert isinstance(trigger, HelpCrunchSearchTrigger)
        assert trigger.serialize()[1] == {
            "helpcrunch_conn_id": "helpcrunch_default",
            "filters": [["chats.status", "=", "closed"]],
            "min_chats": 2,
            "max_chats": 500,
            "poll_interval": 30.0,
            "requests_per_minute": None,
            "redis_conn_id": None,
        }
        assert deferred.value.method_name == "execute_complete"
        assert deferred.value.timeout == timedelta(seconds=3600)

    def test_it_does_not_defer_when_the_first_poke_finds_them(self, requests_mock):
        requests_mock.post(SEARCH_URL, json=pages_of([4, 5]))
        assert sensor(min_chats=2, deferrable=True).execute({}) == [4, 5]

    def test_execute_complete_pushes_what_the_trigger_found(self):
        event = {"status": "found", "chat_ids": [7, 8], "count": 2}
        assert sensor().execute_complete({}, event) == [7, 8]

    def test_an_error_event_fails_the_task_with_its_message(self):
        event = {"status": "error", "message": "HelpCrunchAuthError: HelpCrunch answered 401"}
        with pytest.raises(HelpCrunchError, match="answered 401"):
            sensor().execute_complete({}, event)


class TestArguments:
    @pytest.mark.parametrize(
        ("kwargs", "said"),
        [
            ({"poke_interval": 5}, "poke_interval must be at least 15"),
            ({"poke_interval": timedelta(seconds=10)}, "poke_interval must be at least 15"),
            ({"min_chats": 0}, "min_chats must be"),
            ({"min_chats": 10, "max_chats": 5}, "must be at least min_chats"),
            ({"filters": [("status", "is", "closed")]}, "unknown operator"),
            ({"deferrable": "yes"}, "deferrable must be True or False"),
        ],
    )
    def test_bad_arguments_fail_when_the_dag_is_parsed(self, kwargs, said):
        with pytest.raises(HelpCrunchConfigError, match=said):
            sensor(**kwargs)

    def test_templated_filters_are_checked_once_rendered(self):
        task = sensor(filters="{{ params.filters }}")
        task.filters = [("status", "is", "closed")]  # what it rendered to
        with pytest.raises(HelpCrunchConfigError, match="unknown operator"):
            task.poke({})
