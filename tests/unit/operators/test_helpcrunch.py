from __future__ import annotations

import json
import logging
import re

import pytest
import requests
from airflow.providers.common.compat.sdk import AirflowException

from airflow_provider_helpcrunch.exceptions import (
    HelpCrunchAPIError,
    HelpCrunchAuthError,
    HelpCrunchConfigError,
    HelpCrunchConnectionError,
    HelpCrunchNotFoundError,
)
from airflow_provider_helpcrunch.operators.chat_ids import InvalidChatIdsError, normalize_chat_ids
from airflow_provider_helpcrunch.operators.helpcrunch import (
    AssignChatOperator,
    HelpCrunchSearchChatsOperator,
    MarkChatReadOperator,
    SetChatStatusOperator,
    SnoozeChatOperator,
)
from tests.helpers import (
    API_KEY,
    BASE,
    SEARCH_URL,
    FakeTI,
    chat,
    echo_chat,
    errors,
    marked_ids,
    pages_of,
    run,
)

AGENT_URL = f"{BASE}/chats/readByAgent"


class TestInputs:
    @pytest.mark.parametrize(
        "chat_ids",
        [
            [1, 2, 3],
            "[1, 2, 3]",
            "1,2,3",
            '["1", "2", "3"]',
            [{"id": 1}, {"id": 2}, {"id": 3}],
            "[{'id': 1}, {'id': 2}, {'id': 3}]",
            [[1, 2], [3]],
            [1, 2, 1, 3, "2"],
        ],
    )
    def test_every_shape_marks_each_chat_once_in_order(self, requests_mock, chat_ids):
        requests_mock.put(AGENT_URL, json=echo_chat)
        result = run(MarkChatReadOperator(task_id="mark", chat_ids=chat_ids))
        assert sorted(marked_ids(requests_mock)) == [1, 2, 3]  # each once; several may be under way
        expected = {"marked": [1, 2, 3], "missing": [], "skipped": [], "by": "agent", "read": True}
        requests = {"sent": 3, "rate_limited": 0, "rate_limit_wait_seconds": 0.0}
        assert result == {**expected, "requested": 3, "requests": requests}
        json.dumps(result)

    def test_pulls_from_xcom_task_ids(self, requests_mock):
        requests_mock.put(AGENT_URL, json=echo_chat)
        ti = FakeTI({("find", "return_value"): [5, 6], ("more", "chats"): [{"id": 7}]})
        run(MarkChatReadOperator(task_id="m", xcom_task_ids="find"), ti)
        run(MarkChatReadOperator(task_id="m", xcom_task_ids=["more"], xcom_key="chats"), ti)
        assert sorted(marked_ids(requests_mock)) == [5, 6, 7]
        assert ti.pulls == [("find", "return_value"), (["more"], "chats")]

    def test_chat_ids_and_xcom_task_ids_add_up(self, requests_mock):
        requests_mock.put(AGENT_URL, json=echo_chat)
        ti = FakeTI({("find", "return_value"): [2, 3]})
        result = run(MarkChatReadOperator(task_id="m", chat_ids=[1, 2], xcom_task_ids="find"), ti)
        assert result["marked"] == [1, 2, 3]

    @pytest.mark.parametrize("chat_ids", [None, [], "", "None", "[]"])
    def test_nothing_to_mark_is_a_logged_no_op(self, requests_mock, logs, chat_ids):
        result = run(MarkChatReadOperator(task_id="m", chat_ids=chat_ids))
        assert requests_mock.call_count == 0
        assert result == {
            "marked": [],
            "missing": [],
            "skipped": [],
            "by": "agent",
            "read": True,
            "requested": 0,
            "requests": {"sent": 0, "rate_limited": 0, "rate_limit_wait_seconds": 0.0},
        }
        assert "nothing was sent" in logs()

    def test_invalid_items_fail_before_any_request(self, requests_mock):
        op = MarkChatReadOperator(task_id="m", chat_ids=[1, "abc", True, 2.5, {"name": "x"}, -1])
        with pytest.raises(InvalidChatIdsError) as caught:
            run(op)
        assert requests_mock.call_count == 0
        message = str(caught.value)
        for named in ("[1]='abc'", "[2]=True", "[3]=2.5", "[4]={'name': 'x'}", "[5]=-1"):
            assert named in message

    def test_customer_and_unread(self, requests_mock):
        requests_mock.put(f"{BASE}/chats/readByCustomer", json=echo_chat)
        result = run(MarkChatReadOperator(task_id="m", chat_ids=[4], by="customer", read=False))
        assert requests_mock.last_request.json() == {"id": 4, "read": False}
        assert result["by"] == "customer"
        assert result["read"] is False

    def test_rendered_by_is_checked(self, requests_mock):
        op = MarkChatReadOperator(task_id="m", chat_ids=[1], by="{{ params.by }}")
        op.by = "supervisor"  # what the template rendered to
        with pytest.raises(HelpCrunchConfigError, match="'supervisor'"):
            run(op)
        assert requests_mock.call_count == 0

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"by": "admin"}, "'admin'"),
            ({"on_missing": "ignore"}, "'ignore'"),
            ({"read": "false"}, "'false'"),
        ],
    )
    def test_bad_arguments_fail_at_dag_parse_time(self, kwargs, message):
        with pytest.raises(ValueError, match=message):
            MarkChatReadOperator(task_id="m", chat_ids=[1], **kwargs)

    def test_template_fields_are_rendered(self):
        import jinja2

        op = MarkChatReadOperator(
            task_id="m", chat_ids="{{ ids }}", by="{{ who }}", xcom_task_ids="{{ up }}", xcom_key="{{ key }}"
        )
        context = {"ids": [1, 2], "who": "customer", "up": "find", "key": "found"}
        op.render_template_fields(context, jinja_env=jinja2.Environment())
        assert (op.chat_ids, op.by, op.xcom_task_ids, op.xcom_key) == ("[1, 2]", "customer", "find", "found")

    def test_arguments_are_keyword_only(self):
        # Airflow 3 raises TypeError, Airflow 2 its own AirflowException
        with pytest.raises((TypeError, AirflowException)):
            MarkChatReadOperator("m", [1])  # type: ignore[misc]

    def test_hook_gets_the_overrides(self, set_connection):
        op = MarkChatReadOperator(
            task_id="m",
            chat_ids=[1],
            helpcrunch_conn_id="hc",
            requests_per_minute=40,
            timeout=5,
            max_retries=1,
        )
        set_connection("hc")
        settings = op.hook.settings
        assert op.hook.helpcrunch_conn_id == "hc"
        assert (settings.requests_per_minute, settings.timeout, settings.max_retries) == (40, 5.0, 1)


