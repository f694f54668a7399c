from __future__ import annotations

import logging
from datetime import UTC, datetime

import pendulum
import pytest

from airflow_provider_helpcrunch.chat_ids import normalize_chat_ids
from airflow_provider_helpcrunch.exceptions import (
    HelpCrunchAPIError,
    HelpCrunchConfigError,
    HelpCrunchNotFoundError,
)
from airflow_provider_helpcrunch.filters import normalize_filters
from airflow_provider_helpcrunch.operators.helpcrunch import HelpCrunchSearchChatsOperator
from tests.unit.conftest import BASE, chat, errors

SEARCH_URL = f"{BASE}/chats/search"


def pages_of(ids: list[int], *, total_key: str = "meta"):
    """A requests-mock callback answering offset/limit pages over ``ids``."""

    def answer(request, context):
        if request.method == "POST":
            offset, limit = request.json()["offset"], request.json()["limit"]
        else:
            offset, limit = int(request.qs["offset"][0]), int(request.qs["limit"][0])
        data = [chat(i) for i in ids[offset : offset + min(limit, 100)]]
        if total_key == "meta":
            return {"data": data, "meta": {"total": len(ids)}}
        return {"data": data, "total": len(ids)}

    return answer


class TestFilters:
    def test_dicts_and_tuples_and_prefix(self):
        assert normalize_filters(
            [{"field": "chats.status", "operator": "=", "value": "closed"}, ("closedAt", "<", 1700000000)]
        ) == [
            {"field": "chats.status", "operator": "=", "value": "closed"},
            {"field": "chats.closedAt", "operator": "<", "value": 1700000000},
        ]

    def test_one_filter_alone(self):
        assert normalize_filters(("status", "=", "closed")) == [
            {"field": "chats.status", "operator": "=", "value": "closed"}
        ]

    @pytest.mark.parametrize(
        "value",
        [
            1700000000,
            "1700000000",
            " 1700000000 ",
            1700000000.0,
            datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC),
            datetime(2023, 11, 14, 22, 13, 20),  # naive: taken as UTC, as Airflow does
            pendulum.datetime(2023, 11, 15, 0, 13, 20, tz="Europe/Kyiv"),
        ],
    )
    def test_timestamp_values(self, value):
        assert normalize_filters([("closedAt", "<", value)])[0]["value"] == 1700000000

    def test_int_fields_take_rendered_numbers(self):
        assert normalize_filters([("assignee", "=", "14")])[0]["value"] == 14

    @pytest.mark.parametrize(
        ("filters", "message"),
        [
            ([("status", "==", "closed")], "unknown operator '=='"),
            ([("status", "closed")], "filter \\[0\\] must be"),
            ([{"field": "status", "operator": "="}], "exactly field, operator and value"),
            ([{"field": "status", "operator": "=", "value": "x", "extra": 1}], "exactly field"),
            ([("closedAt", "<", "yesterday")], "closedAt.*'yesterday'"),
            ([("closedAt", "<", True)], "True"),
            ([("assignee", "=", "Olena")], "integer ID.*'Olena'"),
            ([("status", "=", 3)], "must be a string"),
            ([("", "=", "x")], "non-empty string"),
            ([("status", "=", None)], "has no value"),
            ("status = closed", "must be a list"),
        ],
    )
    def test_bad_filters_are_named(self, filters, message):
        with pytest.raises(HelpCrunchConfigError, match=message):
            normalize_filters(filters)


