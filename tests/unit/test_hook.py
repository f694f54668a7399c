from __future__ import annotations

import itertools
import json
import logging
from typing import Any, ClassVar
from urllib.parse import quote

import pytest
import requests

from airflow_provider_helpcrunch.exceptions import (
    HelpCrunchAPIError,
    HelpCrunchAuthError,
    HelpCrunchConfigError,
    HelpCrunchConnectionError,
    HelpCrunchError,
    HelpCrunchNotFoundError,
    HelpCrunchRateLimitError,
)
from airflow_provider_helpcrunch.hooks.helpcrunch import HelpCrunchHook
from tests.helpers import API_KEY, BASE, CREATED, SEARCH_URL, chat, errors, pages_of

AGENT_URL = f"{BASE}/chats/readByAgent"


class TestConstructor:
    def test_takes_the_conn_id(self, set_connection):
        set_connection("other_conn", host="https://eu.example.com/v1")
        hook = HelpCrunchHook(helpcrunch_conn_id="other_conn")
        assert hook.settings.base_url == "https://eu.example.com/v1"


class TestMarkChatRead:
    def test_put_read_by_agent(self, hook, requests_mock):
        requests_mock.put(AGENT_URL, json=chat(5208))
        assert hook.mark_chat_read(5208) == chat(5208)
        sent = requests_mock.last_request
        assert sent.method == "PUT"
        assert sent.json() == {"id": 5208, "read": True}
        assert sent.headers["Authorization"] == f"Bearer {API_KEY}"
        assert sent.headers["Content-Type"] == "application/json"

    def test_read_by_customer_and_unread(self, hook, requests_mock):
        requests_mock.put(f"{BASE}/chats/readByCustomer", json=chat(7))
        hook.mark_chat_read(7, by="customer", read=False)
        assert requests_mock.last_request.json() == {"id": 7, "read": False}

    @pytest.mark.parametrize(
        ("kwargs", "named"),
        [
            ({"chat_id": 0}, "0"),
            ({"chat_id": -3}, "-3"),
            ({"chat_id": True}, "True"),
            ({"chat_id": "5208"}, "'5208'"),
            ({"chat_id": 1, "by": "admin"}, "'admin'"),
            ({"chat_id": 1, "read": "yes"}, "'yes'"),
        ],
    )
    def test_bad_arguments_fail_before_sending(self, hook, requests_mock, kwargs, named):
        chat_id = kwargs.pop("chat_id")
        with pytest.raises(HelpCrunchConfigError, match=named):
            hook.mark_chat_read(chat_id, **kwargs)
        assert requests_mock.call_count == 0

    def test_timeout_applies_to_every_attempt(self, make_hook, requests_mock):
        hook = make_hook(timeout=7)
        requests_mock.put(AGENT_URL, [{"status_code": 503, "json": {}}, {"json": chat(1)}])
        hook.mark_chat_read(1)
        assert [r.timeout for r in requests_mock.request_history] == [7.0, 7.0]

    def test_session_is_cached_and_carries_the_key(self, hook):
        session = hook.get_conn()
        assert hook.get_conn() is session
        prepared = session.prepare_request(requests.Request("PUT", AGENT_URL))
        assert prepared.headers["Authorization"] == f"Bearer {API_KEY}"

    def test_key_and_header_are_masked(self, set_connection, monkeypatch):
        masked = []
        monkeypatch.setattr("airflow_provider_helpcrunch.hooks.helpcrunch.mask_secret", masked.append)
        HelpCrunchHook().get_conn()
        assert API_KEY in masked
        assert f"Bearer {API_KEY}" in masked

    def test_settings_repr_hides_the_key(self, hook):
        assert API_KEY not in repr(hook.settings)


