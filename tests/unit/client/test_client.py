"""HelpCrunch's endpoints: the per-chat writes, chats, search by key, messages and customers."""

from __future__ import annotations

import itertools

import pytest

from airflow_provider_helpcrunch.exceptions import (
    HelpCrunchAPIError,
    HelpCrunchConfigError,
    HelpCrunchNotFoundError,
)
from tests.helpers import API_KEY, BASE, CREATED, SEARCH_URL, chat, errors, pages_of

AGENT_URL = f"{BASE}/chats/readByAgent"


class TestChatIdRange:
    @pytest.mark.parametrize("chat_id", [2**63, 2**64])
    def test_ids_over_int64_are_refused(self, hook, requests_mock, chat_id):
        with pytest.raises(HelpCrunchConfigError, match=str(chat_id)):
            hook.mark_chat_read(chat_id)
        assert requests_mock.call_count == 0

    def test_the_largest_int64_is_sent(self, hook, requests_mock):
        requests_mock.put(AGENT_URL, json=chat(2**63 - 1))
        hook.mark_chat_read(2**63 - 1)
        assert requests_mock.last_request.json()["id"] == 2**63 - 1


class TestGetChat:
    def test_bare_chat(self, hook, requests_mock):
        requests_mock.get(f"{BASE}/chats/5208", json=chat(5208))
        assert hook.get_chat(5208)["id"] == 5208

    def test_missing(self, hook, requests_mock):
        requests_mock.get(f"{BASE}/chats/9", status_code=404, json=errors("chat_not_found"))
        requests_mock.get(f"{BASE}/chats", json={"data": [], "meta": {"total": 0}})
        with pytest.raises(HelpCrunchNotFoundError):
            hook.get_chat(9)


class TestUnreadBy:
    def test_search_keeps_chats_not_read_yet_and_max_counts_them(self, hook, requests_mock):
        page = [chat(i, readByCustomer=i in (2, 3)) for i in range(1, 8)]
        requests_mock.post(SEARCH_URL, json={"data": page, "meta": {"total": 7}})
        kept = hook.search_chats([("status", "=", "closed")], unread_by="customer", max_chats=4)
        assert [c["id"] for c in kept] == [1, 4, 5, 6]
        assert requests_mock.last_request.json()["limit"] == 100  # full pages: filtering happens here

    def test_a_chat_that_does_not_say_is_kept(self, hook, requests_mock):
        page = [{"id": 1}, {"id": 2, "readByAgent": None}, {"id": 3, "readByAgent": True}]
        requests_mock.get(f"{BASE}/chats", json={"data": page})
        assert [c["id"] for c in hook.list_chats(unread_by="agent")] == [1, 2]

    @pytest.mark.parametrize("entry", [5, "x", None, {"name": "no id"}, {"id": "7"}, {"id": True}])
    def test_a_page_entry_that_is_not_a_chat_is_an_api_error(self, hook, requests_mock, entry):
        requests_mock.get(f"{BASE}/chats", json={"data": [chat(1), entry]})
        with pytest.raises(HelpCrunchAPIError, match="not a chat with an id"):
            list(hook.list_chats())