class TestFailures:
    def test_missing_chats_fail_at_the_end_after_marking_the_rest(self, requests_mock):
        def answer(request, context):
            chat_id = request.json()["id"]
            if chat_id in (2, 4):
                context.status_code = 404
                return errors("invalid_request", "not_found")
            return chat(chat_id)

        requests_mock.put(AGENT_URL, json=answer)
        with pytest.raises(HelpCrunchNotFoundError) as caught:
            run(MarkChatReadOperator(task_id="m", chat_ids=[1, 2, 3, 4, 5]))
        assert sorted(marked_ids(requests_mock)) == [1, 2, 3, 4, 5]
        message = str(caught.value)
        assert "2 of 5 chat(s) were not found" in message
        assert "[2, 4]" in message
        assert "other 3 were marked read by agent" in message

    def test_missing_chats_with_skip_warn_and_succeed(self, requests_mock, logs):
        requests_mock.put(
            AGENT_URL, [{"json": chat(1)}, {"status_code": 404, "json": errors("chat_not_found")}]
        )
        result = run(MarkChatReadOperator(task_id="m", chat_ids=[1, 2], on_missing="skip", max_in_flight=1))
        assert result["marked"] == [1]
        assert result["missing"] == [2]
        assert "1 of 2 chat(s) were not found" in logs()

    def test_auth_error_stops_at_once(self, requests_mock):
        requests_mock.put(AGENT_URL, status_code=401, json=errors("unauthorized"))
        with pytest.raises(HelpCrunchAuthError) as caught:
            run(MarkChatReadOperator(task_id="m", chat_ids=[1, 2, 3], max_in_flight=1))
        assert requests_mock.call_count == 1
        message = str(caught.value)
        assert "Stopped at chat 1 (1 of 3)" in message
        assert "0 chat(s) were marked before the stop" in message
        assert "3 not done [1, 2, 3]" in message
        assert caught.value.status_code == 401

    def test_5xx_outliving_retries_says_what_was_done(self, requests_mock, set_connection):
        set_connection(extra={"requests_per_minute": 60000, "max_retries": 2})
        responses = [{"json": chat(1)}, {"status_code": 404, "json": errors("not_found")}]
        responses += [{"json": chat(3)}] + [{"status_code": 503, "text": "unavailable"}] * 3
        requests_mock.put(AGENT_URL, responses)
        with pytest.raises(HelpCrunchAPIError) as caught:
            run(MarkChatReadOperator(task_id="m", chat_ids=[1, 2, 3, 4, 5], max_in_flight=1))
        message = str(caught.value)
        assert "Stopped at chat 4 (4 of 5)" in message
        assert "2 chat(s) were marked before the stop, 1 not found, 2 not done [4, 5]" in message
        assert "503" in message
        assert "after 3 attempts" in message
        assert caught.value.chat_id == 4

    def test_network_failure_outliving_retries(self, requests_mock, set_connection):
        set_connection(extra={"requests_per_minute": 60000, "max_retries": 1})
        requests_mock.put(
            AGENT_URL, [{"json": chat(1)}] + [{"exc": requests.ConnectTimeout("timed out")}] * 2
        )
        with pytest.raises(HelpCrunchConnectionError, match=r"Stopped at chat 2 .* 1 chat\(s\) were marked"):
            run(MarkChatReadOperator(task_id="m", chat_ids=[1, 2], max_in_flight=1))

    def test_retried_chats_are_not_lost(self, requests_mock):
        requests_mock.put(
            AGENT_URL,
            [
                {"json": chat(1)},
                {"status_code": 429, "json": errors("too_many_requests")},
                {"exc": requests.ConnectionError("reset")},
                {"status_code": 502, "text": "bad gateway"},
                {"json": chat(2)},
                {"json": chat(3)},
            ],
        )
        result = run(MarkChatReadOperator(task_id="m", chat_ids=[1, 2, 3], max_in_flight=1))
        assert result["marked"] == [1, 2, 3]
        assert marked_ids(requests_mock) == [1, 2, 2, 2, 2, 3]


