"""The account's window in a real Redis server: its rules on a virtual clock, then several processes."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from airflow_provider_helpcrunch.client.rate_limit import rate_per_minute
from airflow_provider_helpcrunch.client.shared_window import REDIS_TIMEOUT, SharedWindow, account_key
from airflow_provider_helpcrunch.hooks.connection import redis_client
from airflow_provider_helpcrunch.hooks.helpcrunch import HelpCrunchHook
from tests.helpers import API_KEY, REPO, max_in_any_window

pytestmark = pytest.mark.integration


class VirtualNow:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def window(redis_server):
    clock = VirtualNow()
    shared = SharedWindow(
        redis_client("redis_pacer"), "helpcrunch:test", limit=5, window=10.0, lease=15.0, now=clock
    )
    shared.clock = clock
    return shared


def take(shared, token):
    return shared.try_acquire(token)


class TestWindowRules:
    def test_starts_are_spaced_and_the_limit_holds_until_a_window_after_completion(self, window):
        clock = window.clock
        for n in range(5):
            assert take(window, f"r{n}") == 0
            window.release(f"r{n}")
            assert take(window, "early") == pytest.approx(2.0)  # window / limit apart
            clock.now += 2.0
        # five slots, each held until 10 s after it completed: the first frees at its completion + 10
        clock.now = 1_000_000.0 + 9.9
        assert take(window, "sixth") == pytest.approx(0.1, abs=1e-6)
        clock.now = 1_000_000.0 + 10.0
        assert take(window, "sixth") == 0

    def test_an_unreleased_slot_is_held_for_its_lease_only(self, window):
        clock = window.clock
        for n in range(5):
            assert take(window, f"dead{n}") == 0  # a worker killed before it released any
            clock.now += 2.0
        clock.now = 1_000_000.0 + 14.9
        assert take(window, "next") > 0
        clock.now = 1_000_000.0 + 15.0  # the first lease ran out
        assert take(window, "next") == 0

    def test_a_pause_holds_every_start(self, window):
        clock = window.clock
        window.pause(30)
        assert take(window, "a") == pytest.approx(30)
        clock.now += 30
        assert take(window, "a") == 0

    def test_the_key_names_no_secret(self):
        key = account_key(API_KEY, "https://api.helpcrunch.com/v1")
        assert API_KEY not in key
        assert key != account_key(API_KEY, "https://eu.example.com/v1")
        assert key != account_key("another-key", "https://api.helpcrunch.com/v1")


WORKER = """
import json, os, sys
from tests.helpers import hook_class
hook = hook_class(window=WINDOW)(requests_per_minute=LIMIT, redis_conn_id="redis_pacer", retry_backoff=0.05)
for chat_id in json.loads(sys.argv[1]):
    hook.mark_chat_read(chat_id)
print("done", flush=True)
"""


def workers(standin, redis_server, chat_lists, *, limit, window):
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "AIRFLOW_CONN_HELPCRUNCH_DEFAULT": standin.connection_json(),
        "AIRFLOW_CONN_REDIS_PACER": redis_server.connection_json(),
    }
    code = WORKER.replace("LIMIT", str(limit)).replace("WINDOW", str(window))
    return [
        subprocess.Popen(
            [sys.executable, "-c", code, json.dumps(ids)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for ids in chat_lists
    ]


def test_four_processes_share_one_window(make_helpcrunch_standin, redis_server):
    # the real limit scaled down in time on both sides: 20 requests per 2 s window
    standin = make_helpcrunch_standin(chats=0, api_key=API_KEY, requests_per_minute=20, window=2.0)
    ids = [standin.add_chat(id=5200 + n, readByAgent=False)["id"] for n in range(120)]
    processes = workers(standin, redis_server, [ids[n::4] for n in range(4)], limit=20, window=2.0)
    for process in processes:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err.decode()[-2000:]
    seen = standin.requests
    arrivals = [r.time for r in seen]
    statuses = [r.status for r in seen]
    assert statuses.count(429) == 0
    assert all(standin.chat(i)["readByAgent"] for i in ids)  # nothing lost
    assert max_in_any_window(arrivals, 2.0) <= 20
    rate = rate_per_minute(len(arrivals), arrivals[-1] - arrivals[0]) / 60 * 2.0
    print(f"\nfour processes through Redis: {rate:.2f} requests per 2 s window, {rate / 20:.1%} of the limit")
    # near the limit: each process pacing alone at a quarter would also pass the checks above. The margin
    # is for a loaded 2-core machine running 4 workers and the stand-in (measured: 99.9%).
    assert rate >= 0.9 * 20


KILLED = """
import sys, time
from airflow_provider_helpcrunch.client.shared_window import SharedWindow
from airflow_provider_helpcrunch.hooks.connection import redis_client
shared = SharedWindow(redis_client("redis_pacer"), sys.argv[1], limit=4, window=1.0, lease=3.0)
taken, deadline = 0, time.monotonic() + 30
while taken < 4 and time.monotonic() < deadline:
    if shared.try_acquire(f"held{taken}") == 0:
        taken += 1
    else:
        time.sleep(0.05)
