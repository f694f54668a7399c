"""
One HelpCrunch account's request window shared through Redis by every hook that uses it.

On every worker, in every task. Kept atomic by two Lua scripts, on Redis's own clock.

A request takes a slot when it starts: a member of a sorted set whose score is when the slot frees. While
the request is under way the score is a lease (start + the longest an attempt can take + the window), so a
worker killed in the middle gives its slots back; when the request completes, the score becomes completion
+ window. Starts are also spaced ``window / limit`` apart across all hooks. So no window-long stretch of
the server's clock sees more than ``limit`` requests, whatever the latency, as with the local pacer.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

#: seconds a Redis command may take before the pacer gives up on Redis and paces locally.
REDIS_TIMEOUT = 5.0

# Every script reads "now" from its first argument, or from Redis's TIME when that is empty (it is set only
# by tests on a virtual clock): one clock for every worker.
_NOW = """
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
"""

# KEYS: slots (sorted set), next (the next start allowed). ARGV: now, limit, window, interval, lease, token.
# Returns "0" when the slot is taken, else the seconds to wait before asking again.
_ACQUIRE = (
    _NOW
    + """
local limit, window = tonumber(ARGV[2]), tonumber(ARGV[3])
local interval, lease = tonumber(ARGV[4]), tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local wait = 0
if redis.call('ZCARD', KEYS[1]) >= limit then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  wait = tonumber(first[2]) - now
end
local nxt = tonumber(redis.call('GET', KEYS[2]) or '-1')
if nxt - now > wait then wait = nxt - now end
if wait > 0 then return tostring(wait) end
redis.call('ZADD', KEYS[1], now + lease, ARGV[6])
local anchor = nxt
if now - nxt >= interval then anchor = now end
redis.call('SET', KEYS[2], tostring(anchor + interval), 'PX', math.ceil((window + lease) * 1000))
redis.call('PEXPIRE', KEYS[1], math.ceil((window + lease) * 1000))
return '0'
"""
)

# KEYS: slots. ARGV: now, window, token. The slot frees a window after its request completed.
_RELEASE = (
    _NOW
    + """
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
return 1
"""
)

# KEYS: next. ARGV: now, seconds. Holds every hook's starts (a Retry-After).
_PAUSE = (
    _NOW
    + """
local until_ = now + tonumber(ARGV[2])
local nxt = tonumber(redis.call('GET', KEYS[1]) or '-1')
if until_ > nxt then
  redis.call('SET', KEYS[1], tostring(until_), 'PX', math.ceil(tonumber(ARGV[2]) * 1000) + 1000)
end
return 1
"""
)


def account_key(api_key: str, base_url: str) -> str:
    """
    Return the Redis key prefix of one account.

    A hash of the base URL and the key, never the key itself.
    """
    digest = hashlib.sha256(f"{base_url}\n{api_key}".encode()).hexdigest()[:32]
    return f"helpcrunch:pacer:{digest}"


class SharedWindow:
    """
    The Redis side of the pacer: take a slot (or learn how long to wait), free it a window after completion.

    :param client: a ``redis.Redis`` client (from Airflow's ``RedisHook``), or a ``redis.asyncio.Redis`` one
        for the ``a``-prefixed methods.
    :param key: the account's key prefix (:func:`account_key`).
    :param limit: requests allowed in any ``window``.
    :param window: the window's length in seconds.
    :param lease: how long an unreleased slot is held (the longest an attempt can take, plus the window).
    :param now: a clock to pass to Redis instead of its own (for tests on a virtual clock).
    """

    def __init__(
        self,
        client: Any,
        key: str,
        *,
        limit: int,
        window: float,
        lease: float,
        now: Any = None,
    ) -> None:
        self._client = client
        self._slots, self._next = f"{key}:slots", f"{key}:next"
        self.limit = limit
        self.window = window
        self.lease = lease
        self._now = now
        self._acquire = client.register_script(_ACQUIRE)
        self._release = client.register_script(_RELEASE)
        self._pause = client.register_script(_PAUSE)

    def _time(self) -> str:
        return "" if self._now is None else repr(float(self._now()))

    def try_acquire(self, token: str) -> float:
        """Take a slot for ``token``: 0 when taken, else the seconds to wait before asking again."""
        interval = self.window / self.limit
        args: Sequence[Any] = (self._time(), self.limit, self.window, interval, self.lease, token)
        return float(self._acquire(keys=[self._slots, self._next], args=args))

    def release(self, token: str) -> None:
        """Free the slot of ``token``'s request a window from now: the request completed."""
        self._release(keys=[self._slots], args=(self._time(), self.window, token))

    def pause(self, seconds: float) -> None:
        """Hold every hook's next start for ``seconds`` from now (a ``Retry-After``)."""
        self._pause(keys=[self._next], args=(self._time(), seconds))

    @staticmethod
    def new_token() -> str:
        return uuid.uuid4().hex

    # The same with a ``redis.asyncio`` client, whose scripts are awaited: for the triggerer's event loop.

    async def atry_acquire(self, token: str) -> float:
        """Take a slot for ``token`` as :meth:`try_acquire` does, without blocking the event loop."""
        interval = self.window / self.limit
        args: Sequence[Any] = (self._time(), self.limit, self.window, interval, self.lease, token)
        return float(await self._acquire(keys=[self._slots, self._next], args=args))

    async def arelease(self, token: str) -> None:
        """Free the slot of ``token``'s request as :meth:`release` does, asynchronously."""
        await self._release(keys=[self._slots], args=(self._time(), self.window, token))

    async def apause(self, seconds: float) -> None:
        """Hold every hook's next start as :meth:`pause` does, without blocking the event loop."""
        await self._pause(keys=[self._next], args=(self._time(), seconds))