class TestLogging:
    def test_progress_and_summary(self, requests_mock, logs):
        requests_mock.put(AGENT_URL, json=echo_chat)
        op = MarkChatReadOperator(
            task_id="m", chat_ids=list(range(1, 6)), progress_interval=0, max_in_flight=1
        )
        run(op)
        lines = logs().splitlines()
        progress = [line.split("Progress: ", 1)[1] for line in lines if "Progress: " in line]
        assert sorted({p.split(" ", 1)[0] for p in progress}) == ["1/5", "2/5", "3/5", "4/5", "5/5"]
        first = next(p for p in progress if p.startswith("1/5"))
        assert "time left not known yet" in first
        second = next(p for p in progress if p.startswith("2/5"))
        assert "chats/min, about" in second
        assert "s left" in second
        assert any(p.startswith("5/5 chats (100%), 0 missing") for p in progress)
        done = "Done: 5 of 5 chat(s) marked read by agent, 0 skipped (already read), 0 missing; 5 sent in"
        assert any(done in line for line in lines)

    def test_key_never_logged(self, requests_mock, logs):
        requests_mock.put(
            AGENT_URL, [{"json": chat(1)}, {"status_code": 401, "json": errors("unauthorized")}]
        )
        with pytest.raises(HelpCrunchAuthError) as caught:
            run(MarkChatReadOperator(task_id="m", chat_ids=[1, 2], progress_interval=0, max_in_flight=1))
        text = logs()
        assert "Stopped at chat 2" in text  # the log was captured
        assert API_KEY not in text
        assert API_KEY not in str(caught.value)


