"""
The async path (for triggers) over real HTTP: against the stand-in, the same faults as the sync client, and
against scripted servers, the same hostile answers: redirects, trickling, oversized and non-JSON bodies,
echoed keys. And it never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from airflow_provider_helpcrunch.client import MAX_RESPONSE_BYTES
from airflow_provider_helpcrunch.exceptions import (
    HelpCrunchAPIError,
    HelpCrunchAuthError,
    HelpCrunchConnectionError,
    HelpCrunchRateLimitError,
)
from airflow_provider_helpcrunch.hooks.helpcrunch import HelpCrunchHook
from airflow_provider_helpcrunch.testing import Fault
from tests.helpers import API_KEY
from tests.scripted_server import ScriptedServer, answer

pytestmark = pytest.mark.integration

PAGE = {"data": [{"id": 7, "createdAt": 1_700_000_000}], "meta": {"total": 1}}


def search(filters=None, **hook_kwargs):
    """Run one async search to the end, in a fresh event loop: the IDs found, and the client's stats."""
    hook_kwargs.setdefault("requests_per_minute", 6000)
    hook_kwargs.setdefault("retry_backoff", 0.05)

    async def run():
        client = await HelpCrunchHook(**hook_kwargs).aget_client()
        try:
            ids = [chat["id"] async for chat in client.search_chats(filters or [])]
        finally:
            await client.aclose()
        return ids, client.stats

    return asyncio.run(run())


@pytest.fixture
def point_at(monkeypatch):
    def define(base_url: str, **extra) -> None:
        conn = {"conn_type": "helpcrunch", "host": base_url, "password": API_KEY, "extra": extra}
        monkeypatch.setenv("AIRFLOW_CONN_HELPCRUNCH_DEFAULT", json.dumps(conn))

    return define


class TestAgainstTheStandIn:
    def test_it_pages_by_key_and_finds_what_the_sync_search_finds(self, make_helpcrunch_standin):
        standin = make_helpcrunch_standin(chats=0, api_key=API_KEY, requests_per_minute=None)
        for n in range(250):  # three pages, and a run of equal createdAt across a page boundary
            standin.add_chat(
                id=9000 + n, createdAt=1_700_000_000 + n // 150, status="closed" if n % 2 else "new"
            )
        found, stats = search([("status", "=", "closed")])
        sync = [chat["id"] for chat in HelpCrunchHook().search_chats([("status", "=", "closed")])]
        assert found == sync
        assert sorted(found) == [9000 + n for n in range(250) if n % 2]
        assert stats.sent >= 2

    def test_429s_are_waited_out_and_counted(self, make_helpcrunch_standin):
        standin = make_helpcrunch_standin(chats=5, api_key=API_KEY, requests_per_minute=None)
        standin.inject(Fault(status=429, retry_after=0.2), request=1)
        standin.inject(Fault(status=429), request=2)
        found, stats = search()
        assert len(found) == 5
        assert [r.status for r in standin.requests] == [429, 429, 200]
        assert (stats.sent, stats.rate_limited) == (3, 2)

    def test_a_429_that_outlasts_rate_limit_wait_is_a_typed_error(self, make_helpcrunch_standin):
        standin = make_helpcrunch_standin(chats=5, api_key=API_KEY, requests_per_minute=None)
        standin.inject(Fault(status=429, retry_after=5), request=1)
        with pytest.raises(HelpCrunchRateLimitError):
            search(rate_limit_wait=1.0)

    @pytest.mark.parametrize("fault", [Fault(status=502), Fault(status=503), Fault(drop=True)])
    def test_5xx_and_dropped_connections_are_retried(self, make_helpcrunch_standin, fault):
        standin = make_helpcrunch_standin(chats=5, api_key=API_KEY, requests_per_minute=None)
        standin.inject(fault, request=1)
        found, stats = search()
        assert len(found) == 5
        assert stats.sent == 2

    def test_a_hang_past_the_timeout_is_retried(self, make_helpcrunch_standin):
        standin = make_helpcrunch_standin(chats=5, api_key=API_KEY, requests_per_minute=None)
        standin.inject(Fault(hang=3.0), request=1)
        started = time.monotonic()
        found, stats = search(timeout=1)
        assert len(found) == 5
        assert stats.sent == 2
        assert time.monotonic() - started < 3.0  # the first attempt was cut at its 1 s deadline

    def test_5xx_past_the_retries_is_a_typed_error(self, make_helpcrunch_standin):
        standin = make_helpcrunch_standin(chats=5, api_key=API_KEY, requests_per_minute=None)
        standin.inject(Fault(status=500), request=1)
        standin.inject(Fault(status=500), request=2)
        with pytest.raises(HelpCrunchAPIError, match="500"):
            search(max_retries=1)

    def test_an_echoed_key_is_scrubbed(self, make_helpcrunch_standin, caplog):
        standin = make_helpcrunch_standin(chats=5, api_key=API_KEY, requests_per_minute=None)
        standin.inject(Fault(status=401, echo_auth=True), request=1)
        with pytest.raises(HelpCrunchAuthError) as caught:
            search()
        assert API_KEY not in str(caught.value)
        assert API_KEY not in repr(caught.value.errors)
        assert API_KEY not in caplog.text

    def test_the_pace_holds_under_a_sliding_window(self, make_helpcrunch_standin):
        # 20 requests per 2 s on both sides, a window scaled down from the account's minute
        from tests.helpers import hook_class, max_in_any_window

        standin = make_helpcrunch_standin(chats=0, api_key=API_KEY, requests_per_minute=20, window=2.0)

        async def run():
            client = await hook_class(window=2.0)(requests_per_minute=20).aget_client()
            try:
                for _ in range(30):
                    await client.request("GET", "/chats", params={"limit": 1})
            finally:
                await client.aclose()

        asyncio.run(run())
        arrivals = [r.time for r in standin.requests]
        assert [r.status for r in standin.requests] == [200] * 30
        assert max_in_any_window(arrivals, 2.0) <= 20


