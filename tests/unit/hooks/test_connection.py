"""The helpcrunch connection: its settings, the key and host rules, all checked before any request."""

from __future__ import annotations

import pytest

from airflow_provider_helpcrunch.exceptions import HelpCrunchConfigError
from airflow_provider_helpcrunch.hooks.helpcrunch import HelpCrunchHook
from tests.helpers import API_KEY, BASE, chat

AGENT_URL = f"{BASE}/chats/readByAgent"


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

    @pytest.mark.parametrize(
        ("host", "port", "expected"),
        [
            ("http://LOCALHOST:8765/v1", None, "http://localhost:8765/v1"),
            ("HTTP://localhost:8765/v1/", None, "http://localhost:8765/v1"),
            ("https://API.HelpCrunch.com/v1", None, "https://api.helpcrunch.com/v1"),
            ("https://api.helpcrunch.com:443/v1", None, "https://api.helpcrunch.com/v1"),
            ("api.helpcrunch.com:443", None, "https://api.helpcrunch.com/v1"),
            ("https://api.helpcrunch.com", 443, "https://api.helpcrunch.com/v1"),
            ("http://localhost:80/v1", None, "http://localhost/v1"),
            ("http://[::1]:80", None, "http://[::1]/v1"),
            ("https://api.helpcrunch.com:8443/v1", None, "https://api.helpcrunch.com:8443/v1"),
            ("https://bücher.example/v1", None, "https://xn--bcher-kva.example/v1"),
        ],
    )
    def test_every_spelling_of_one_base_url_is_one_canonical_url(self, set_connection, host, port, expected):
        set_connection(host=host, **({"port": port} if port else {}))
        assert HelpCrunchHook().settings.base_url == expected

    def test_the_canonical_url_is_the_one_requests_are_sent_to(self, set_connection, requests_mock):
        set_connection(host="HTTPS://API.HELPCRUNCH.COM:443/v1/")
        requests_mock.put(AGENT_URL, json=chat(1))
        HelpCrunchHook().mark_chat_read(1)
        assert requests_mock.last_request.url == AGENT_URL

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


SNEAKY_KEYS = [
    pytest.param("abc\ndef-123", id="newline"),
    pytest.param("abc\rdef-123", id="cr"),
    pytest.param("abc\x00def-123", id="nul"),
    pytest.param("abc def-123", id="space"),
    pytest.param("abc\u2603def-123", id="non-latin-1"),
    pytest.param("abc\u00e9def-123", id="latin-1"),
]


class TestTheKey:
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


class TestRedisConnId:
    def test_unset_by_default(self, set_connection):
        assert HelpCrunchHook().settings.redis_conn_id is None

    def test_from_the_extra_and_the_argument_wins(self, set_connection):
        set_connection(extra={"redis_conn_id": " redis_pacer "})
        assert HelpCrunchHook().settings.redis_conn_id == "redis_pacer"
        assert HelpCrunchHook(redis_conn_id="other").settings.redis_conn_id == "other"

    @pytest.mark.parametrize("value", [5, True, "   ", ["redis"]])
    def test_a_bad_value_is_named(self, set_connection, value):
        set_connection(extra={"redis_conn_id": value})
        with pytest.raises(HelpCrunchConfigError, match=r"redis_conn_id.*must be a connection ID"):
            HelpCrunchHook().settings  # noqa: B018