class TestSearchOperator:
    @pytest.fixture(autouse=True)
    def fast(self, set_connection):
        set_connection(extra={"requests_per_minute": 60000})

    def test_returns_ids_that_mark_reads(self, requests_mock):
        requests_mock.post(SEARCH_URL, json=pages_of([3, 4, 5]))
        op = HelpCrunchSearchChatsOperator(task_id="find", filters=[("status", "=", "closed")])
        result = op.execute({})
        assert result == [3, 4, 5]
        assert normalize_chat_ids(result).ids == [3, 4, 5]

    def test_returns_dicts_that_mark_reads_too(self, requests_mock):
        requests_mock.post(SEARCH_URL, json=pages_of([3, 4]))
        op = HelpCrunchSearchChatsOperator(
            task_id="find", filters=[("status", "=", "closed")], return_ids=False
        )
        result = op.execute({})
        assert [c["status"] for c in result] == ["closed", "closed"]
        assert normalize_chat_ids(result).ids == [3, 4]

    def test_rendered_template_values(self, requests_mock):
        requests_mock.post(SEARCH_URL, json=pages_of([]))
        op = HelpCrunchSearchChatsOperator(task_id="find", filters=[("closedAt", "<", "{{ ts }}")])
        op.filters = [("closedAt", "<", "1700000000")]  # as rendered
        assert op.execute({}) == []
        assert requests_mock.last_request.json()["filter"][0]["value"] == 1700000000

    def test_no_filters_finds_every_chat(self, requests_mock):
        requests_mock.post(SEARCH_URL, json=pages_of([1, 2]))
        assert HelpCrunchSearchChatsOperator(task_id="find").execute({}) == [1, 2]
        assert requests_mock.last_request.json()["filter"] == []  # every chat, paged on createdAt

    def test_max_chats_cuts_and_says_so(self, requests_mock, caplog, capsys):
        requests_mock.post(SEARCH_URL, json=pages_of(list(range(1, 300))))
        caplog.set_level(logging.INFO)
        op = HelpCrunchSearchChatsOperator(task_id="find", filters=[("status", "=", "closed")], max_chats=120)
        assert op.execute({}) == list(range(1, 121))
        assert "More than 120 chats match" in caplog.text + capsys.readouterr().out

    def test_template_fields(self):
        assert "filters" in HelpCrunchSearchChatsOperator.template_fields

    def test_bad_max_chats_at_parse_time(self):
        with pytest.raises(HelpCrunchConfigError, match="max_chats"):
            HelpCrunchSearchChatsOperator(task_id="find", max_chats=-1)


def test_search_operator_takes_the_same_hook_overrides(set_connection):
    set_connection("hc")
    op = HelpCrunchSearchChatsOperator(
        task_id="find", helpcrunch_conn_id="hc", requests_per_minute=30, timeout=4, max_retries=0
    )
    settings = op.hook.settings
    assert (settings.requests_per_minute, settings.timeout, settings.max_retries) == (30, 4.0, 0)


class TestSkipUnchanged:
    def test_chats_already_read_are_skipped_and_listed(self, requests_mock, logs):
        requests_mock.put(AGENT_URL, json=echo_chat)
        chats = [chat(1, readByAgent=False), chat(2, readByAgent=True), 3, chat(4, readByAgent=True)]
        result = run(MarkChatReadOperator(task_id="m", chat_ids=chats))
        assert marked_ids(requests_mock) == [1, 3]
        assert (result["marked"], result["skipped"], result["requested"]) == ([1, 3], [2, 4], 4)
        assert any("2 skipped (already read)" in line for line in logs().splitlines() if "Done:" in line)

    def test_unread_asks_about_the_other_state(self, requests_mock):
        requests_mock.put(AGENT_URL, json=lambda r, c: chat(r.json()["id"], readByAgent=False))
        chats = [chat(1, readByAgent=False), chat(2, readByAgent=True)]
        result = run(MarkChatReadOperator(task_id="m", chat_ids=chats, read=False))
        assert (result["marked"], result["skipped"]) == ([2], [1])

    def test_by_customer_reads_the_customer_field(self, requests_mock):
        requests_mock.put(
            f"{BASE}/chats/readByCustomer", json=lambda r, c: chat(r.json()["id"], readByCustomer=True)
        )
        chats = [
            chat(1, readByAgent=True, readByCustomer=False),
            chat(2, readByAgent=False, readByCustomer=True),
        ]
        result = run(MarkChatReadOperator(task_id="m", chat_ids=chats, by="customer"))
        assert (result["marked"], result["skipped"]) == ([1], [2])

    def test_skip_unchanged_false_sends_everything(self, requests_mock):
        requests_mock.put(AGENT_URL, json=echo_chat)
        chats = [chat(1), chat(2)]
        result = run(MarkChatReadOperator(task_id="m", chat_ids=chats, skip_unchanged=False))
        assert (result["marked"], result["skipped"]) == ([1, 2], [])