class TestPaging:
    def test_search_follows_pages_until_a_short_one(self, hook, requests_mock):
        requests_mock.post(SEARCH_URL, json=pages_of(list(range(1, 251))))
        found = [c["id"] for c in hook.search_chats([("status", "=", "closed")])]
        assert found == list(range(1, 251))
        bodies = [r.json() for r in requests_mock.request_history]
        assert [(b["offset"], b["limit"]) for b in bodies] == [(0, 100), (100, 100), (200, 100)]
        assert bodies[0]["filter"] == [{"field": "chats.status", "operator": "=", "value": "closed"}]
        assert bodies[0]["comparison"] == "AND"

    def test_exact_multiple_ends_on_an_empty_page(self, hook, requests_mock):
        requests_mock.post(SEARCH_URL, json=pages_of(list(range(1, 201)), total_key="top"))
        assert len(list(hook.search_chats([]))) == 200
        assert requests_mock.call_count == 3

    def test_total_is_not_trusted(self, hook, requests_mock):
        # The total grows while we page (new chats), then a short page ends the search.
        responses = [
            {"json": {"data": [chat(i) for i in range(1, 101)], "meta": {"total": 100}}},
            {"json": {"data": [chat(i) for i in range(101, 201)], "meta": {"total": 230}}},
            {"json": {"data": [chat(i) for i in range(201, 231)], "meta": {"total": 230}}},
        ]
        requests_mock.post(SEARCH_URL, responses)
        assert len(list(hook.search_chats([]))) == 230

    def test_a_chat_shifted_onto_the_next_page_is_yielded_once(self, hook, requests_mock):
        responses = [
            {"json": {"data": [chat(i) for i in range(1, 101)], "total": 150}},
            {"json": {"data": [chat(i) for i in range(100, 150)], "total": 150}},
        ]
        requests_mock.post(SEARCH_URL, responses)
        found = [c["id"] for c in hook.search_chats([])]
        assert found == list(range(1, 150))

    def test_max_chats(self, hook, requests_mock):
        requests_mock.post(SEARCH_URL, json=pages_of(list(range(1, 1000))))
        assert len(list(hook.search_chats([], max_chats=150))) == 150
        assert [r.json()["limit"] for r in requests_mock.request_history] == [100, 50]

    def test_retries_during_paging(self, hook, requests_mock):
        ids = list(range(1, 151))
        responses = [
            {"json": pages_of(ids)},
            {"status_code": 429, "json": errors("too_many_requests")},
            {"status_code": 503, "text": "busy"},
            {"json": pages_of(ids)},
        ]
        requests_mock.post(SEARCH_URL, responses)
        assert len(list(hook.search_chats([]))) == 150
        assert [r.json()["offset"] for r in requests_mock.request_history] == [0, 100, 100, 100]

    def test_list_chats(self, hook, requests_mock):
        requests_mock.get(f"{BASE}/chats", json=pages_of(list(range(1, 121))))
        found = list(hook.list_chats(sort="createdAt", order="desc"))
        assert len(found) == 120
        assert requests_mock.request_history[0].qs == {
            "offset": ["0"],
            "limit": ["100"],
            "sort": ["chats.createdat"],
            "order": ["desc"],
        }

    def test_checks_happen_before_any_request(self, hook, requests_mock):
        with pytest.raises(HelpCrunchConfigError, match="sort"):
            hook.list_chats(sort="chats.rating")
        with pytest.raises(HelpCrunchConfigError, match="comparison"):
            hook.search_chats([], comparison="XOR")
        with pytest.raises(HelpCrunchConfigError, match="max_chats"):
            hook.search_chats([], max_chats=0)
        assert requests_mock.call_count == 0

    def test_unexpected_shape(self, hook, requests_mock):
        requests_mock.post(SEARCH_URL, json={"chats": []})
        with pytest.raises(HelpCrunchAPIError, match="without a 'data' list"):
            list(hook.search_chats([]))


class TestGetChat:
    def test_bare_chat(self, hook, requests_mock):
        requests_mock.get(f"{BASE}/chats/5208", json=chat(5208))
        assert hook.get_chat(5208)["id"] == 5208

    def test_missing(self, hook, requests_mock):
        requests_mock.get(f"{BASE}/chats/9", status_code=404, json=errors("chat_not_found"))
        requests_mock.get(f"{BASE}/chats", json={"data": [], "meta": {"total": 0}})
        with pytest.raises(HelpCrunchNotFoundError):
            hook.get_chat(9)


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

    def test_no_filters_lists_every_chat(self, requests_mock):
        requests_mock.get(f"{BASE}/chats", json=pages_of([1, 2]))
        assert HelpCrunchSearchChatsOperator(task_id="find").execute({}) == [1, 2]

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