class TestHostileServers:
    @pytest.mark.parametrize("status", [301, 302, 307, 308])
    def test_a_redirect_is_not_followed(self, point_at, status):
        with ScriptedServer(lambda r: [answer(200, PAGE)], host="localhost") as other:
            target = f"http://localhost:{other.port}/v1/chats/search"
            with ScriptedServer(lambda r: [answer(status, b"", {"Location": target})]) as api:
                point_at(f"{api.url}/v1")
                with pytest.raises(HelpCrunchAPIError, match=rf"{status}.*redirect to localhost"):
                    search()
                assert len(api.received) == 1
            assert other.received == []

    def test_a_trickled_body_is_cut_off_at_the_timeout(self, point_at):
        body = json.dumps(PAGE).encode()
        head = answer(200, body)[: -len(body)]

        def trickle(_):
            yield head
            for byte in body:
                yield bytes([byte])
                yield 0.5

        with ScriptedServer(trickle) as api:
            point_at(f"{api.url}/v1", timeout=1)
            started = time.monotonic()
            with pytest.raises(HelpCrunchConnectionError, match=r"after 1 attempt.*Timeout"):
                search(max_retries=0)
            took = time.monotonic() - started
        assert took < 4.0  # the deadline and slack, not the 30 s the trickle would take

    def test_a_body_over_the_cap_is_a_typed_error(self, point_at):
        def endless(_):
            yield b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
            for _ in range(MAX_RESPONSE_BYTES // 65536 + 2):
                yield b" " * 65536

        with ScriptedServer(endless) as api:
            point_at(f"{api.url}/v1")
            with pytest.raises(HelpCrunchAPIError, match="was not read"):
                search()
            assert len(api.received) == 1

    def test_a_declared_length_over_the_cap_is_not_read(self, point_at):
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {MAX_RESPONSE_BYTES + 1}\r\n\r\n".encode()
        with ScriptedServer(lambda r: [head, 30.0]) as api:
            point_at(f"{api.url}/v1", timeout=20)
            started = time.monotonic()
            with pytest.raises(HelpCrunchAPIError, match="4,194,305 bytes"):
                search()
            assert time.monotonic() - started < 10

    @pytest.mark.parametrize(
        ("body", "said"),
        [(b"<html>oops</html>", "not JSON"), (b"[1, 2]", "not an object"), (b"", "an empty body")],
    )
    def test_a_2xx_that_is_not_a_json_object_is_a_typed_error(self, point_at, body, said):
        with ScriptedServer(lambda r: [answer(200, body)]) as api:
            point_at(f"{api.url}/v1")
            with pytest.raises(HelpCrunchAPIError, match=said):
                search()

    def test_an_echoed_key_in_a_body_is_scrubbed(self, point_at):
        echo = {"errors": [{"code": "bad_request", "message": f"token {API_KEY} is not allowed here"}]}
        with ScriptedServer(lambda r: [answer(400, echo)]) as api:
            point_at(f"{api.url}/v1")
            with pytest.raises(HelpCrunchAPIError) as caught:
                search()
        assert API_KEY not in str(caught.value)
        assert "***" in str(caught.value)

    def test_the_event_loop_runs_on_while_a_server_hangs(self, point_at):
        with ScriptedServer(lambda r: [2.0, answer(200, PAGE)]) as api:
            point_at(f"{api.url}/v1", timeout=5)

            async def run():
                ticks = 0

                async def tick():
                    nonlocal ticks
                    while True:
                        await asyncio.sleep(0.1)
                        ticks += 1

                ticker = asyncio.create_task(tick())
                client = await HelpCrunchHook(requests_per_minute=6000).aget_client()
                try:
                    found = [chat["id"] async for chat in client.search_chats([])]
                finally:
                    await client.aclose()
                    ticker.cancel()
                return found, ticks

            found, ticks = asyncio.run(run())
        assert found == [7]
        assert ticks >= 15  # 2 s of the server's silence: the loop ran every 0.1 s through it


def test_requests_take_their_place_in_the_shared_window(make_helpcrunch_standin, redis_server, monkeypatch):
    import redis

    standin = make_helpcrunch_standin(chats=5, api_key=API_KEY, requests_per_minute=None)
    monkeypatch.setenv(
        "AIRFLOW_CONN_HELPCRUNCH_DEFAULT", standin.connection_json(redis_conn_id="redis_pacer")
    )

    async def run():
        client = await HelpCrunchHook(requests_per_minute=600).aget_client()
        try:
            assert client.rate_limiter.is_shared
            return [chat["id"] async for chat in client.search_chats([])]
        finally:
            await client.aclose()

    assert len(asyncio.run(run())) == 5
    keys = redis.Redis(host="127.0.0.1", port=redis_server.port).keys("helpcrunch:pacer:*:slots")
    assert len(keys) == 1  # the account's window: this request took a slot in it