class TestChatWrites:
    """PUT /chats/status, /assignee, /department and /snooze: checked first, counted only when shown."""

    @pytest.mark.parametrize(
        ("call", "path", "sent", "answer"),
        [
            (lambda h: h.set_chat_status(7, "closed"), "status", {"status": "closed"}, {"status": "closed"}),
            (
                lambda h: h.set_chat_status(7, "onhold"),
                "status",
                {"status": "on hold"},
                {"status": "on hold"},
            ),
            (
                lambda h: h.set_chat_assignee(7, 12),
                "assignee",
                {"assignee": 12},
                {"assignee": {"id": 12, "name": "Marc"}},
            ),
            (lambda h: h.set_chat_assignee(7, None), "assignee", {"assignee": None}, {"assignee": None}),
            (
                lambda h: h.set_chat_department(7, "2"),
                "department",
                {"department": 2},
                {"department": {"id": 2, "name": "Billing"}},
            ),
            (
                lambda h: h.snooze_chat(7, 1_764_000_000),
                "snooze",
                {"snoozedUntil": "1764000000"},
                {"snoozedUntil": "1764000000.000"},
            ),
            (lambda h: h.snooze_chat(7, None), "snooze", {"snoozedUntil": None}, {"snoozedUntil": None}),
        ],
    )
    def test_what_is_sent_and_what_counts_as_done(self, hook, requests_mock, call, path, sent, answer):
        requests_mock.put(f"{BASE}/chats/{path}", json=chat(7, **answer))
        assert call(hook)["id"] == 7
        assert requests_mock.last_request.json() == {"id": 7, **sent}
        assert requests_mock.last_request.headers["Authorization"] == f"Bearer {API_KEY}"

    @pytest.mark.parametrize(
        ("call", "path", "answer", "said"),
        [
            (lambda h: h.set_chat_status(7, "closed"), "status", {"status": "opened"}, "status='opened'"),
            (lambda h: h.set_chat_status(7, "closed"), "status", {}, "no 'status' field"),
            (lambda h: h.set_chat_assignee(7, 12), "assignee", {"assignee": {"id": 13}}, "not agent 12"),
            (lambda h: h.set_chat_assignee(7, None), "assignee", {"assignee": {"id": 13}}, "not no assignee"),
            (lambda h: h.set_chat_department(7, 2), "department", {"department": None}, "not department 2"),
            (lambda h: h.snooze_chat(7, 1_764_000_000), "snooze", {"snoozedUntil": None}, "snoozed until"),
        ],
    )
    def test_a_200_that_does_not_show_the_change_is_not_done(
        self, hook, requests_mock, call, path, answer, said
    ):
        body = {"id": 7, "readByAgent": True, **answer}
        if path == "status" and not answer:
            body.pop("status", None)
        requests_mock.put(f"{BASE}/chats/{path}", json=body)
        with pytest.raises(HelpCrunchAPIError, match="with 200, but the chat it returned has") as caught:
            call(hook)
        assert said in str(caught.value)

    def test_a_200_for_another_chat_is_not_done(self, hook, requests_mock):
        requests_mock.put(f"{BASE}/chats/status", json=chat(8, status="closed"))
        with pytest.raises(HelpCrunchAPIError, match="for chat 7 with chat 8"):
            hook.set_chat_status(7, "closed")

    @pytest.mark.parametrize(
        ("call", "message"),
        [
            (lambda h: h.set_chat_status(7, "finished"), "status must be one of"),
            (lambda h: h.set_chat_status(0, "closed"), "chat_id must be"),
            (lambda h: h.set_chat_assignee(7, "Marc"), "assignee must be a positive integer ID, got 'Marc'"),
            (lambda h: h.set_chat_department(7, None), "department must be a positive integer ID, got None"),
            (lambda h: h.snooze_chat(7, "tomorrow"), "snoozed_until"),
        ],
    )
    def test_a_bad_value_is_refused_before_anything_is_sent(self, hook, requests_mock, call, message):
        with pytest.raises(HelpCrunchConfigError, match=message):
            call(hook)
        assert requests_mock.call_count == 0

    def test_missing_chat_is_not_found(self, hook, requests_mock):
        requests_mock.get(f"{BASE}/chats?limit=1", json={"data": [], "meta": {"total": 0}})
        requests_mock.put(f"{BASE}/chats/status", status_code=404, json=errors("chat_not_found"))
        with pytest.raises(HelpCrunchNotFoundError):
            hook.set_chat_status(7, "closed")

    def test_a_refused_value_is_an_api_error_naming_helpcrunchs_code(self, hook, requests_mock):
        requests_mock.put(
            f"{BASE}/chats/assignee",
            status_code=400,
            json={"errors": [{"code": "invalid_chat_value", "message": "assignee value is invalid"}]},
        )
        with pytest.raises(
            HelpCrunchAPIError, match="invalid_chat_value: assignee value is invalid"
        ) as caught:
            hook.set_chat_assignee(7, 99)
        assert caught.value.codes == ("invalid_chat_value",)
        assert requests_mock.call_count == 1  # a 400 is not repeated

    def test_on_hold_falls_back_to_the_older_spelling_once_and_keeps_to_it(self, hook, requests_mock):
        def answer(request, context):
            status = request.json()["status"]
            if status == "on hold":
                context.status_code = 400
                return {"errors": [{"code": "invalid_chat_value", "message": "status value is invalid"}]}
            return chat(request.json()["id"], status="onhold")

        requests_mock.put(f"{BASE}/chats/status", json=answer)
        hook.set_chat_status(7, "on hold")
        hook.set_chat_status(8, "on-hold")
        sent = [r.json()["status"] for r in requests_mock.request_history]
        assert sent == ["on hold", "on-hold", "on-hold"]  # the second chat goes straight to what worked

    def test_on_hold_refused_in_both_spellings_is_the_error(self, hook, requests_mock):
        requests_mock.put(
            f"{BASE}/chats/status",
            status_code=400,
            json={"errors": [{"code": "invalid_chat_value", "message": "status value is invalid"}]},
        )
        with pytest.raises(HelpCrunchAPIError, match="invalid_chat_value"):
            hook.set_chat_status(7, "on hold")
        assert [r.json()["status"] for r in requests_mock.request_history] == ["on hold", "on-hold"]

    def test_another_status_refused_is_not_retried(self, hook, requests_mock):
        requests_mock.put(
            f"{BASE}/chats/status",
            status_code=400,
            json={"errors": [{"code": "invalid_chat_value", "message": "status value is invalid"}]},
        )
        with pytest.raises(HelpCrunchAPIError):
            hook.set_chat_status(7, "pending")
        assert requests_mock.call_count == 1

    def test_writes_are_paced_and_waited_out_like_marking(self, hook, clock, requests_mock):
        requests_mock.put(
            f"{BASE}/chats/snooze",
            [
                {"status_code": 429, "json": errors("too_many_requests"), "headers": {"Retry-After": "3"}},
                {"status_code": 503, "json": {}},
                {"json": chat(7, snoozedUntil="1764000000.000")},
            ],
        )
        hook.snooze_chat(7, 1_764_000_000)
        assert requests_mock.call_count == 3
        assert 3.0 in clock.backoffs


