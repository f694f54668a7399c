"""The hook against servers that misbehave: redirects, trickling, cut-off and oversized answers, proxies."""

from __future__ import annotations

import time

import pytest

from airflow_provider_helpcrunch.client import MAX_RESPONSE_BYTES
from airflow_provider_helpcrunch.exceptions import (
    HelpCrunchAPIError,
    HelpCrunchAuthError,
    HelpCrunchConnectionError,
)
from airflow_provider_helpcrunch.hooks.helpcrunch import HelpCrunchHook
from airflow_provider_helpcrunch.operators.helpcrunch import MarkChatReadOperator
from airflow_provider_helpcrunch.testing import Fault
from tests.helpers import API_KEY
from tests.scripted_server import ScriptedServer, answer

pytestmark = pytest.mark.integration

CHAT = {"id": 7, "readByAgent": True, "readByCustomer": False}


@pytest.fixture
def point_at(set_scripted_connection):
    return set_scripted_connection


@pytest.fixture
def set_scripted_connection(monkeypatch):
    def define(base_url: str, **extra) -> None:
        import json

        conn = {"conn_type": "helpcrunch", "host": base_url, "password": API_KEY, "extra": extra}
        monkeypatch.setenv("AIRFLOW_CONN_HELPCRUNCH_DEFAULT", json.dumps(conn))

    return define


def hook(**kwargs) -> HelpCrunchHook:
    kwargs.setdefault("requests_per_minute", 6000)
    kwargs.setdefault("retry_backoff", 0.05)
    return HelpCrunchHook(**kwargs)


class TestRedirects:
    @pytest.mark.parametrize("status", [301, 302, 307, 308])
    def test_a_redirect_to_another_host_is_not_followed(self, point_at, status):
        with ScriptedServer(lambda r: [answer(200, CHAT)], host="localhost") as other:
            target = f"http://localhost:{other.port}/v1/chats/readByAgent"
            with ScriptedServer(lambda r: [answer(status, b"", {"Location": target})]) as api:
                point_at(f"{api.url}/v1")
                with pytest.raises(HelpCrunchAPIError, match=rf"{status}.*redirect to localhost") as caught:
                    hook().mark_chat_read(7)
                assert len(api.received) == 1
            assert other.received == []  # the PUT was never turned into a GET elsewhere
        assert caught.value.status_code == status

    def test_a_redirect_to_another_scheme_is_not_followed(self, point_at):
        location = {"Location": "https://api.helpcrunch.com/v1/chats/readByAgent"}
        with ScriptedServer(lambda r: [answer(301, b"", location)]) as api:
            point_at(f"{api.url}/v1")
            with pytest.raises(HelpCrunchAPIError, match=r"301.*api\.helpcrunch\.com"):
                hook().mark_chat_read(7)
            assert len(api.received) == 1

    def test_a_redirect_loop_sends_one_request(self, point_at):
        with ScriptedServer(lambda r: [answer(307, b"", {"Location": r.target})]) as api:
            point_at(f"{api.url}/v1")
            with pytest.raises(HelpCrunchAPIError, match="307"):
                hook().mark_chat_read(7)
            time.sleep(0.2)
            assert len(api.received) == 1


class TestTheAttemptDeadline:
    def test_a_trickled_body_is_cut_off_at_the_timeout(self, point_at):
        body = b'{"id": 7, "readByAgent": true}'
        head = answer(200, body)[: -len(body)]

        def trickle(_):
            yield head
            for byte in body:
                yield bytes([byte])
                yield 0.8

        with ScriptedServer(trickle) as api:
            point_at(f"{api.url}/v1", timeout=1)
            started = time.monotonic()
            with pytest.raises(HelpCrunchConnectionError, match=r"after 1 attempt.*Timeout"):
                hook(max_retries=0).mark_chat_read(7)
            took = time.monotonic() - started
        print(f"\ntrickled body: the attempt ended after {took:.2f} s (timeout 1 s)")
        assert took < 4.0  # the timeout and slack for a loaded machine, not the 24 s the trickle would take

    def test_trickled_headers_are_cut_off_too(self, point_at):
        def trickle(_):
            for char in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 30:
                yield bytes([char])
                yield 0.3

        with ScriptedServer(trickle) as api:
            point_at(f"{api.url}/v1", timeout=1)
            started = time.monotonic()
            with pytest.raises(HelpCrunchConnectionError, match="Timeout"):
                hook(max_retries=0).mark_chat_read(7)
            assert time.monotonic() - started < 4.0  # not the 9 s the trickle would take

    def test_a_timed_out_attempt_is_retried(self, point_at):
        answers = iter([[0.0, answer(200, CHAT)], [answer(200, CHAT)]])

        def slow_then_fast(_):
            steps = next(answers)
            if steps[0] == 0.0:
                yield 3.0  # the first attempt gets nothing before its deadline
            yield steps[-1]

        with ScriptedServer(slow_then_fast) as api:
            point_at(f"{api.url}/v1", timeout=1)
            assert hook(max_retries=1).mark_chat_read(7)["id"] == 7
            assert len(api.received) == 2


