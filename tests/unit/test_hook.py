from __future__ import annotations

import json
import logging
from typing import Any, ClassVar
from urllib.parse import quote

import pytest
import requests
from airflow.providers.common.compat.sdk import AirflowException

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
from tests.conftest import API_KEY
from tests.unit.conftest import BASE, chat, errors

AGENT_URL = f"{BASE}/chats/readByAgent"


class TestAttributes:
    def test_class_attributes(self):
        assert HelpCrunchHook.conn_name_attr == "helpcrunch_conn_id"
        assert HelpCrunchHook.default_conn_name == "helpcrunch_default"
        assert HelpCrunchHook.conn_type == "helpcrunch"
        assert HelpCrunchHook.hook_name == "HelpCrunch"

    def test_constructor_takes_conn_id(self, set_connection):
        set_connection("other_conn", host="https://eu.example.com/v1")
        hook = HelpCrunchHook(helpcrunch_conn_id="other_conn")
        assert hook.settings.base_url == "https://eu.example.com/v1"

    def test_errors_are_airflow_exceptions(self):
        for cls in (
            HelpCrunchAuthError,
            HelpCrunchNotFoundError,
            HelpCrunchRateLimitError,
            HelpCrunchAPIError,
            HelpCrunchConnectionError,
            HelpCrunchConfigError,
        ):
            assert issubclass(cls, HelpCrunchError)
            assert issubclass(cls, AirflowException)


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


class TestConnection:
    def test_missing_key_names_the_connection(self, set_connection, requests_mock):
        set_connection("no_key", password="")
        with pytest.raises(HelpCrunchConfigError, match="'no_key' has no API key"):
            HelpCrunchHook("no_key").mark_chat_read(1)
        assert requests_mock.call_count == 0

    @pytest.mark.parametrize(
        ("host", "expected"),
        [
            (None, "https://api.helpcrunch.com/v1"),
            ("", "https://api.helpcrunch.com/v1"),
            ("api.helpcrunch.com/v1", "https://api.helpcrunch.com/v1"),
            ("https://api.helpcrunch.com/v1/", "https://api.helpcrunch.com/v1"),
            ("https://api.helpcrunch.com", "https://api.helpcrunch.com/v1"),
            ("http://localhost:8765/v1", "http://localhost:8765/v1"),
            ("http://127.0.0.1:8765/v1", "http://127.0.0.1:8765/v1"),
            ("http://[::1]:8765/v1", "http://[::1]:8765/v1"),
        ],
    )
    def test_base_url(self, set_connection, host, expected):
        set_connection(host=host)
        assert HelpCrunchHook().settings.base_url == expected

    def test_port_field_is_used_when_the_host_has_none(self, set_connection):
        set_connection(host="http://127.0.0.1", port=8765)
        assert HelpCrunchHook().settings.base_url == "http://127.0.0.1:8765/v1"

    @pytest.mark.parametrize("host", ["http://api.helpcrunch.com/v1", "http://10.0.0.5:8080/v1"])
    def test_plain_http_is_refused_off_loopback(self, set_connection, requests_mock, host):
        set_connection(host=host)
        with pytest.raises(HelpCrunchConfigError, match="https"):
            HelpCrunchHook().mark_chat_read(1)
        assert requests_mock.call_count == 0

    def test_unusable_host(self, set_connection):
        set_connection(host="ftp://files.example.com")
        with pytest.raises(HelpCrunchConfigError, match="unusable host"):
            HelpCrunchHook().settings  # noqa: B018

    def test_defaults(self, set_connection):
        settings = HelpCrunchHook().settings
        assert (settings.requests_per_minute, settings.timeout, settings.max_retries) == (120, 30.0, 5)

    def test_extras_plain_and_prefixed(self, set_connection):
        set_connection(
            extra={"requests_per_minute": "60", "extra__helpcrunch__timeout": 12, "max_retries": 0}
        )
        settings = HelpCrunchHook().settings
        assert (settings.requests_per_minute, settings.timeout, settings.max_retries) == (60, 12.0, 0)

    def test_arguments_win_over_extras(self, set_connection):
        set_connection(extra={"requests_per_minute": 60, "timeout": 12, "max_retries": 2})
        settings = HelpCrunchHook(requests_per_minute=30, timeout=3, max_retries=9).settings
        assert (settings.requests_per_minute, settings.timeout, settings.max_retries) == (30, 3.0, 9)

    @pytest.mark.parametrize(
        ("extra", "message"),
        [
            ({"requests_per_minute": "fast"}, "requests_per_minute.*'fast'"),
            ({"requests_per_minute": 0}, "requests_per_minute.*at least 1"),
            ({"timeout": -1}, "timeout.*at least 1"),
            ({"max_retries": 1.5}, "max_retries.*1.5"),
            ({"max_retries": True}, "max_retries.*True"),
        ],
    )
    def test_bad_extras_are_named(self, set_connection, extra, message):
        set_connection(extra=extra)
        with pytest.raises(HelpCrunchConfigError, match=message):
            HelpCrunchHook().settings  # noqa: B018


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
        assert all(hook._backoff(n) <= 10 for n in range(1, 20))

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