class TestMessagesAndCustomers:
    def test_messages_page_by_page_and_stop_when_no_longer_consumed(self, hook, requests_mock):
        def page(request, context):
            offset, limit = int(request.qs["offset"][0]), int(request.qs["limit"][0])
            return {
                "data": [{"id": n, "chat": 7} for n in range(offset, min(offset + limit, 250))],
                "total": 250,
            }

        requests_mock.get(f"{BASE}/chats/7/messages", json=page)
        messages = hook.list_chat_messages(7)
        first = [next(messages)["id"] for _ in range(150)]
        assert first == list(range(150))
        assert requests_mock.call_count == 2  # the third page is fetched only if asked for
        messages.close()
        assert len(list(hook.list_chat_messages(7))) == 250
        assert requests_mock.call_count == 5

    def test_an_older_revisions_messages_key_is_read(self, hook, requests_mock):
        requests_mock.get(f"{BASE}/chats/7/messages", json={"messages": [{"id": 1}], "total": 1})
        assert [m["id"] for m in hook.list_chat_messages(7)] == [1]

    def test_a_page_that_is_not_a_list_of_messages_is_an_error(self, hook, requests_mock):
        requests_mock.get(f"{BASE}/chats/7/messages", json={"data": [{"text": "no id"}]})
        with pytest.raises(HelpCrunchAPIError, match="not a message with an id"):
            list(hook.list_chat_messages(7))

    def test_a_missing_chat_is_not_found(self, hook, requests_mock):
        requests_mock.get(f"{BASE}/chats?limit=1", json={"data": [], "meta": {"total": 0}})
        requests_mock.get(f"{BASE}/chats/7/messages", status_code=404, json=errors("chat_not_found"))
        with pytest.raises(HelpCrunchNotFoundError):
            list(hook.list_chat_messages(7))

    def test_customers_with_their_sort(self, hook, requests_mock):
        requests_mock.get(f"{BASE}/customers", json={"data": [{"id": 1}, {"id": 2}], "total": 2})
        assert [c["id"] for c in hook.list_customers(sort="lastSeen", order="desc")] == [1, 2]
        sent = requests_mock.last_request.url
        assert sent == f"{BASE}/customers?offset=0&limit=100&sort=customers.lastSeen&order=desc"

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"sort": "name"}, "sort must be one of"),
            ({"order": "up"}, "order must be"),
            ({"max_customers": 0}, "max_customers must be"),
        ],
    )
    def test_bad_customer_arguments_send_nothing(self, hook, requests_mock, kwargs, message):
        with pytest.raises(HelpCrunchConfigError, match=message):
            list(hook.list_customers(**kwargs))
        assert requests_mock.call_count == 0


