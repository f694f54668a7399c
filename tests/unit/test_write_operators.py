"""The write operators other than marking: thin parts on the engine (whose rules test_chat_writes tests)."""

from __future__ import annotations

import pytest
from airflow.providers.common.compat.sdk import AirflowException

from airflow_provider_helpcrunch.exceptions import HelpCrunchConfigError, HelpCrunchNotFoundError
from airflow_provider_helpcrunch.operators.helpcrunch import (
    AssignChatOperator,
    SetChatStatusOperator,
    SnoozeChatOperator,
)
from tests.helpers import BASE, chat, errors


@pytest.fixture(autouse=True)
def fast_connection(set_connection):
    set_connection(extra={"requests_per_minute": 60000})


def sent(requests_mock, path: str) -> list[dict]:
    return [r.json() for r in requests_mock.request_history if r.path.endswith(path)]


def echo(field: str, shown=lambda value: value):
    return lambda request, context: chat(request.json()["id"], **{field: shown(request.json()[field])})


class TestSetChatStatus:
    def test_closes_the_chats_and_skips_those_closed_already(self, requests_mock):
        requests_mock.put(f"{BASE}/chats/status", json=echo("status"))
        chats = [chat(1, status="opened"), chat(2, status="closed"), 3]
        op = SetChatStatusOperator(task_id="close", chat_ids=chats, status="closed", max_in_flight=1)
        result = op.execute({})
        assert [body["id"] for body in sent(requests_mock, "/chats/status")] == [1, 3]
        assert result == {
            "updated": [1, 3],
            "missing": [],
            "skipped": [2],
            "status": "closed",
            "requested": 3,
            "requests": {"sent": 2, "rate_limited": 0, "rate_limit_wait_seconds": 0.0},
        }

    def test_on_hold_in_any_spelling_skips_chats_on_hold_in_any_other(self, requests_mock):
        requests_mock.put(f"{BASE}/chats/status", json=echo("status"))
        chats = [chat(1, status="onhold"), chat(2, status="opened")]
        result = SetChatStatusOperator(task_id="hold", chat_ids=chats, status="on-hold").execute({})
        assert sent(requests_mock, "/chats/status") == [{"id": 2, "status": "on hold"}]
        assert (result["status"], result["skipped"]) == ("on hold", [1])

    @pytest.mark.parametrize("status", ["finished", "", None, 5])
    def test_a_bad_status_fails_when_the_dag_is_parsed(self, status):
        with pytest.raises(HelpCrunchConfigError, match="status must be one of"):
            SetChatStatusOperator(task_id="s", chat_ids=[1], status=status)

    def test_a_template_is_checked_once_rendered(self, requests_mock):
        op = SetChatStatusOperator(task_id="s", chat_ids=[1], status="{{ params.status }}")
        op.status = "finished"  # what it rendered to
        with pytest.raises(HelpCrunchConfigError, match="'finished'"):
            op.execute({})
        assert requests_mock.call_count == 0

    def test_missing_chats_fail_at_the_end_by_default(self, requests_mock):
        requests_mock.get(f"{BASE}/chats?limit=1", json={"data": [], "meta": {"total": 0}})
        requests_mock.put(f"{BASE}/chats/status", status_code=404, json=errors("chat_not_found"))
        with pytest.raises(HelpCrunchNotFoundError, match=r"\[1\]"):
            SetChatStatusOperator(task_id="s", chat_ids=[1], status="closed").execute({})