print("holding" if taken == 4 else "could not take four slots", flush=True)
time.sleep(600)
"""


def test_a_killed_process_gives_its_slots_back(redis_server, monkeypatch):
    env = {**os.environ, "PYTHONPATH": str(REPO), "AIRFLOW_CONN_REDIS_PACER": redis_server.connection_json()}
    holder = subprocess.Popen(
        [sys.executable, "-c", KILLED, "helpcrunch:killed"], env=env, stdout=subprocess.PIPE
    )
    lines = [holder.stdout.readline().strip() for _ in range(1)]
    while lines[-1] != b"holding" and len(lines) < 50:  # Airflow 2 logs its connection look-up first
        lines.append(holder.stdout.readline().strip())
    assert lines[-1] == b"holding", lines
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    killed_at = time.monotonic()
    shared = SharedWindow(redis_client("redis_pacer"), "helpcrunch:killed", limit=4, window=1.0, lease=3.0)
    assert shared.try_acquire("mine") > 0  # all four still held
    # the slots come back once their lease (3 s) runs out: a few seconds of slack for a loaded machine
    deadline = killed_at + shared.lease + 5
    taken = 0
    while taken < 4:  # the whole budget comes back
        assert time.monotonic() < deadline, f"only {taken} of the killed process's 4 slots came back"
        if shared.try_acquire(f"mine{taken}") == 0:
            taken += 1
        else:
            time.sleep(0.05)


def test_redis_stopped_mid_run_falls_back_and_loses_nothing(
    make_helpcrunch_standin, redis_server, caplog, capsys
):
    import logging

    standin = make_helpcrunch_standin(chats=20, api_key=API_KEY, requests_per_minute=None)
    ids = list(standin.chats)
    hook = HelpCrunchHook(requests_per_minute=6000, redis_conn_id="redis_pacer", retry_backoff=0.05)
    caplog.set_level(logging.WARNING)
    for chat_id in ids[:10]:
        hook.mark_chat_read(chat_id)
    redis_server.stop()
    for chat_id in ids[10:]:
        hook.mark_chat_read(chat_id)
    assert all(standin.chat(i)["readByAgent"] for i in ids)
    # said once, in whichever sink this Airflow logs to (stdlib logging on 2, structlog to stdout on 3)
    said = [sink.count("request window in Redis failed") for sink in (caplog.text, capsys.readouterr().out)]
    assert max(said) == 1


@pytest.mark.parametrize(
    ("redis_conn_id", "said"),
    [("redis_unreachable", "paces on its own"), ("no_such_redis", "'no_such_redis' cannot be used")],
)
def test_an_unusable_redis_from_the_start_falls_back(
    make_helpcrunch_standin, monkeypatch, caplog, capsys, redis_conn_id, said
):
    import logging

    monkeypatch.setenv(
        "AIRFLOW_CONN_REDIS_UNREACHABLE", '{"conn_type": "redis", "host": "127.0.0.1", "port": 9}'
    )
    standin = make_helpcrunch_standin(chats=3, api_key=API_KEY, requests_per_minute=None)
    hook = HelpCrunchHook(requests_per_minute=6000, redis_conn_id=redis_conn_id)
    caplog.set_level(logging.WARNING)
    for chat_id in standin.chats:
        hook.mark_chat_read(chat_id)
    assert all(chat["readByAgent"] for chat in standin.chats.values())
    assert said in caplog.text + capsys.readouterr().out


class SilentListener:
    """A TCP listener on loopback that takes connections and never answers: a hung Redis."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = self._socket.accept()
                self._held.append(connection)

    def close(self) -> None:
        self._socket.close()
        for connection in self._held:
            connection.close()


def marks_and_falls_back(standin, hook, ids, before_falling_back) -> float:
    """Mark ``ids[0]``, call ``before_falling_back``, mark the rest: the seconds the rest took."""
    hook.mark_chat_read(ids[0])
    before_falling_back()
    started = time.monotonic()
    for chat_id in ids[1:]:
        hook.mark_chat_read(chat_id)
    took = time.monotonic() - started
    assert all(standin.chat(i)["readByAgent"] for i in ids)  # nothing lost
    return took


# The bound is REDIS_TIMEOUT for the one command that finds Redis gone; the slack is for a loaded machine.
# Before each command's own retries were turned off, redis-py retried it 10 times: about 60 s.
FALLBACK_BOUND = REDIS_TIMEOUT + 5