class TestSearchByKey:
    """Searches page on createdAt: chats leaving the result shift nothing; equal keys; OR; other sorts."""

    def test_chats_leaving_between_pages_push_none_out(self, hook, requests_mock):
        ids = list(range(1, 301))
        gone: set[int] = set()

        def answer(request, context):
            page = pages_of([i for i in ids if i not in gone])(request, context)
            gone.update({5, 50, 150, 160, 170} if request.json()["filter"] else set())  # agents close chats
            return page

        requests_mock.post(SEARCH_URL, json=answer)
        found = [c["id"] for c in hook.search_chats([("status", "=", "opened")])]
        stayed = [i for i in ids if i not in gone]
        assert set(stayed) <= set(found)
        assert len(found) == len(set(found))

    def test_a_run_of_equal_keys_longer_than_a_page(self, hook, requests_mock):
        same = [{**chat(i), "createdAt": CREATED} for i in range(1, 251)]
        later = [chat(i) for i in range(251, 261)]  # created after the run

        def answer(request, context):
            body = request.json()
            keys = [f for f in body["filter"] if f["field"] == "chats.createdAt"]
            rows = same + later
            for f in keys:
                op, value = f["operator"], f["value"]
                rows = [r for r in rows if {"=": r["createdAt"] == value, ">=": r["createdAt"] >= value}[op]]
            return {"data": rows[body["offset"] : body["offset"] + body["limit"]]}

        requests_mock.post(SEARCH_URL, json=answer)
        found = [c["id"] for c in hook.search_chats([])]
        assert found == list(range(1, 261))
        sent = [
            ([(f["operator"], f["value"]) for f in r.json()["filter"]], r.json()["offset"])
            for r in requests_mock.request_history
        ]
        assert sent[:2] == [([], 0), ([(">=", CREATED)], 0)]
        # the run by offset, twice (the second pass finds nothing new), then on past the key
        assert sent[2:] == [
            *[([("=", CREATED)], offset) for offset in (0, 100, 200)],
            *[([("=", CREATED)], offset) for offset in (0, 100, 200)],
            ([(">=", CREATED + 1)], 0),
        ]

    def test_a_run_that_never_settles_is_an_error_not_a_gap(self, hook, requests_mock):
        fresh = itertools.count(1000)

        def answer(request, context):  # a run of 150 whose every page holds chats never seen before
            size = 100 if request.json()["offset"] == 0 else 50
            return {"data": [{**chat(next(fresh)), "createdAt": CREATED} for _ in range(size)]}

        requests_mock.post(SEARCH_URL, json=answer)
        with pytest.raises(HelpCrunchAPIError, match="new chats on each of 10 passes"):
            list(hook.search_chats([], max_chats=100_000))

    def test_or_is_paged_per_filter_and_merged_in_order_once_each(self, hook, requests_mock):
        def answer(request, context):
            body = request.json()
            assert body["comparison"] == "AND"
            wanted = body["filter"][0]["value"]
            ids = [i for i in range(1, 21) if (i % 2 == 0) == (wanted == "closed") or i in (3, 4)]
            return pages_of(ids)(request, context)

        requests_mock.post(SEARCH_URL, json=answer)
        found = hook.search_chats([("status", "=", "closed"), ("status", "=", "opened")], comparison="OR")
        assert [c["id"] for c in found] == list(range(1, 21))

    def test_or_over_one_filter_still_ands_the_key(self, hook, requests_mock):
        requests_mock.post(SEARCH_URL, json=pages_of(list(range(1, 151))))
        found = hook.search_chats([("status", "=", "closed")], comparison="OR")
        assert [c["id"] for c in found] == list(range(1, 151))
        bodies = [r.json() for r in requests_mock.request_history]
        assert {b["comparison"] for b in bodies} == {"AND"}
        assert [len(b["filter"]) for b in bodies] == [1, 2]

    def test_another_sort_is_applied_to_every_match(self, hook, requests_mock):
        closed = {1: 30, 2: 10, 3: None, 4: 20}

        def answer(request, context):  # in createdAt order, as asked
            data = [chat(i, closedAt=closed[i]) for i in closed]
            return {"data": data[::-1] if request.json()["order"] == "desc" else data}

        requests_mock.post(SEARCH_URL, json=answer)
        found = hook.search_chats([], sort="closedAt", order="asc")
        assert [c["id"] for c in found] == [2, 4, 1, 3]
        assert requests_mock.last_request.json()["sort"] == "chats.createdAt"  # paged on the key still
        found = hook.search_chats([], sort="closedAt", order="desc", max_chats=2)
        assert [c["id"] for c in found] == [3, 1]

    def test_a_page_out_of_order_is_helpcrunchs_error(self, hook, requests_mock):
        requests_mock.post(SEARCH_URL, json={"data": [chat(5), chat(3)]})
        with pytest.raises(HelpCrunchAPIError, match="not sorted ascending"):
            list(hook.search_chats([]))

    def test_a_chat_without_created_at_cannot_be_paged_past(self, hook, requests_mock):
        requests_mock.post(SEARCH_URL, json={"data": [chat(5, createdAt=None)]})
        with pytest.raises(HelpCrunchAPIError, match="chat 5 without a readable createdAt"):
            list(hook.search_chats([]))

    def test_a_created_at_echoing_the_key_is_an_error_without_the_key(self, hook, requests_mock):
        requests_mock.post(SEARCH_URL, json={"data": [chat(5, createdAt=f"k {API_KEY}")]})
        with pytest.raises(HelpCrunchAPIError, match=r"chat 5 without a readable createdAt \('k \*\*\*'\)"):
            list(hook.search_chats([]))

    def test_nothing_is_sent_until_the_first_chat_is_asked_for(self, hook, requests_mock):
        requests_mock.post(SEARCH_URL, json={"data": []})
        found = hook.search_chats([], sort="closedAt")
        assert requests_mock.call_count == 0
        assert list(found) == []


