from __future__ import annotations

import itertools
import threading
import time

import pytest

from airflow_provider_helpcrunch.client.rate_limit import SlidingWindowRateLimiter
from tests.helpers import max_in_any_window


def run(limiter: SlidingWindowRateLimiter, clock, count: int, duration: float = 0.0) -> list[float]:
    """Send ``count`` sequential requests that each take ``duration``; return their start times."""
    starts = []
    for _ in range(count):
        limiter.acquire()
        starts.append(clock.now)
        clock.now += duration
        limiter.release()
    return starts


class TestPacing:
    def test_1000_requests_at_120_per_minute_take_about_8_minutes(self, clock):
        limiter = SlidingWindowRateLimiter(120, clock=clock, sleep=clock.sleep)
        starts = run(limiter, clock, 1000)
        elapsed = starts[-1] - starts[0]
        # evenly spaced at 0.5 s: 999 intervals, 499.5 s, about 8.3 minutes; not 10 minutes, no burst
        assert elapsed == pytest.approx(499.5, abs=0.01)
        assert max_in_any_window(starts, 60.0) <= 120
        assert min(b - a for a, b in itertools.pairwise(starts)) >= 0.5 - 1e-9

    @pytest.mark.parametrize("duration", [0.05, 0.3, 1.0, 2.5])
    def test_never_more_than_the_limit_whatever_the_latency(self, clock, duration):
        limiter = SlidingWindowRateLimiter(120, clock=clock, sleep=clock.sleep)
        starts = run(limiter, clock, 400, duration)
        # the server sees a request between its start and its end: check both ends
        assert max_in_any_window(starts, 60.0) <= 120
        assert max_in_any_window([s + duration for s in starts], 60.0) <= 120

    def test_window_counts_a_request_until_a_window_after_it_completes(self, clock):
        limiter = SlidingWindowRateLimiter(3, window=10.0, clock=clock, sleep=clock.sleep)
        starts = run(limiter, clock, 4, duration=2.0)
        # starts at 0, 3.33+, 6.67+ (spacing); the 4th waits for the 1st's end (2.0) + 10 s
        assert starts[3] - starts[0] >= 12.0 - 1e-9

    def test_no_burst_after_idle_time(self, clock):
        limiter = SlidingWindowRateLimiter(120, clock=clock, sleep=clock.sleep)
        run(limiter, clock, 5)
        clock.now += 300  # idle for five minutes
        starts = run(limiter, clock, 10)
        assert min(b - a for a, b in itertools.pairwise(starts)) >= 0.5 - 1e-9

    def test_cadence_does_not_drift_with_late_wakeups(self, clock):
        limiter = SlidingWindowRateLimiter(120, clock=clock, sleep=lambda s: clock.sleep(s + 0.002))
        starts = run(limiter, clock, 241)
        # 2 ms oversleep on every wait is absorbed: 240 intervals still take 120 s, not 120.48 s
        assert starts[-1] - starts[0] < 120.1


class TestAdaptive:
    def test_slow_down_cuts_the_pace_to_a_floor(self, clock):
        limiter = SlidingWindowRateLimiter(120, clock=clock, sleep=clock.sleep)
        limiter.slow_down()
        assert limiter.rate == pytest.approx(90)
        assert limiter.interval == pytest.approx(60 / 90)
        for _ in range(50):
            limiter.slow_down()
        assert limiter.rate == pytest.approx(12)

    def test_speed_up_wins_the_pace_back(self, clock):
        limiter = SlidingWindowRateLimiter(120, clock=clock, sleep=clock.sleep)
        for _ in range(50):
            limiter.slow_down()
        for _ in range(limiter.recovery_requests):
            limiter.speed_up()
        assert limiter.rate == 120

    def test_pause_holds_every_caller(self, clock):
        limiter = SlidingWindowRateLimiter(120, clock=clock, sleep=clock.sleep)
        run(limiter, clock, 1)
        limiter.pause(30)
        paused_at = clock.now
        starts = run(limiter, clock, 1)
        assert starts[0] >= paused_at + 30


class TestThreads:
    def test_concurrent_callers_share_the_limit(self):
        limiter = SlidingWindowRateLimiter(20, window=0.5)
        starts: list[float] = []
        lock = threading.Lock()

        def worker() -> None:
            for _ in range(15):
                limiter.acquire()
                with lock:
                    starts.append(time.monotonic())
                time.sleep(0.005)
                limiter.release()

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert len(starts) == 60
        assert max_in_any_window(starts, 0.5) <= 20


@pytest.mark.parametrize(("args", "kwargs"), [((0,), {}), ((10,), {"window": 0})])
def test_bad_arguments(args, kwargs):
    with pytest.raises(ValueError, match="must be"):
        SlidingWindowRateLimiter(*args, **kwargs)


class TestFirstComeFirstServed:
    def test_tickets_are_served_in_order_whoever_arrives_first(self):
        limiter = SlidingWindowRateLimiter(6000, window=60.0)  # 10 ms apart
        tickets = [limiter.take_ticket() for _ in range(8)]
        served: list[int] = []
        lock = threading.Lock()

        def go(ticket: int) -> None:
            assert limiter.acquire(ticket=ticket)
            with lock:
                served.append(ticket)
            limiter.release()

        threads = [threading.Thread(target=go, args=(t,)) for t in reversed(tickets)]  # last ticket first
        for thread in threads:
            thread.start()
            time.sleep(0.005)
        for thread in threads:
            thread.join(timeout=10)
        assert served == tickets

    def test_an_abandoned_ticket_does_not_hold_the_queue(self):
        limiter = SlidingWindowRateLimiter(6000, window=60.0)
        first, second = limiter.take_ticket(), limiter.take_ticket()
        limiter.abandon(first)
        assert limiter.acquire(ticket=second)
        limiter.release()
        assert limiter.acquire()  # a fresh caller is served too
        limiter.release()

    def test_a_cancel_releases_every_waiter_without_a_slot(self):
        limiter = SlidingWindowRateLimiter(1, window=60.0)  # one request a minute: the rest must wait
        assert limiter.acquire()
        limiter.release()
        cancel = threading.Event()
        results: list[bool] = []
        threads = [
            threading.Thread(target=lambda: results.append(limiter.acquire(cancel=cancel))) for _ in range(3)
        ]
        for thread in threads:
            thread.start()
        time.sleep(0.2)
        assert results == []
        started = time.monotonic()
        cancel.set()
        for thread in threads:
            thread.join(timeout=5)
        assert results == [False, False, False]
        assert time.monotonic() - started < 10  # woken, not left to sleep out the 60 s window