def test_a_redis_frozen_mid_run_falls_back_within_the_documented_bound(
    make_helpcrunch_standin, redis_server, caplog, capsys
):
    standin = make_helpcrunch_standin(chats=0, api_key=API_KEY, requests_per_minute=None)
    ids = [standin.add_chat(id=5200 + n, readByAgent=False)["id"] for n in range(6)]
    hook = HelpCrunchHook(requests_per_minute=6000, redis_conn_id="redis_pacer")
    caplog.set_level(logging.WARNING)
    try:
        took = marks_and_falls_back(standin, hook, ids, redis_server.freeze)
    finally:
        redis_server.thaw()
    said = [sink.count("request window in Redis failed") for sink in (caplog.text, capsys.readouterr().out)]
    with capsys.disabled():
        print(f"\nRedis frozen (SIGSTOP) mid-run: fell back to local pacing in {took:.1f} s")
    assert took < FALLBACK_BOUND
    assert max(said) == 1


def test_a_redis_that_never_answers_falls_back_within_the_documented_bound(
    make_helpcrunch_standin, monkeypatch, caplog, capsys
):
    listener = SilentListener()
    monkeypatch.setenv(
        "AIRFLOW_CONN_REDIS_SILENT",
        json.dumps({"conn_type": "redis", "host": "127.0.0.1", "port": listener.port}),
    )
    standin = make_helpcrunch_standin(chats=0, api_key=API_KEY, requests_per_minute=None)
    ids = [standin.add_chat(id=5200 + n, readByAgent=False)["id"] for n in range(4)]
    hook = HelpCrunchHook(requests_per_minute=6000, redis_conn_id="redis_silent")
    caplog.set_level(logging.WARNING)
    started = time.monotonic()  # the first request already finds Redis silent
    try:
        marks_and_falls_back(standin, hook, ids, lambda: None)
        took = time.monotonic() - started
    finally:
        listener.close()
    logged = caplog.text + capsys.readouterr().out
    with capsys.disabled():
        print(f"\nRedis that never answers: fell back to local pacing in {took:.1f} s")
    assert took < FALLBACK_BOUND
    assert "request window in Redis failed" in logged


def test_every_spelling_of_one_base_url_shares_one_window(make_helpcrunch_standin, redis_server, monkeypatch):
    standin = make_helpcrunch_standin(chats=0, api_key=API_KEY, requests_per_minute=None)
    ids = [standin.add_chat(id=5200 + n, readByAgent=False)["id"] for n in range(3)]
    port = standin.port
    spellings = [f"http://LOCALHOST:{port}/v1", f"http://localhost:{port}/v1/", f"HTTP://Localhost:{port}/v1"]
    hooks = []
    for n, host in enumerate(spellings):
        conn = {"conn_type": "helpcrunch", "host": host, "password": API_KEY}
        monkeypatch.setenv(f"AIRFLOW_CONN_HC_SPELLING_{n}", json.dumps(conn))
        hooks.append(
            HelpCrunchHook(f"hc_spelling_{n}", requests_per_minute=6000, redis_conn_id="redis_pacer")
        )
    assert {hook.settings.base_url for hook in hooks} == {f"http://localhost:{port}/v1"}
    for hook, chat_id in zip(hooks, ids, strict=True):
        hook.mark_chat_read(chat_id)
    client = redis_client("redis_pacer")
    slots = [key for key in client.keys("helpcrunch:pacer:*") if key.endswith(b":slots")]
    assert len(slots) == 1  # one account, one window: every hook's request took its slot there
    assert client.zcard(slots[0]) == 3


def test_the_task_log_says_the_budget_is_shared_through_redis(
    make_helpcrunch_standin, redis_server, caplog, capsys
):
    from airflow_provider_helpcrunch.operators.helpcrunch import MarkChatReadOperator

    standin = make_helpcrunch_standin(chats=3, api_key=API_KEY, requests_per_minute=None)
    caplog.set_level(logging.INFO)
    MarkChatReadOperator(
        task_id="mark", chat_ids=list(standin.chats), requests_per_minute=6000, redis_conn_id="redis_pacer"
    ).execute({})
    logged = caplog.text + capsys.readouterr().out
    shared = "budget of 6000 requests/min, shared through Redis connection 'redis_pacer'"
    marking = [line for line in logged.splitlines() if "Marking 3 chat(s)" in line]
    done = [line for line in logged.splitlines() if "Done: " in line]
    assert len(marking) >= 1
    assert all(shared in line for line in marking), marking
    assert len(done) >= 1
    assert all(shared in line for line in done), done
    assert "at up to 6000 requests/min" not in logged