class TestErrors:
    @pytest.mark.parametrize(
        ("status", "body", "cls"),
        [
            (400, errors("invalid_request", "validation_error"), HelpCrunchAPIError),
            (401, errors("unauthorized"), HelpCrunchAuthError),
            (403, errors("forbidden"), HelpCrunchAuthError),
            (404, errors("invalid_request", "not_found"), HelpCrunchNotFoundError),
            (404, errors("chat_not_found"), HelpCrunchNotFoundError),
            (404, errors("not_fount"), HelpCrunchNotFoundError),
            (422, errors("unprocessable"), HelpCrunchAPIError),
        ],
    )
    def test_not_retried_and_typed(self, hook, requests_mock, status, body, cls):
        requests_mock.put(AGENT_URL, status_code=status, json=body)
        requests_mock.get(f"{BASE}/chats", json={"data": [], "meta": {"total": 0}})
        with pytest.raises(cls) as caught:
            hook.mark_chat_read(5208)
        # sent once; a missing chat is believed only after the base URL answered (one GET /chats)
        probe = ["GET"] if cls is HelpCrunchNotFoundError else []
        assert [r.method for r in requests_mock.request_history] == ["PUT", *probe]
        err = caught.value
        assert type(err) is cls
        assert err.status_code == status
        assert err.chat_id == 5208
        assert err.codes == tuple(e["code"] for e in body["errors"])
        assert "5208" in str(err)

    def test_message_leads_with_the_specific_code(self, hook, requests_mock):
        requests_mock.get(f"{BASE}/chats", json={"data": [], "meta": {"total": 0}})
        requests_mock.put(
            AGENT_URL,
            status_code=404,
            json={
                "errors": [
                    {"code": "invalid_request", "message": "Invalid request"},
                    {"code": "not_found", "message": 'Chat for ID "9" was not found'},
                ]
            },
        )
        with pytest.raises(HelpCrunchNotFoundError, match='not_found: Chat for ID "9" was not found'):
            hook.mark_chat_read(9)

    def test_route_404_is_not_a_missing_chat(self, hook, requests_mock):
        requests_mock.put(AGENT_URL, status_code=404, text="<html>Not Found</html>")
        with pytest.raises(HelpCrunchAPIError, match="API base URL") as caught:
            hook.mark_chat_read(9)
        assert not isinstance(caught.value, HelpCrunchNotFoundError)

    def test_non_json_success_is_an_error(self, hook, requests_mock):
        requests_mock.put(AGENT_URL, status_code=200, text="<html>maintenance</html>")
        with pytest.raises(HelpCrunchAPIError, match="not JSON"):
            hook.mark_chat_read(9)


