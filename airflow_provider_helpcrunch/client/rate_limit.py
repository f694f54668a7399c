"""Client-side pacing under HelpCrunch's per-account request limit."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from airflow_provider_helpcrunch.client.shared_window import SharedWindow

_log = logging.getLogger(__name__)
#: the Redis slot held by the request of the current asyncio task (each task has its own context).
_HELD_ASYNC: ContextVar[str | None] = ContextVar("helpcrunch_held_slot", default=None)
#: how often a caller waiting for its turn looks again, in seconds.
_LOOK_AGAIN = 0.05


def rate_per_minute(count: int, seconds: float) -> float:
    """Events per minute, over the intervals between them: ``count`` events span ``count - 1`` intervals."""
    return (count - 1) / seconds * 60 if count > 1 and seconds > 0 else 0.0


def wait_for(
    seconds: float, *, sleep: Callable[[float], object] | None, cancel: threading.Event | None
) -> None:
    """
    Wait ``seconds``.

    Through ``sleep`` when one is injected (a virtual clock in tests), otherwise in real time, cut short as
    soon as ``cancel`` is set.
    """
    if sleep is not None:
        sleep(seconds)
    elif cancel is not None:
        cancel.wait(seconds)
    else:
        time.sleep(seconds)


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

    Callers are served **first come, first served**, so requests leave in the order they were queued.

    :param max_requests: requests allowed in any ``window``; at least 1.
    :param window: the window's length in seconds.
    :param clock: a monotonic clock (injectable for tests).
    :param sleep: how to wait (injectable for tests); by default real time, cut short by a cancel.
    :param shared: the account's window in Redis, shared with every other hook that uses the account. Each
        request then holds a slot there too. If Redis fails, the pacer says so once and paces locally.
    :param log: where to say that (default: this module's logger).
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
        sleep: Callable[[float], object] | None = None,
        asleep: Callable[[float], Awaitable[object]] | None = None,
        shared: SharedWindow | None = None,
        log: Any = None,
    ) -> None:
        if max_requests < 1:
            raise ValueError(f"max_requests must be at least 1, got {max_requests!r}")
        if window <= 0:
            raise ValueError(f"window must be positive, got {window!r}")
        self.max_requests = max_requests
        self.window = float(window)
        self._clock = clock
        self._sleep = sleep
        self._asleep = asleep or asyncio.sleep
        self._lock = threading.Condition()
        self._completed: deque[float] = deque()  # completion times still inside the window
        self._in_flight = 0
        self._next_start = float("-inf")
        self._paused_until = float("-inf")
        self._rate = float(max_requests)
        # first come, first served: tickets in the order callers arrived, and the one whose turn it is
        self._next_ticket = 0
        self._serving = 0
        self._abandoned: set[int] = set()
        self._shared = shared
        self._log = log or _log
        self._held = threading.local()  # the Redis slot each thread's request holds

    @property
    def rate(self) -> float:
        """The current pace, in requests per ``window`` (at most ``max_requests``)."""
        return self._rate

    @property
    def is_shared(self) -> bool:
        """Whether requests also take their slots in the account's window in Redis (until Redis fails)."""
        return self._shared is not None

    @property
    def interval(self) -> float:
        """Seconds between two starts at the current pace."""
        return self.window / self._rate

    def take_ticket(self) -> int:
        """
        Take a place in the queue.

        For a caller that must keep its order before it calls :meth:`acquire` (e.g. a dispatcher handing work
        to threads). Pass it to :meth:`acquire`, or give it back with
        :meth:`abandon`: the callers behind it wait for it.
        """
        with self._lock:
            ticket = self._next_ticket
            self._next_ticket += 1
            return ticket

    def abandon(self, ticket: int) -> None:
        """Give back a ticket that will not be used (a no-op for one already served)."""
        with self._lock:
            if ticket == self._serving:
                self._advance()
            elif ticket > self._serving:
                self._abandoned.add(ticket)

    def _advance(self) -> None:
        """Serve the next ticket (skipping abandoned ones) and wake the waiters. Call with the lock held."""
        self._serving += 1
        while self._serving in self._abandoned:
            self._abandoned.discard(self._serving)
            self._serving += 1
        self._lock.notify_all()

    def acquire(self, *, ticket: int | None = None, cancel: threading.Event | None = None) -> bool:
        """
        Wait for this caller's turn and a free slot, then count the request as started.

        Pair with :meth:`release`. Callers are served first come, first served (or in ticket order).

        :param ticket: a place taken earlier with :meth:`take_ticket`; by default one is taken now.
        :param cancel: when set, stop waiting: returns ``False`` and no slot is taken.
        :return: ``True`` once the request may start.
        """
        if ticket is None:
            ticket = self.take_ticket()
        served = False
        try:
            while True:
                with self._lock:
                    if cancel is not None and cancel.is_set():
                        return False
                    if ticket != self._serving:
                        # a cancel is not notified: look again now and then
                        self._lock.wait(timeout=None if cancel is None else 0.05)
                        continue
                    now = self._clock()
                    wait = self._local_wait(now)
                    if wait is None:
                        # Every slot is held by a request still under way: wait for one to finish.
                        self._lock.wait(timeout=self.window if cancel is None else 0.05)
                        continue
                    if wait <= 0 and self._shared is None:
                        self._start(now)
                        served = True
                        return True
                if wait <= 0:  # this process may start: the account's window in Redis must agree
                    wait = self._shared_wait()
                    if wait <= 0:
                        with self._lock:
                            self._start(self._clock())
                        served = True
                        return True
                wait_for(wait, sleep=self._sleep, cancel=cancel)
        finally:
            if not served:
                self.abandon(ticket)

    async def aacquire(self, *, cancel: asyncio.Event | None = None) -> bool:
        """
        Wait for this caller's turn and a free slot as :meth:`acquire` does, without blocking the event loop.

        The lock is held only to read and count, never across a wait. Pair with :meth:`arelease`.

        :param cancel: when set, stop waiting: returns ``False`` and no slot is taken.
        """
        ticket = self.take_ticket()
        served = False
        try:
            while cancel is None or not cancel.is_set():
                wait = self._try_start(ticket)
                if wait == 0.0:  # this process may start: the account's window in Redis must agree
                    wait = await self._ashared_wait()
                    if wait <= 0:
                        with self._lock:
                            self._start(self._clock())
                        wait = -1.0
                if wait < 0:
                    served = True
                    return True
                await self._asleep(wait)
            return False
        finally:
            if not served:
                self.abandon(ticket)

    def _try_start(self, ticket: int) -> float:
        """
        Start the request of ``ticket`` now if it may (``-1.0``: started), else return the seconds to wait.

        ``0.0`` means that this process may start, but the shared window in Redis must agree first.
        """
        with self._lock:
            if ticket != self._serving:
                return _LOOK_AGAIN
            now = self._clock()
            wait = self._local_wait(now)
            if wait is None:  # every slot is held by a request still under way
                return _LOOK_AGAIN
            if wait > 0:
                return wait
            if self._shared is not None:
                return 0.0
            self._start(now)
            return -1.0

    async def _ashared_wait(self) -> float:
        """Take a slot in Redis for this task's request, as :meth:`_shared_wait` does, asynchronously."""
        shared = self._shared
        if shared is None:
            return 0.0
        token = shared.new_token()
        try:
            wait = await shared.atry_acquire(token)
        except Exception as err:
            self._lose_shared(err)
            return 0.0
        if wait <= 0:
            _HELD_ASYNC.set(token)
        return min(wait, self.window)

    async def arelease(self) -> None:
        """Count the request started by :meth:`aacquire` as finished, as :meth:`release` does."""
        with self._lock:
            self._in_flight -= 1
            self._completed.append(self._clock())
            self._lock.notify_all()
        token = _HELD_ASYNC.get()
        if token is not None:
            _HELD_ASYNC.set(None)
            shared = self._shared
            if shared is not None:
                try:
                    await shared.arelease(token)
                except Exception as err:  # its lease frees it in time
                    self._lose_shared(err)

    async def apause(self, seconds: float) -> None:
        """Hold every caller for ``seconds`` as :meth:`pause` does, without blocking the event loop."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)
        shared = self._shared
        if shared is not None:
            try:
                await shared.apause(seconds)
            except Exception as err:
                self._lose_shared(err)

    def _local_wait(self, now: float) -> float | None:
        """Seconds until this process may start a request; ``None`` while every slot is under way."""
        cutoff = now - self.window
        while self._completed and self._completed[0] <= cutoff:
            self._completed.popleft()
        held = self._in_flight + len(self._completed)
        if held >= self.max_requests and not self._completed:
            return None
        wait = max(self._next_start - now, self._paused_until - now)
        if held >= self.max_requests:
            wait = max(wait, self._completed[0] + self.window - now)
        return wait

    def _start(self, now: float) -> None:
        """Count a request as started and serve the next ticket. Call with the lock held."""
        self._in_flight += 1
        # Keep the cadence of the previous start unless we fell more than one interval behind (then start
        # afresh: idle time never turns into a burst).
        anchor = self._next_start if now - self._next_start < self.interval else now
        self._next_start = anchor + self.interval
        self._advance()

    def _shared_wait(self) -> float:
        """Take a slot in Redis for this thread's request: 0, or the seconds to wait first."""
        shared = self._shared
        if shared is None:
            return 0.0
        token = shared.new_token()
        try:
            wait = shared.try_acquire(token)
        except Exception as err:
            self._lose_shared(err)
            return 0.0
        if wait <= 0:
            self._held.token = token
        return min(wait, self.window)

    def _lose_shared(self, err: Exception) -> None:
        """Redis failed: pace locally from now on, and say so once."""
        with self._lock:
            if self._shared is None:
                return
            self._shared = None
        self._log.warning(
            "The shared HelpCrunch request window in Redis failed (%s); this hook paces on its own "
            "from now on (429s are still waited out).",
            type(err).__name__,
        )

    def release(self) -> None:
        """Count the request started by :meth:`acquire` as finished (whatever its outcome)."""
        with self._lock:
            self._in_flight -= 1
            self._completed.append(self._clock())
            self._lock.notify_all()
        token = getattr(self._held, "token", None)
        if token is not None:
            self._held.token = None
            shared = self._shared
            if shared is not None:
                try:
                    shared.release(token)
                except Exception as err:  # its lease frees it in time
                    self._lose_shared(err)

    def slow_down(self) -> None:
        """Cut the pace: the server said 429."""
        with self._lock:
            floor = self.max_requests * self.min_rate_fraction
            self._rate = max(floor, self._rate * self.decrease_factor)

    def speed_up(self) -> None:
        """Win back some of the pace lost to 429s: a request went through."""
        if self._rate >= self.max_requests:
            return
        with self._lock:
            step = self.max_requests * (1 - self.min_rate_fraction) / self.recovery_requests
            rate = self._rate + step
            # snap to the limit rather than creep up to it by float steps
            self._rate = float(self.max_requests) if rate >= self.max_requests - 1e-6 else rate

    def pause(self, seconds: float) -> None:
        """Hold every caller (every hook's, with a shared window) for ``seconds`` (a ``Retry-After``)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)
        shared = self._shared
        if shared is not None:
            try:
                shared.pause(seconds)
            except Exception as err:
                self._lose_shared(err)