class TestAssignChat:
    def test_department_first_then_the_agent(self, requests_mock):
        requests_mock.put(f"{BASE}/chats/department", json=echo("department", lambda i: {"id": i}))
        requests_mock.put(f"{BASE}/chats/assignee", json=echo("assignee", lambda i: {"id": i}))
        op = AssignChatOperator(task_id="a", chat_ids=[1, 2], assignee="12", department=2, max_in_flight=1)
        result = op.execute({})
        sent_in_order = [(r.path.rsplit("/", 1)[1], r.json()["id"]) for r in requests_mock.request_history]
        assert sent_in_order == [("department", 1), ("assignee", 1), ("department", 2), ("assignee", 2)]
        assert sent(requests_mock, "/chats/assignee")[0] == {"id": 1, "assignee": 12}
        assert result == {
            "updated": [1, 2],
            "missing": [],
            "skipped": [],
            "assignee": 12,
            "department": 2,
            "unassign": False,
            "requested": 2,
            "requests": {"sent": 4, "rate_limited": 0, "rate_limit_wait_seconds": 0.0},
        }

    def test_with_chats_in_flight_each_chats_department_still_comes_before_its_agent(self, requests_mock):
        requests_mock.put(f"{BASE}/chats/department", json=echo("department", lambda i: {"id": i}))
        requests_mock.put(f"{BASE}/chats/assignee", json=echo("assignee", lambda i: {"id": i}))
        ids = list(range(1, 21))
        result = AssignChatOperator(
            task_id="a", chat_ids=ids, assignee=12, department=2, max_in_flight=4
        ).execute({})
        sent_in_order = [(r.path.rsplit("/", 1)[1], r.json()["id"]) for r in requests_mock.request_history]
        # each chat's department is set before its agent (the engine's order across chats is tested in
        # test_chat_writes, at the pacer, where it is decided)
        assert sorted(sent_in_order) == sorted(
            [("department", i) for i in ids] + [("assignee", i) for i in ids]
        )
        assert all(
            sent_in_order.index(("department", chat)) < sent_in_order.index(("assignee", chat))
            for chat in ids
        )
        assert result["updated"] == ids

    def test_unassign_sends_null_and_skips_chats_with_no_agent(self, requests_mock):
        requests_mock.put(f"{BASE}/chats/assignee", json=echo("assignee"))
        chats = [chat(1, assignee=None), chat(2, assignee={"id": 12}), chat(3)]  # 3 does not say: sent
        result = AssignChatOperator(task_id="a", chat_ids=chats, unassign=True, max_in_flight=1).execute({})
        assert sent(requests_mock, "/chats/assignee") == [
            {"id": 2, "assignee": None},
            {"id": 3, "assignee": None},
        ]
        assert result["skipped"] == [1]

    def test_a_chat_is_skipped_only_if_it_shows_all_that_is_asked(self, requests_mock):
        requests_mock.put(f"{BASE}/chats/department", json=echo("department", lambda i: {"id": i}))
        requests_mock.put(f"{BASE}/chats/assignee", json=echo("assignee", lambda i: {"id": i}))
        chats = [
            chat(1, assignee={"id": 12}, department={"id": 2}),
            chat(2, assignee={"id": 12}, department={"id": 3}),
        ]
        result = AssignChatOperator(task_id="a", chat_ids=chats, assignee=12, department=2).execute({})
        assert (result["updated"], result["skipped"]) == ([2], [1])

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({}, "nothing is asked"),
            ({"assignee": 12, "unassign": True}, "not both"),
            ({"assignee": "Marc"}, "assignee must be a positive integer ID, got 'Marc'"),
            ({"department": 0}, "department must be a positive integer ID"),
            ({"unassign": "yes"}, "unassign must be True or False"),
        ],
    )
    def test_bad_arguments_fail_when_the_dag_is_parsed(self, kwargs, message):
        with pytest.raises(HelpCrunchConfigError, match=message):
            AssignChatOperator(task_id="a", chat_ids=[1], **kwargs)


class TestSnoozeChat:
    def test_snoozes_until_a_rendered_moment_and_skips_chats_snoozed_until_then(self, requests_mock):
        requests_mock.put(f"{BASE}/chats/snooze", json=echo("snoozedUntil", lambda s: f"{s}.000"))
        chats = [chat(1, snoozedUntil="1764000000.000"), chat(2, snoozedUntil=None)]
        result = SnoozeChatOperator(task_id="z", chat_ids=chats, snoozed_until="1764000000").execute({})
        assert sent(requests_mock, "/chats/snooze") == [{"id": 2, "snoozedUntil": "1764000000"}]
        assert (result["snoozed_until"], result["updated"], result["skipped"]) == (1_764_000_000, [2], [1])

    def test_none_unsnoozes(self, requests_mock):
        requests_mock.put(f"{BASE}/chats/snooze", json=echo("snoozedUntil"))
        result = SnoozeChatOperator(task_id="z", chat_ids=[1], snoozed_until=None).execute({})
        assert sent(requests_mock, "/chats/snooze") == [{"id": 1, "snoozedUntil": None}]
        assert result["snoozed_until"] is None

    def test_snoozed_until_is_required(self):
        # Airflow 3 says so with a TypeError, Airflow 2 with an AirflowException
        with pytest.raises((TypeError, AirflowException), match="snoozed_until"):
            SnoozeChatOperator(task_id="z", chat_ids=[1])

    def test_a_bad_moment_fails_when_the_dag_is_parsed(self):
        with pytest.raises(HelpCrunchConfigError, match="snoozed_until"):
            SnoozeChatOperator(task_id="z", chat_ids=[1], snoozed_until="next week")


@pytest.mark.parametrize("cls", [SetChatStatusOperator, AssignChatOperator, SnoozeChatOperator])
def test_every_write_operator_takes_the_shared_parameters(cls):
    asked = {SetChatStatusOperator: {"status": "closed"}, AssignChatOperator: {"assignee": 1}}.get(
        cls, {"snoozed_until": 1_764_000_000}
    )
    op = cls(
        task_id="w",
        chat_ids=[1],
        xcom_task_ids="find",
        on_missing="skip",
        skip_unchanged=False,
        resume=False,
        max_in_flight=8,
        hook_params={"retry_backoff": 0.5, "rate_limit_wait": 30.0},
        **asked,
    )
    assert (op.hook.retry_backoff, op.hook.rate_limit_wait) == (0.5, 30.0)
    assert {"chat_ids", "xcom_task_ids", "xcom_key"} <= set(cls.template_fields)
    with pytest.raises(HelpCrunchConfigError, match="skip_unchanged must be True or False"):
        cls(task_id="w", chat_ids=[1], skip_unchanged="false", **asked)