class TestRetries:
    def test_429_honours_retry_after(self, hook, clock, requests_mock):
        requests_mock.put(
            AGENT_URL,
            [
                {"status_code": 429, "headers": {"Retry-After": "7"}, "json": errors("too_many_requests")},
                {"json": chat(1)},
            ],
        )
        started = clock.now
        assert hook.mark_chat_read(1)["id"] == 1
        assert requests_mock.call_count == 2
        assert clock.backoffs == [7]
        assert clock.now - started >= 7

    def test_429_without_retry_after_backs_off_and_slows_the_pace(self, hook, clock, requests_mock):
        body = {"errors": [{"code": "too_many_requests", "message": "You have exceeded your requests limit"}]}
        requests_mock.put(AGENT_URL, [{"status_code": 429, "json": body}] * 2 + [{"json": chat(1)}])
        hook.mark_chat_read(1)
        assert requests_mock.call_count == 3
        assert hook.rate_limiter.rate < 120
        assert len(clock.backoffs) == 2
        assert all(0.5 <= wait <= 2 for wait in clock.backoffs)

    def test_429_is_waited_out_up_to_rate_limit_wait(self, make_hook, clock, requests_mock):
        hook = make_hook(rate_limit_wait=30, retry_backoff=1.0, retry_backoff_max=60)
        body = {
            "errors": [
                {"code": "invalid_request", "message": "Invalid request"},
                {"code": "too_many_requests", "message": "Too many requests"},
            ]
        }
        requests_mock.put(AGENT_URL, status_code=429, json=body)
        with pytest.raises(HelpCrunchRateLimitError, match=r"429 .* after \d+ attempts") as caught:
            hook.mark_chat_read(42)
        # waits 1, 2, 4, 8, 16 s (each between half and all of that) until the next would pass 30 s
        assert sum(clock.backoffs) <= 30
        assert requests_mock.call_count == len(clock.backoffs) + 1 >= 4
        assert caught.value.codes == ("invalid_request", "too_many_requests")
        assert caught.value.chat_id == 42

    def test_429s_do_not_use_up_max_retries(self, make_hook, requests_mock):
        hook = make_hook(max_retries=0)
        requests_mock.put(
            AGENT_URL, [{"status_code": 429, "json": errors("too_many_requests")}] * 6 + [{"json": chat(1)}]
        )
        assert hook.mark_chat_read(1)["id"] == 1
        assert requests_mock.call_count == 7

    def test_a_retry_after_beyond_rate_limit_wait_fails_at_once(self, make_hook, clock, requests_mock):
        hook = make_hook(rate_limit_wait=60)
        requests_mock.put(
            AGENT_URL, status_code=429, headers={"Retry-After": "3600"}, json=errors("too_many_requests")
        )
        with pytest.raises(HelpCrunchRateLimitError):
            hook.mark_chat_read(1)
        assert requests_mock.call_count == 1
        assert clock.backoffs == []

    @pytest.mark.parametrize("status", [500, 502, 503, 504])
    def test_5xx_retried_with_exponential_backoff(self, make_hook, clock, requests_mock, status):
        hook = make_hook(retry_backoff=2.0, retry_backoff_max=100)
        requests_mock.put(AGENT_URL, [{"status_code": status, "text": "oops"}] * 3 + [{"json": chat(1)}])
        hook.mark_chat_read(1)
        assert requests_mock.call_count == 4
        # retry n waits between half and all of 2 * 2**(n-1) seconds: [1, 2], [2, 4], [4, 8]
        assert len(clock.backoffs) == 3
        for n, wait in enumerate(clock.backoffs, start=1):
            ceiling = 2.0 * 2 ** (n - 1)
            assert ceiling / 2 <= wait <= ceiling

    def test_backoff_is_capped(self, make_hook):
        hook = make_hook(retry_backoff=1.0, retry_backoff_max=10)
        assert all(hook.client._backoff(n) <= 10 for n in range(1, 20))

    def test_5xx_after_every_retry(self, make_hook, requests_mock):
        hook = make_hook(max_retries=3)
        requests_mock.put(AGENT_URL, status_code=502, text="Bad gateway")
        with pytest.raises(HelpCrunchAPIError, match=r"502.*after 4 attempts.*Bad gateway"):
            hook.mark_chat_read(1)
        assert requests_mock.call_count == 4

    @pytest.mark.parametrize(
        "exc", [requests.ConnectionError("reset"), requests.ReadTimeout("slow"), requests.ConnectTimeout("x")]
    )
    def test_network_errors_retried(self, hook, requests_mock, exc):
        requests_mock.put(AGENT_URL, [{"exc": exc}, {"json": chat(1)}])
        assert hook.mark_chat_read(1)["id"] == 1
        assert requests_mock.call_count == 2

    def test_network_errors_after_every_retry(self, make_hook, requests_mock):
        hook = make_hook(max_retries=1)
        requests_mock.put(AGENT_URL, exc=requests.ConnectionError("Connection reset by peer"))
        with pytest.raises(HelpCrunchConnectionError, match=r"chat 3 after 2 attempt.*reset by peer"):
            hook.mark_chat_read(3)

    def test_tls_errors_are_not_retried(self, hook, requests_mock):
        requests_mock.put(AGENT_URL, exc=requests.exceptions.SSLError("certificate verify failed"))
        with pytest.raises(HelpCrunchConnectionError, match="certificate"):
            hook.mark_chat_read(3)
        assert requests_mock.call_count == 1

    def test_every_attempt_is_paced(self, hook, clock, requests_mock):
        requests_mock.put(AGENT_URL, [{"status_code": 500, "text": ""}] * 2 + [{"json": chat(1)}])
        hook.retry_backoff = 0.0
        hook.mark_chat_read(1)
        hook.mark_chat_read(1)
        # four requests at 120/min: starts at least 0.5 s apart
        assert requests_mock.call_count == 4
        assert clock.now - 1000.0 >= 1.5


