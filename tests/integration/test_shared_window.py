"""The account's window in a real Redis server: its rules on a virtual clock, then several processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from airflow_provider_helpcrunch.hooks.helpcrunch import HelpCrunchHook
from airflow_provider_helpcrunch.rate_limit import rate_per_minute
from airflow_provider_helpcrunch.shared_window import SharedWindow, account_key, redis_client
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
from airflow_provider_helpcrunch.hooks.helpcrunch import HelpCrunchHook
hook = HelpCrunchHook(requests_per_minute=LIMIT, redis_conn_id="redis_pacer", retry_backoff=0.05)
hook.rate_limit_window = WINDOW
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
    assert rate >= 0.98 * 20


KILLED = """
import sys, time
from airflow_provider_helpcrunch.shared_window import SharedWindow, redis_client
shared = SharedWindow(redis_client("redis_pacer"), sys.argv[1], limit=4, window=1.0, lease=3.0)
taken = 0
while taken < 4:
    if shared.try_acquire(f"held{taken}") == 0:
        taken += 1
    else:
        time.sleep(0.05)
print("holding", flush=True)
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
    while shared.try_acquire("mine") > 0:
        assert time.monotonic() - killed_at < 5, "the killed process's slots never came back"
        time.sleep(0.05)
    taken = 1
    while taken < 4:  # the whole budget is back
        if shared.try_acquire(f"mine{taken}") == 0:
            taken += 1
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
