"""The request loop: retries, 429s, redirects, the 404 probe, answers judged and bounded, the key kept out."""

from __future__ import annotations

import json
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
from tests.helpers import API_KEY, BASE, chat, errors

AGENT_URL = f"{BASE}/chats/readByAgent"


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


def probe_answers(requests_mock, **answer: Any) -> None:
    """What the base URL answers to the hook's one ``GET /chats?limit=1`` check."""
    requests_mock.get(f"{BASE}/chats", **(answer or {"json": {"data": [], "meta": {"total": 0}}}))


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
