"""The export's window: the moments a run exports, their stamp in file names, the snapshot's rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_helpcrunch.exceptions import HelpCrunchConfigError
from airflow_provider_helpcrunch.timestamps import to_moment

if TYPE_CHECKING:
    from collections.abc import Mapping

#: a stream's file name, under ``path/<stream>/``: the window in UTC, e.g. 20261201T000000Z.
STAMP = "%Y%m%dT%H%M%SZ"


def stamp(moment: datetime) -> str:
    """Return a moment as file names show it, in UTC: ``20261201T000000Z``."""
    return moment.astimezone(UTC).strftime(STAMP)


def check_start(value: Any) -> datetime:
    """Check ``window_start``: a datetime, UNIX seconds, or rendered numbers or ISO 8601 text."""
    return to_moment(value, "window_start")


def check_end(value: Any) -> datetime:
    """Check ``window_end``, as :func:`check_start`."""
    return to_moment(value, "window_end")


def export_window(
    context: Mapping[str, Any], window_start: Any, window_end: Any, if_no_interval: timedelta, log: Any
) -> tuple[datetime, datetime]:
    """
    Return the window a run exports.

    ``window_start`` / ``window_end`` as given, else the run's data interval; a run with no data interval,
    or an empty one (Airflow 3's default cron timetable gives its runs one), exports ``if_no_interval`` up to
    the interval's end, or else up to ``run_after``.
    """
    given_start = None if window_start in (None, "", "None") else window_start
    given_end = None if window_end in (None, "", "None") else window_end
    start = given_start if given_start is not None else context.get("data_interval_start")
    end = given_end if given_end is not None else context.get("data_interval_end")
    if end is None:
        end = getattr(context.get("dag_run"), "run_after", None) or datetime.now(UTC)
    end = to_moment(end, "window_end")
    if given_start is None and (start is None or not to_moment(start, "window_start") < end):
        start = end - if_no_interval
        log.info("The run has no data interval to export: exporting the %s up to %s", if_no_interval, end)
    start = to_moment(start, "window_start")
    if not start < end:
        raise HelpCrunchConfigError(f"The window must start before it ends: {start} to {end}")
    return start, end


def no_snapshot_because(
    start: datetime, end: datetime, max_delay: timedelta | None, now: datetime | None = None
) -> str:
    """
    Say why a run of this window takes no customers snapshot (``""``: it takes one).

    A snapshot holds the customers as they are when it is read: only a run whose window ended at most
    ``max_delay`` ago (default: the window's length) takes one.
    """
    now = now or datetime.now(UTC)
    delay = max_delay or (end - start)
    if now - end <= delay:
        return ""
    return (
        f"the window ended at {end.isoformat()}, more than {delay} ago (snapshot_max_delay): a snapshot "
        "holds the customers as they are when it is read, not as they were then, so only a run of a "
        "recent window takes one"
    )