class TestTestConnection:
    def test_ok(self, hook, requests_mock):
        requests_mock.get(f"{BASE}/chats?limit=1", json={"data": [], "meta": {"total": 0}})
        ok, message = hook.test_connection()
        assert ok
        assert BASE in message

    def test_bad_key(self, hook, requests_mock):
        requests_mock.get(f"{BASE}/chats", status_code=401, json=errors("invalid_token"))
        ok, message = hook.test_connection()
        assert not ok
        assert "401" in message
        assert "invalid_token" in message
        assert API_KEY not in message

    def test_rate_limited_answers_at_once(self, hook, clock, requests_mock):
        requests_mock.get(f"{BASE}/chats", status_code=429, json=errors("too_many_requests"))
        ok, message = hook.test_connection()
        assert not ok
        assert "429" in message
        assert requests_mock.call_count == 1
        assert clock.backoffs == []

    def test_unreachable_is_not_retried(self, hook, requests_mock):
        requests_mock.get(f"{BASE}/chats", exc=requests.ConnectionError("Name or service not known"))
        ok, message = hook.test_connection()
        assert not ok
        assert "Name or service not known" in message
        assert requests_mock.call_count == 1

    def test_bad_connection(self, set_connection):
        set_connection(host="http://example.com/v1")
        ok, message = HelpCrunchHook().test_connection()
        assert not ok
        assert "https" in message

    def test_an_undefined_connection_is_named_as_undefined(self, requests_mock):
        # what a Python shell on Airflow 3 sees for a connection kept in the metadata DB
        ok, message = HelpCrunchHook("helpcrunch_nowhere").test_connection()
        assert not ok
        assert "helpcrunch_nowhere" in message
        assert "isn't defined" in message
        assert requests_mock.call_count == 0

    def test_a_connection_that_cannot_be_read_is_not_quoted(self, monkeypatch, requests_mock):
        def unreadable(cls, conn_id):
            raise ValueError(f"cannot parse helpcrunch://:{API_KEY}@api.helpcrunch.com for {conn_id}")

        monkeypatch.setattr(HelpCrunchHook, "get_connection", classmethod(unreadable))
        ok, message = HelpCrunchHook().test_connection()
        assert not ok
        assert API_KEY not in message
        assert "ValueError while reading Airflow connection 'helpcrunch_default'" in message
        assert requests_mock.call_count == 0


class TestSecrecy:
    def test_key_in_no_error_and_no_log(self, make_hook, requests_mock, caplog):
        hook = make_hook(max_retries=1, rate_limit_wait=1.5)
        requests_mock.put(
            AGENT_URL,
            [
                {"status_code": 401, "json": errors("unauthorized")},
                {"status_code": 429, "json": errors("too_many_requests")},
                {"status_code": 429, "json": errors("too_many_requests")},
                {"exc": requests.ConnectionError("reset")},
                {"exc": requests.ConnectionError("reset")},
            ],
        )
        messages = []
        with caplog.at_level(logging.DEBUG):
            for _ in range(3):
                with pytest.raises(HelpCrunchError) as caught:
                    hook.mark_chat_read(1)
                messages.append(str(caught.value))
                messages.append(repr(caught.value))
        assert len(messages) == 6
        for text in [*messages, caplog.text, repr(hook), repr(hook.settings)]:
            assert API_KEY not in text


def probe_answers(requests_mock, **answer: Any) -> None:
    """What the base URL answers to the hook's one ``GET /chats?limit=1`` check."""
    requests_mock.get(f"{BASE}/chats", **(answer or {"json": {"data": [], "meta": {"total": 0}}}))


class TestRateLimitBudgetIsRealTime:
    @pytest.mark.parametrize("retry_after", ["0", "Wed, 21 Oct 2015 07:28:00 GMT"])
    def test_429_forever_with_a_zero_wait_gives_up_after_rate_limit_wait(
        self, make_hook, clock, requests_mock, retry_after
    ):
        hook = make_hook(rate_limit_wait=30)
        throttled = {"status_code": 429, "headers": {"Retry-After": retry_after}, "json": errors("x")}
        requests_mock.put(AGENT_URL, [throttled] * 500 + [{"json": chat(1)}])
        started = clock.now
        with pytest.raises(HelpCrunchRateLimitError):
            hook.mark_chat_read(1)
        # gave up by the budget, on the real (virtual) clock, long before the 501st answer
        assert clock.now - started <= 30
        assert requests_mock.call_count < 500
        assert all(wait > 0 for wait in clock.backoffs)  # a 0 s Retry-After backs off instead

    def test_pacer_waits_count_against_the_budget(self, make_hook, clock, requests_mock):
        hook = make_hook(rate_limit_wait=10, requests_per_minute=6)  # the pacer alone waits 10 s a request
        requests_mock.put(AGENT_URL, status_code=429, json=errors("too_many_requests"))
        started = clock.now
        with pytest.raises(HelpCrunchRateLimitError):
            hook.mark_chat_read(1)
        assert requests_mock.call_count <= 2
        assert clock.now - started <= 10 + 10  # at most one more paced attempt past the first 429


class TestRedirectsAreNotFollowed:
    @pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
    def test_a_redirect_is_a_typed_error_naming_the_target_host(self, hook, requests_mock, status):
        requests_mock.put(AGENT_URL, status_code=status, headers={"Location": "https://other.example.net/x"})
        requests_mock.get("https://other.example.net/x", json=chat(1))
        with pytest.raises(HelpCrunchAPIError, match=rf"{status}.*other\.example\.net") as caught:
            hook.mark_chat_read(1)
        assert [r.url for r in requests_mock.request_history] == [AGENT_URL]
        assert caught.value.status_code == status

    def test_a_redirect_loop_sends_one_request(self, hook, requests_mock):
        requests_mock.put(AGENT_URL, status_code=307, headers={"Location": AGENT_URL})
        with pytest.raises(HelpCrunchAPIError, match=r"307.*api\.helpcrunch\.com"):
            hook.mark_chat_read(1)
        assert requests_mock.call_count == 1