class TestBooleanArguments:
    @pytest.mark.parametrize("name", ["skip_unchanged", "resume", "read"])
    @pytest.mark.parametrize("value", ["false", "True", 0, 1, "no", None, []])
    def test_anything_but_a_bool_is_refused_when_the_operator_is_built(self, name, value):
        with pytest.raises(
            HelpCrunchConfigError, match=re.escape(f"{name} must be True or False, got {value!r}")
        ):
            MarkChatReadOperator(task_id="m", chat_ids=[1], **{name: value})

    @pytest.mark.parametrize("value", [True, False])
    def test_bools_are_taken(self, value):
        op = MarkChatReadOperator(task_id="m", chat_ids=[1], skip_unchanged=value, resume=value)
        assert (op.skip_unchanged, op.resume) == (value, value)


class TestSearchUnreadBy:
    def test_keeps_only_chats_not_read_yet_and_says_how_many(self, requests_mock, logs):
        chats = [chat(1, readByAgent=True), chat(2, readByAgent=False), chat(3, readByAgent=False), chat(4)]
        requests_mock.post(SEARCH_URL, json={"data": chats, "meta": {"total": 4}})
        op = HelpCrunchSearchChatsOperator(
            task_id="f", filters=[("status", "=", "closed")], unread_by="agent"
        )
        assert op.execute({}) == [2, 3]
        assert "Found 4 chat(s); kept the 2 not read by agent yet, left out 2 read already" in logs()

    def test_max_chats_counts_the_chats_kept(self, requests_mock):
        chats = [chat(i, readByAgent=i % 2 == 0) for i in range(1, 11)]
        requests_mock.post(SEARCH_URL, json={"data": chats, "meta": {"total": 10}})
        op = HelpCrunchSearchChatsOperator(task_id="f", unread_by="agent", max_chats=3)
        assert op.execute({}) == [1, 3, 5]

    def test_a_bad_unread_by_fails_at_parse_time(self):
        with pytest.raises(ValueError, match="'admin'"):
            HelpCrunchSearchChatsOperator(task_id="f", unread_by="admin")


class TestTheSummarySaysWhatHappened:
    def test_429s_are_counted_in_the_summary_and_the_output(self, requests_mock, logs):
        throttled = {"status_code": 429, "json": errors("too_many_requests"), "headers": {"Retry-After": "1"}}
        requests_mock.put(AGENT_URL, [throttled, throttled, {"json": echo_chat}])
        result = run(MarkChatReadOperator(task_id="mark", chat_ids=[1, 2], max_in_flight=1))
        assert result["marked"] == [1, 2]
        assert result["requests"] == {"sent": 4, "rate_limited": 2, "rate_limit_wait_seconds": 2.0}
        said = logs()
        assert "4 request(s), 2 answered 429 (waited 2.0 s on them), paced at up to" in said
        assert "Set redis_conn_id on the connection" in said

    def test_a_run_without_429s_says_so(self, requests_mock, logs):
        requests_mock.put(AGENT_URL, json=echo_chat)
        run(MarkChatReadOperator(task_id="mark", chat_ids=[1]))
        said = logs()
        assert "1 request(s), none answered 429, paced at up to" in said
        assert "redis_conn_id" not in said


# ---------------------------------------------------------------------- the other write operators


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