SNEAKY_KEYS = [
    pytest.param("abc\ndef-123", id="newline"),
    pytest.param("abc\rdef-123", id="cr"),
    pytest.param("abc\x00def-123", id="nul"),
    pytest.param("abc def-123", id="space"),
    pytest.param("abc\u2603def-123", id="non-latin-1"),
    pytest.param("abc\u00e9def-123", id="latin-1"),
]


class TestTheKeyNeverInAMessage:
    @pytest.mark.parametrize("key", SNEAKY_KEYS)
    def test_a_malformed_key_is_refused_without_quoting_it(self, set_connection, requests_mock, key):
        set_connection(password=key)
        with pytest.raises(HelpCrunchConfigError, match="API key with a character") as caught:
            HelpCrunchHook().mark_chat_read(1)
        assert requests_mock.call_count == 0
        for form in ("abc", "def-123", repr(key)):
            assert form not in str(caught.value)
        ok, message = HelpCrunchHook().test_connection()
        assert not ok
        assert "def-123" not in message

    def test_outer_whitespace_is_stripped(self, set_connection, requests_mock):
        set_connection(password=f"  {API_KEY}\n")
        requests_mock.put(AGENT_URL, json=chat(1))
        HelpCrunchHook().mark_chat_read(1)
        assert requests_mock.last_request.headers["Authorization"] == f"Bearer {API_KEY}"

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


class TestConnectionHostRules:
    def test_userinfo_in_the_host_is_refused_without_echoing_it(self, set_connection, requests_mock):
        set_connection(host="https://user:s3cr3t-pass@api.helpcrunch.com/v1")
        with pytest.raises(HelpCrunchConfigError, match="user name or password") as caught:
            HelpCrunchHook().mark_chat_read(1)
        assert "s3cr3t-pass" not in str(caught.value)
        assert requests_mock.call_count == 0

    @pytest.mark.parametrize(
        "host", ["api.example.com:abc", "https://api.example.com:70000/v1", "http://[::1"]
    )
    def test_a_bad_port_is_a_config_error_naming_the_connection(self, set_connection, host):
        set_connection(host=host)
        with pytest.raises(HelpCrunchConfigError, match="'helpcrunch_default'"):
            HelpCrunchHook().settings  # noqa: B018

    def test_a_bad_port_field_is_a_config_error(self, set_connection):
        set_connection(host="https://api.example.com/v1", port=70000)
        with pytest.raises(HelpCrunchConfigError, match="invalid port 70000"):
            HelpCrunchHook().settings  # noqa: B018

    @pytest.mark.parametrize("host", ["http://evil.localhost/v1", "http://localhost.evil.com/v1"])
    def test_only_real_loopback_may_use_http(self, set_connection, host):
        set_connection(host=host)
        with pytest.raises(HelpCrunchConfigError, match="only over HTTPS"):
            HelpCrunchHook().settings  # noqa: B018

    @pytest.mark.parametrize("host", ["http://127.0.0.53:8000/v1", "http://LOCALHOST:8000/v1"])
    def test_loopback_may_use_http(self, set_connection, host):
        set_connection(host=host)
        assert HelpCrunchHook().settings.base_url.startswith("http://")


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
        assert len(caught.value.errors) == 20_000  # all kept for code that reads them

    def test_a_non_json_body_is_cut(self, make_hook, requests_mock):
        hook = make_hook(max_retries=0)
        requests_mock.put(AGENT_URL, status_code=500, text="<p>" + "y" * 1_000_000)
        with pytest.raises(HelpCrunchAPIError) as caught:
            hook.mark_chat_read(1)
        assert len(str(caught.value)) < 1000

    def test_a_body_over_the_cap_is_not_read(self, hook, requests_mock):
        from airflow_provider_helpcrunch.hooks.helpcrunch import MAX_RESPONSE_BYTES

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
