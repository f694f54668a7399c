from __future__ import annotations

import logging

import pytest
import requests

from airflow_provider_helpcrunch.exceptions import (
    HelpCrunchConfigError,
    HelpCrunchError,
)
from airflow_provider_helpcrunch.hooks.helpcrunch import HelpCrunchHook
from tests.helpers import API_KEY, BASE, chat, errors

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
