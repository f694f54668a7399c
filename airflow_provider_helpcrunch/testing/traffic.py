"""What the stand-in saw, in words: one line per request, and a summary against the rate limit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_provider_helpcrunch.client.rate_limit import rate_per_minute

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from airflow_provider_helpcrunch.testing.server import RequestRecord


def max_in_any_window(times: Iterable[float], window: float) -> int:
    """Return the most events in any half-open window ``[t, t + window)``."""
    ordered = sorted(times)
    best, start = 0, 0
    for end, moment in enumerate(ordered):
        while ordered[start] <= moment - window:
            start += 1
        best = max(best, end - start + 1)
    return best


def request_line(record: RequestRecord, started: float) -> str:
    """``"  12.31 s  #25  PUT /v1/chats/readByAgent  chat 5208  -> 200"``: one request as it was answered."""
    chat = f"  chat {record.chat_id}" if record.chat_id is not None else ""
    answer = "dropped" if record.status is None else str(record.status)
    fault = "  (scripted fault)" if record.fault is not None else ""
    return (
        f"{record.time - started:8.2f} s  #{record.number:<5} {record.method} {record.path}{chat}  "
        f"-> {answer}{fault}"
    )


@dataclass(frozen=True)
class TrafficSummary:
    """The requests the stand-in received, against its limit of ``limit`` per ``window`` seconds."""

    requests: int
    throttled: int  # answered 429
    failed: int  # answered another 4xx or 5xx, or dropped
    seconds: float  # from the first arrival to the last
    busiest: int  # the most requests in any window
    limit: int | None
    window: float

    @property
    def rate(self) -> float:
        """Requests per minute, over the intervals between arrivals."""
        return rate_per_minute(self.requests, self.seconds)

    def lines(self) -> list[str]:
        limit = f" (limit {self.limit})" if self.limit else " (no limit)"
        share = f", {self.rate / (self.limit * 60 / self.window):.0%} of the limit" if self.limit else ""
        return [
            f"requests       {self.requests} ({self.throttled} answered 429, {self.failed} other errors)",
            f"rate           {self.rate:.1f} requests/min over {self.seconds:.1f} s{share}",
            f"busiest {self.window:g} s  {self.busiest} requests{limit}",
        ]


def summarize(records: Sequence[RequestRecord], *, limit: int | None, window: float = 60.0) -> TrafficSummary:
    """Count ``records`` (as ``HelpCrunchStandIn.requests`` gives them) against a limit per ``window``."""
    arrivals = [r.time for r in records]
    throttled = sum(1 for r in records if r.status == 429)
    failed = sum(1 for r in records if r.status is None or (r.status >= 400 and r.status != 429))
    return TrafficSummary(
        requests=len(records),
        throttled=throttled,
        failed=failed,
        seconds=max(arrivals) - min(arrivals) if arrivals else 0.0,
        busiest=max_in_any_window(arrivals, window),
        limit=limit,
        window=window,
    )