class TestAWriteIsDoneOnlyWhenTheAnswerShowsIt:
    @pytest.mark.parametrize(
        ("path", "call", "body"),
        [
            ("/chats/readByAgent", lambda h: h.mark_chat_read(7), {"readByAgent": True}),
            ("/chats/status", lambda h: h.set_chat_status(7, "closed"), {"status": "closed"}),
            ("/chats/assignee", lambda h: h.set_chat_assignee(7, 12), {"assignee": {"id": 12}}),
            ("/chats/department", lambda h: h.set_chat_department(7, 2), {"department": {"id": 2}}),
            ("/chats/snooze", lambda h: h.snooze_chat(7, 1_800_000_000), {"snoozedUntil": "1800000000"}),
        ],
    )
    def test_a_200_without_the_chats_id_is_not_done(self, hook, requests_mock, path, call, body):
        requests_mock.put(f"{BASE}{path}", json=body)
        with pytest.raises(HelpCrunchAPIError, match=r"for chat 7 with no chat id .*not counted as done"):
            call(hook)

    def test_a_mark_answered_without_the_read_field_is_not_done(self, hook, requests_mock):
        requests_mock.put(AGENT_URL, json={"id": 7, "status": "opened"})
        with pytest.raises(HelpCrunchAPIError, match="no 'readByAgent' field"):
            hook.mark_chat_read(7)