class TestA404IsAMissingChatOnlyOnceTheBaseUrlAnswered:
    ROUTE_NOT_FOUND: ClassVar = {"errors": [{"code": "not_found", "message": "Route not found"}]}

    def test_every_route_404_is_a_wrong_base_url(self, hook, requests_mock):
        requests_mock.put(AGENT_URL, status_code=404, json=self.ROUTE_NOT_FOUND)
        probe_answers(requests_mock, status_code=404, json=self.ROUTE_NOT_FOUND)
        with pytest.raises(HelpCrunchConfigError, match=r"not found at https://api\.helpcrunch\.com/v1"):
            hook.mark_chat_read(5)

    def test_after_the_probe_answers_a_404_is_a_missing_chat(self, hook, requests_mock):
        requests_mock.put(AGENT_URL, status_code=404, json=errors("not_found"))
        probe_answers(requests_mock)
        for chat_id in (5, 6):
            with pytest.raises(HelpCrunchNotFoundError):
                hook.mark_chat_read(chat_id)
        assert [r.method for r in requests_mock.request_history] == ["PUT", "GET", "PUT"]  # asked once

    def test_after_a_2xx_no_probe_is_needed(self, hook, requests_mock):
        requests_mock.put(AGENT_URL, [{"json": chat(1)}, {"status_code": 404, "json": errors("not_found")}])
        hook.mark_chat_read(1)
        with pytest.raises(HelpCrunchNotFoundError):
            hook.mark_chat_read(2)
        assert [r.method for r in requests_mock.request_history] == ["PUT", "PUT"]

    def test_skip_does_not_hide_a_wrong_base_url(self, set_connection, requests_mock):
        from airflow_provider_helpcrunch.operators.helpcrunch import MarkChatReadOperator

        set_connection(extra={"requests_per_minute": 60000})
        requests_mock.put(AGENT_URL, status_code=404, json=self.ROUTE_NOT_FOUND)
        probe_answers(requests_mock, status_code=404, json=self.ROUTE_NOT_FOUND)
        op = MarkChatReadOperator(task_id="m", chat_ids=[1, 2, 3], on_missing="skip", max_in_flight=1)
        with pytest.raises(HelpCrunchConfigError, match=r"0 chat.* marked.*base URL"):
            op.execute({})


class TestSuccessMustBeAJsonObject:
    @pytest.mark.parametrize("text", ["null", "[]", "[1, 2]", "5", '"marked"', "true", ""])
    def test_mark_chat_read(self, hook, requests_mock, text):
        requests_mock.put(AGENT_URL, text=text)
        with pytest.raises(HelpCrunchAPIError, match="200"):
            hook.mark_chat_read(1)

    @pytest.mark.parametrize("text", ["null", "[]", "5", '"chat"'])
    def test_get_chat(self, hook, requests_mock, text):
        requests_mock.get(f"{BASE}/chats/1", text=text)
        with pytest.raises(HelpCrunchAPIError, match="not an object"):
            hook.get_chat(1)

    def test_another_chat_or_the_wrong_state_is_not_marked(self, hook, requests_mock):
        requests_mock.put(AGENT_URL, [{"json": chat(2)}, {"json": chat(1, readByAgent=False)}])
        with pytest.raises(HelpCrunchAPIError, match="with chat 2"):
            hook.mark_chat_read(1)
        with pytest.raises(HelpCrunchAPIError, match="readByAgent=False"):
            hook.mark_chat_read(1)

    def test_a_body_nested_100000_deep_is_a_typed_error(self, hook, requests_mock):
        requests_mock.put(AGENT_URL, text="[" * 100_000 + "]" * 100_000)
        with pytest.raises(HelpCrunchAPIError, match="nested too deeply"):
            hook.mark_chat_read(1)


