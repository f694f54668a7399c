"""Client-side pacing under HelpCrunch's per-account request limit."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable


class SlidingWindowRateLimiter:
    """
    Keep one client under ``max_requests`` per sliding ``window`` seconds, evenly spaced.

    Two rules hold together:

    * **The window.** A request takes a slot when it starts and keeps it until ``window`` seconds after
      it *completes*. The server counts a request when it arrives, which is between those two moments,
      so no ``window``-long stretch of the server's clock ever sees more than ``max_requests`` of ours,
      whether it counts in a sliding window or per clock minute, and whatever the network latency.
    * **The spacing.** Starts are at least ``window / rate`` seconds apart, so the client runs at the
      limit without a burst at the start (a burst would collide with whatever else used the key in the
      last minute, such as the previous task of the same DAG).

    ``rate`` starts at ``max_requests``. Each 429 cuts it (``slow_down``); each success brings it back up
    step by step (``speed_up``), so clients that share a key settle near their fair share instead of
    thrashing. ``pause`` holds every caller until a moment, for a ``Retry-After``.

    :param max_requests: requests allowed in any ``window``; at least 1.
    :param window: the window's length in seconds.
    :param clock: a monotonic clock (injectable for tests).
    :param sleep: how to wait (injectable for tests).
    """

    #: how much one 429 cuts the rate, and the floor it never goes under (fractions of ``max_requests``).
    decrease_factor = 0.75
    min_rate_fraction = 0.1
    #: successes needed to win back the whole ``max_requests`` after a cut to the floor.
    recovery_requests = 60

    def __init__(
        self,
        max_requests: int,
        *,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        if max_requests < 1:
            raise ValueError(f"max_requests must be at least 1, got {max_requests!r}")
        if window <= 0:
            raise ValueError(f"window must be positive, got {window!r}")
        self.max_requests = max_requests
        self.window = float(window)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Condition()
        self._completed: deque[float] = deque()  # completion times still inside the window
        self._in_flight = 0
        self._next_start = float("-inf")
        self._paused_until = float("-inf")
        self._rate = float(max_requests)

    @property
    def rate(self) -> float:
        """The current pace, in requests per ``window`` (at most ``max_requests``)."""
        return self._rate

    @property
    def interval(self) -> float:
        """Seconds between two starts at the current pace."""
        return self.window / self._rate

    def acquire(self) -> None:
        """Wait until a request may start, then count it as started. Pair with :meth:`release`."""
        while True:
            with self._lock:
                now = self._clock()
                cutoff = now - self.window
                while self._completed and self._completed[0] <= cutoff:
                    self._completed.popleft()
                if self._in_flight + len(self._completed) >= self.max_requests and not self._completed:
                    # Every slot is held by a request still under way: wait for one to finish.
                    self._lock.wait(timeout=self.window)
                    continue
                wait = max(self._next_start - now, self._paused_until - now)
                if self._in_flight + len(self._completed) >= self.max_requests:
                    wait = max(wait, self._completed[0] + self.window - now)
                if wait <= 0:
                    self._in_flight += 1
                    # Keep the cadence of the previous start unless we fell more than one interval behind
                    # (then start afresh: idle time never turns into a burst).
                    anchor = self._next_start if now - self._next_start < self.interval else now
                    self._next_start = anchor + self.interval
                    return
            self._sleep(wait)

    def release(self) -> None:
        """Count the request started by :meth:`acquire` as finished (whatever its outcome)."""
        with self._lock:
            self._in_flight -= 1
            self._completed.append(self._clock())
            self._lock.notify_all()

    def slow_down(self) -> None:
        """The server said 429: cut the pace."""
        with self._lock:
            floor = self.max_requests * self.min_rate_fraction
            self._rate = max(floor, self._rate * self.decrease_factor)

    def speed_up(self) -> None:
        """A request went through: win back some of the pace lost to 429s."""
        if self._rate >= self.max_requests:
            return
        with self._lock:
            step = self.max_requests * (1 - self.min_rate_fraction) / self.recovery_requests
            rate = self._rate + step
            # snap to the limit rather than creep up to it by float steps
            self._rate = float(self.max_requests) if rate >= self.max_requests - 1e-6 else rate

    def pause(self, seconds: float) -> None:
        """Hold every caller for ``seconds`` from now (the server's ``Retry-After``)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)
