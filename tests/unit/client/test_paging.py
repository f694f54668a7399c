"""Paging by offset through HelpCrunch's lists."""

from __future__ import annotations

import pytest

from airflow_provider_helpcrunch.exceptions import (
    HelpCrunchAPIError,
    HelpCrunchConfigError,
)
from tests.helpers import BASE, CREATED, SEARCH_URL, chat, errors, pages_of

AGENT_URL = f"{BASE}/chats/readByAgent"


class TestPaging:
    def test_search_follows_pages_until_a_short_one(self, hook, requests_mock):
        requests_mock.post(SEARCH_URL, json=pages_of(list(range(1, 251))))
        found = [c["id"] for c in hook.search_chats([("status", "=", "closed")])]
        assert found == list(range(1, 251))
        bodies = [r.json() for r in requests_mock.request_history]
        # paged on createdAt, each page from the last one read (a chat that leaves the result shifts nothing)
        assert [(b["offset"], b["limit"]) for b in bodies] == [(0, 100), (0, 100), (0, 100)]
        status = {"field": "chats.status", "operator": "=", "value": "closed"}
        assert [b["filter"] for b in bodies] == [
            [status],
            [status, {"field": "chats.createdAt", "operator": ">=", "value": CREATED + 100}],
            [status, {"field": "chats.createdAt", "operator": ">=", "value": CREATED + 199}],
        ]
        assert {(b["comparison"], b["sort"], b["order"]) for b in bodies} == {
            ("AND", "chats.createdAt", "asc")
        }

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
        assert [r.json()["limit"] for r in requests_mock.request_history] == [100, 100]

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
        keys = [[f["value"] for f in r.json()["filter"]] for r in requests_mock.request_history]
        assert keys == [[], [CREATED + 100], [CREATED + 100], [CREATED + 100]]

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