class TestTheKeyNeverInAMessage:
    @pytest.mark.parametrize("status", [400, 401, 500])
    def test_a_server_echoing_the_key_is_scrubbed(self, make_hook, requests_mock, set_connection, status):
        key = 'k3y-with\\back"slash'
        set_connection(password=key)
        hook = make_hook(max_retries=0)
        echoes = [key, json.dumps(key)[1:-1], repr(key)[1:-1], quote(key, safe="")]
        body = {"errors": [{"code": "invalid_token", "message": f"token {e} refused"} for e in echoes]}
        requests_mock.put(AGENT_URL, status_code=status, json=body)
        with pytest.raises(HelpCrunchError) as caught:
            hook.mark_chat_read(1)
        for text in (str(caught.value), repr(caught.value)):
            for form in echoes:
                assert form not in text
        assert "token *** refused" in str(caught.value)

    def test_a_non_json_body_echoing_the_key_is_scrubbed(self, hook, requests_mock):
        requests_mock.put(AGENT_URL, status_code=400, text=f"<html>upstream said Bearer {API_KEY}</html>")
        with pytest.raises(HelpCrunchAPIError) as caught:
            hook.mark_chat_read(1)
        assert API_KEY not in str(caught.value)
        assert "Bearer ***" in str(caught.value)

    def test_a_transport_error_quoting_the_key_is_scrubbed(self, make_hook, requests_mock):
        hook = make_hook(max_retries=0)
        requests_mock.put(AGENT_URL, exc=requests.ConnectionError(f"proxy refused 'Bearer {API_KEY}'"))
        with pytest.raises(HelpCrunchConnectionError) as caught:
            hook.mark_chat_read(1)
        assert API_KEY not in str(caught.value)

    def test_escaped_forms_are_registered_with_the_masker(self, set_connection, monkeypatch):
        key = 'k3y-with\\back"slash'
        set_connection(password=key)
        masked: list[str] = []
        monkeypatch.setattr("airflow_provider_helpcrunch.hooks.helpcrunch.mask_secret", masked.append)
        HelpCrunchHook().get_conn()
        assert {key, json.dumps(key)[1:-1], repr(key)[1:-1]} <= set(masked)


class TestBoundedMessages:
    def test_a_1mb_message_is_cut(self, make_hook, requests_mock):
        hook = make_hook(max_retries=0)
        requests_mock.put(
            AGENT_URL, status_code=500, json={"errors": [{"code": "e", "message": "x" * 1_000_000}]}
        )
        with pytest.raises(HelpCrunchAPIError) as caught:
            hook.mark_chat_read(1)
        assert len(str(caught.value)) < 1000
        assert "1,000,003 characters in all" in str(caught.value)

    def test_20000_entries_are_counted_not_quoted(self, make_hook, requests_mock):
        hook = make_hook(max_retries=0)
        body = {"errors": [{"code": f"e{i}", "message": "m"} for i in range(20_000)]}
        requests_mock.put(AGENT_URL, status_code=400, json=body)
        with pytest.raises(HelpCrunchAPIError, match="and 19,997 more error") as caught:
            hook.mark_chat_read(1)
        assert len(str(caught.value)) < 1000
        # the error keeps a bounded few for code that reads them, and says how many it left out
        assert (len(caught.value.errors), caught.value.errors_left_out) == (10, 19_990)

    def test_a_non_json_body_is_cut(self, make_hook, requests_mock):
        hook = make_hook(max_retries=0)
        requests_mock.put(AGENT_URL, status_code=500, text="<p>" + "y" * 1_000_000)
        with pytest.raises(HelpCrunchAPIError) as caught:
            hook.mark_chat_read(1)
        assert len(str(caught.value)) < 1000

    def test_a_body_over_the_cap_is_not_read(self, hook, requests_mock):
        from airflow_provider_helpcrunch.client import MAX_RESPONSE_BYTES

        requests_mock.put(AGENT_URL, content=b" " * (MAX_RESPONSE_BYTES + 1))
        with pytest.raises(HelpCrunchAPIError, match=r"was not read.*4,194,304"):
            hook.mark_chat_read(1)
        assert requests_mock.call_count == 1


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


class TestRequestStats:
    def test_requests_and_429s_are_counted(self, hook, requests_mock):
        requests_mock.put(
            AGENT_URL,
            [
                {"status_code": 429, "json": errors("too_many_requests"), "headers": {"Retry-After": "3"}},
                {"status_code": 503, "text": "busy"},
                {"json": chat(7)},
            ],
        )
        hook.mark_chat_read(7)
        stats = hook.client.stats
        assert stats.as_dict() == {"sent": 3, "rate_limited": 1, "rate_limit_wait_seconds": 3.0}
        assert stats.describe() == "3 request(s), 1 answered 429 (waited 3.0 s on them)"