class TestCutOffAndOversizedAnswers:
    def test_a_truncated_body_is_retried_and_never_counted(self, point_at):
        whole = answer(200, CHAT)
        with ScriptedServer(lambda r: [whole[:-5], None]) as api:
            point_at(f"{api.url}/v1")
            with pytest.raises(HelpCrunchConnectionError, match="after 3 attempt"):
                hook(max_retries=2).mark_chat_read(7)
            assert len(api.received) == 3

    def test_a_body_over_the_cap_without_a_length_is_a_typed_error(self, point_at):
        def endless(_):
            yield b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
            for _ in range(MAX_RESPONSE_BYTES // 65536 + 2):
                yield b" " * 65536

        with ScriptedServer(endless) as api:
            point_at(f"{api.url}/v1")
            with pytest.raises(HelpCrunchAPIError, match="was not read"):
                hook().mark_chat_read(7)
            assert len(api.received) == 1

    def test_a_declared_length_over_the_cap_is_not_read(self, point_at):
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {MAX_RESPONSE_BYTES + 1}\r\n\r\n".encode()
        # no body ever follows: a client that read on would wait out its 20 s timeout
        with ScriptedServer(lambda r: [head, 30.0]) as api:
            point_at(f"{api.url}/v1", timeout=20)
            started = time.monotonic()
            with pytest.raises(HelpCrunchAPIError, match="4,194,305 bytes"):
                hook().mark_chat_read(7)
            assert time.monotonic() - started < 10  # refused on the header, not after reading


class TestAuthFromTheEnvironment:
    def test_netrc_does_not_replace_the_bearer(self, make_helpcrunch_standin, tmp_path, monkeypatch):
        standin = make_helpcrunch_standin(chats=3, api_key=API_KEY, requests_per_minute=None)
        netrc = tmp_path / "netrc"
        netrc.write_text("default login someone password netrc-password\n")
        netrc.chmod(0o600)
        monkeypatch.setenv("NETRC", str(netrc))
        chat_id = next(iter(standin.chats))
        assert hook().mark_chat_read(chat_id)["readByAgent"] is True  # the stand-in takes only the bearer

    def test_a_proxy_from_the_environment_still_applies(self, point_at, monkeypatch):
        with ScriptedServer(lambda r: [answer(200, CHAT)]) as proxy:
            for name in ("NO_PROXY", "no_proxy"):
                monkeypatch.delenv(name, raising=False)
            monkeypatch.setenv("HTTP_PROXY", proxy.url)
            monkeypatch.setenv("http_proxy", proxy.url)
            point_at("http://127.0.0.1:9/v1")  # nothing listens there: only the proxy can answer
            assert hook().mark_chat_read(7)["id"] == 7
            (received,) = proxy.received
        assert received.target == "http://127.0.0.1:9/v1/chats/readByAgent"
        assert received.headers["authorization"] == f"Bearer {API_KEY}"


class TestStopAndOrder:
    def test_a_bad_key_sends_one_put_however_many_are_in_flight(self, make_helpcrunch_standin):
        standin = make_helpcrunch_standin(chats=20, api_key=API_KEY, requests_per_minute=None)
        standin.api_key = "rotated"  # the connection still has the old key
        op = MarkChatReadOperator(
            task_id="mark", chat_ids=list(standin.chats), max_in_flight=4, requests_per_minute=600
        )
        with pytest.raises(HelpCrunchAuthError, match=r"0 chat\(s\) were marked before the stop"):
            op.execute({})
        assert [r.status for r in standin.requests] == [401]

    def test_nothing_leaves_after_a_5xx_outlives_its_retries(self, make_helpcrunch_standin):
        standin = make_helpcrunch_standin(chats=20, api_key=API_KEY, requests_per_minute=None)
        ids = list(standin.chats)
        standin.inject(Fault(status=500), chat_id=ids[1], attempts=(1, 2))
        before = standin.chats
        op = MarkChatReadOperator(
            task_id="mark",
            chat_ids=ids,
            max_in_flight=4,
            requests_per_minute=600,
            max_retries=1,
            hook_params={"retry_backoff": 0.05},
        )
        with pytest.raises(HelpCrunchAPIError, match=f"Stopped at chat {ids[1]}") as caught:
            op.execute({})
        log = standin.requests
        assert (log[-1].chat_id, log[-1].status) == (ids[1], 500)  # the stopping answer was the last
        others = [i for i in ids if i != ids[1]]
        sent = [r.chat_id for r in log if r.chat_id != ids[1]]
        # the others that left before the stop are the first of them in input order, each sent once and
        # marked; those after them were never sent
        assert 1 <= len(sent) < len(others)
        assert sent == others[: len(sent)]
        assert all(r.status == 200 for r in log if r.chat_id != ids[1])
        after = standin.chats
        assert all(after[i]["readByAgent"] for i in sent)
        assert all(after[i] == before[i] for i in others[len(sent) :])
        assert f"{len(sent)} chat(s) were marked before the stop" in str(caught.value)

    def test_requests_leave_in_input_order(self, make_helpcrunch_standin):
        import random

        standin = make_helpcrunch_standin(chats=40, api_key=API_KEY, requests_per_minute=None, latency=0.05)
        ids = list(standin.chats)
        random.Random(8).shuffle(ids)
        op = MarkChatReadOperator(task_id="mark", chat_ids=ids, max_in_flight=8, requests_per_minute=1200)
        result = op.execute({})
        assert result["marked"] == ids
        assert [r.chat_id for r in sorted(standin.requests, key=lambda r: r.time)] == ids
