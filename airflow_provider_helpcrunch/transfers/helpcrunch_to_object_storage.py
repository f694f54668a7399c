"""
Export HelpCrunch chats, their messages and the customers to object storage.

Incremental by the DAG run's data interval, idempotent, streamed, and never a half file at the final path.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow.providers.common.compat.assets import Asset
from airflow.providers.common.compat.sdk import ObjectStoragePath

from airflow_provider_helpcrunch.client import RATE_LIMITED_ADVICE
from airflow_provider_helpcrunch.client.checks import check_bool, check_int
from airflow_provider_helpcrunch.exceptions import (
    HelpCrunchAPIError,
    HelpCrunchCancelledError,
    HelpCrunchConfigError,
    HelpCrunchError,
    HelpCrunchNotFoundError,
)
from airflow_provider_helpcrunch.operators.helpcrunch import (
    MAX_IN_FLIGHT,
    BaseHelpCrunchOperator,
    check_unless_template,
)
from airflow_provider_helpcrunch.outside_text import short_repr
from airflow_provider_helpcrunch.timestamps import readable_seconds
from airflow_provider_helpcrunch.transfers.export_files import (
    STREAMS,
    AllOf,
    ExportProgress,
    StreamFile,
    clean_partials,
    stream_summary,
)
from airflow_provider_helpcrunch.transfers.export_window import (
    check_end,
    check_start,
    export_window,
    no_snapshot_because,
    stamp,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.providers.common.compat.sdk import Context


COMPRESSIONS = (None, "gzip")
#: how far HelpCrunch's clock may be behind ours: a re-read of the chats whose last message moved while
#: the export read them reaches this far back before the re-read started.
CLOCK_SKEW = 300
#: re-reads of the chats whose last message moved during the read before, before the export gives up.
MAX_REREADS = 10


class HelpCrunchToObjectStorageOperator(BaseHelpCrunchOperator):
    """
    Export HelpCrunch data to object storage as JSON Lines, one file per stream and window.

    Any backend of Airflow's ``ObjectStoragePath`` is taken: ``file://``, ``s3://``, ``gs://``...

    - ``chats``: the chats changed in the window (``POST /chats/search`` on ``chats.updatedAt``), paged on
      their ``createdAt``: a chat an agent changes while the export runs pushes no other chat out.
    - ``messages``: every message created in the window, of every chat whose last message is not older
      than the window's start (``GET /chats`` by ``lastMessageAt``, newest first, read again for the chats
      whose last message moved meanwhile), and of every chat of the chats stream. Newest first, paging a
      chat's messages stops at the first one older than the window.
    - ``customers``: a snapshot of every customer (``GET /customers``), named after the moment it was
      read (``snapshot_<UTC time>``). Only a run whose window ended at most ``snapshot_max_delay`` ago
      takes one: a backfill of past intervals does not read every customer again for each of them.

    Every timestamp of every record is written as RFC 3339 text in UTC (``2026-12-01T10:20:30.913000Z``);
    each stream's JSON Schema (versioned) is written beside its files as ``_schema.v<N>.json``.

    The window is the run's data interval by default, so a scheduled run exports what changed since the last
    one and a backfill exports its intervals (schedule with ``CronDataIntervalTimetable`` on Airflow 3, whose
    default cron timetable gives runs an empty interval). A run with no data interval, or an empty one,
    exports ``window_if_no_interval`` up to the interval's end, or else up to its ``run_after``. Files go to
    ``<path>/<stream>/<start>_<end>.jsonl[.gz]``, each written under a temporary name and moved into place
    when complete, records in a fixed order with sorted keys: re-running an interval rewrites the same files
    with the same bytes (for unchanged data). On Airflow 3.3 a retry does not export again a stream that an
    earlier try finished.

    Returns (XCom ``return_value``): ``{"window": {"start", "end"}, "streams": {name: {"path", "records",
    "schema"}}, "skipped": {name: reason}, "requests": {"sent", "rate_limited", "rate_limit_wait_seconds"}}``.
    Emits an asset event per stream written (``outlets``: :func:`export_asset`), so that DAGs can be
    scheduled on the export.

    :param path: the folder to write to (templated), e.g. ``"s3://aws_default@my-bucket/helpcrunch"``.
    :param streams: which of ``"chats"``, ``"messages"``, ``"customers"`` (default chats and messages).
    :param window_start: the window's start (templated; default: the data interval's start).
    :param window_end: the window's end, not included (templated; default: the data interval's end).
    :param window_if_no_interval: the window of a run with no data interval or an empty one (default a day).
    :param snapshot_max_delay: the longest time after the window's end at which a run still takes the
        customers snapshot (default: the window's length, so a daily run takes the day's snapshot).
    :param compression: ``None`` or ``"gzip"``.
    :param max_in_flight: chats whose messages are fetched at once (1 to 32), hiding latency; the pace stays
        at the account's limit.
    :param resume: on Airflow 3.3, let a retry skip the streams an earlier try finished.

    ``helpcrunch_conn_id``, ``requests_per_minute``, ``timeout``, ``max_retries``, ``redis_conn_id`` and
    ``hook_params`` are as for :class:`BaseHelpCrunchOperator`.
    """

    template_fields: Sequence[str] = ("path", "window_start", "window_end")

    def __init__(
        self,
        *,
        path: str | ObjectStoragePath,
        streams: Sequence[str] = ("chats", "messages"),
        window_start: Any = None,
        window_end: Any = None,
        window_if_no_interval: timedelta = timedelta(days=1),
        snapshot_max_delay: timedelta | None = None,
        compression: str | None = None,
        max_in_flight: int = 4,
        resume: bool = True,
        **kwargs: Any,
    ) -> None:
        streams = tuple(streams)
        unknown = [stream for stream in streams if stream not in STREAMS]
        if unknown or not streams or len(set(streams)) != len(streams):
            raise HelpCrunchConfigError(
                f"streams must be some of {', '.join(repr(s) for s in STREAMS)}, each once; got {streams!r}"
            )
        if compression not in COMPRESSIONS:
            raise HelpCrunchConfigError(f"compression must be None or 'gzip', got {compression!r}")
        for name, value in (
            ("window_if_no_interval", window_if_no_interval),
            ("snapshot_max_delay", snapshot_max_delay),
        ):
            if value is not None and (not isinstance(value, timedelta) or value <= timedelta(0)):
                raise HelpCrunchConfigError(f"{name} must be a positive timedelta, got {value!r}")
        check_int(max_in_flight, "max_in_flight", maximum=MAX_IN_FLIGHT)
        check_bool(resume, "resume")
        if not hasattr(path, "resolve"):  # an XComArg is checked once resolved
            check_unless_template(path, _path_text)
        if window_start not in (None, ""):
            check_unless_template(window_start, check_start)
        if window_end not in (None, ""):
            check_unless_template(window_end, check_end)
        if "outlets" not in kwargs and not (isinstance(path, str) and "{{" in path):
            kwargs["outlets"] = [export_asset(path, stream) for stream in streams]
        super().__init__(**kwargs)
        self.path = path
        self.streams = streams
        self.window_start = window_start
        self.window_end = window_end
        self.window_if_no_interval = window_if_no_interval
        self.snapshot_max_delay = snapshot_max_delay
        self.compression = compression
        self.max_in_flight = max_in_flight
        self.resume = resume
        self._lineage: dict[str, Any] = {}

    # ------------------------------------------------------------------ the run

    def execute(self, context: Context) -> dict[str, Any]:
        start, end = self._window(context)
        base = (
            self.path
            if isinstance(self.path, ObjectStoragePath)
            else ObjectStoragePath(_path_text(self.path))
        )
        window = f"{stamp(start)}_{stamp(end)}"
        finals = {stream: base / stream / (window + self._suffix) for stream in self.streams}
        progress = ExportProgress(
            context.get("task_state_store") if self.resume else None,
            [str(base), start.isoformat(), end.isoformat(), list(self.streams), self.compression],
            self.log,
        )
        done = progress.load(base, finals)
        skipped: dict[str, str] = {}
        self.log.info(
            "Exporting %s changed from %s to %s (not included) to %s%s",
            " and ".join(self.streams),
            start.isoformat(),
            end.isoformat(),
            base,
            f"; {', '.join(sorted(done))} done by an earlier try" if done else "",
        )
        try:
            chat_streams = [stream for stream in ("chats", "messages") if stream in self.streams]
            if chat_streams and not all(stream in done for stream in chat_streams):
                done.update(self._export_chats(start, end, {s: finals[s] for s in chat_streams}))
                progress.save(done)
            if "customers" in self.streams and "customers" not in done:
                reason = self._no_snapshot_because(start, end)
                if reason:
                    skipped["customers"] = reason
                    self.log.info("customers: no snapshot: %s", reason)
                else:
                    done.update(self._export_customers(base / "customers"))
                    progress.save(done)
        finally:
            self.hook.close()
        for stream, written in done.items():
            self.log.info("%s: %s record(s) in %s", stream, f"{written['records']:,}", written["path"])
        stats = self.hook.client.stats
        self.log.info("HelpCrunch was sent %s, paced %s", stats.describe(), self.hook.pace)
        if stats.rate_limited:
            self.log.warning(RATE_LIMITED_ADVICE)
        self._tell_assets(context, done, start, end)
        self._lineage = {"streams": sorted(done), "api": self.hook.settings.base_url}
        return {
            "window": {"start": start.isoformat(), "end": end.isoformat()},
            "streams": done,
            "skipped": skipped,
            "requests": stats.as_dict(),
        }

    @property
    def _suffix(self) -> str:
        return ".jsonl.gz" if self.compression == "gzip" else ".jsonl"

    def _window(self, context: Context) -> tuple[datetime, datetime]:
        """Return the window this run exports (:func:`.export_window.export_window`)."""
        return export_window(
            context, self.window_start, self.window_end, self.window_if_no_interval, self.log
        )

    def _no_snapshot_because(self, start: datetime, end: datetime, now: datetime | None = None) -> str:
        """Say why this run takes no customers snapshot (``""``: it takes one)."""
        return no_snapshot_because(start, end, self.snapshot_max_delay, now)

    # ------------------------------------------------------------------ chats and messages

    def _export_chats(
        self, start: datetime, end: datetime, finals: dict[str, ObjectStoragePath]
    ) -> dict[str, dict[str, Any]]:
        """Export the chats changed in the window, then the messages created in it."""
        since, until = math.floor(start.timestamp()), math.ceil(end.timestamp())
        files = {stream: StreamFile(stream, final, self.compression) for stream, final in finals.items()}
        chats_file, messages_file = files.get("chats"), files.get("messages")
        try:
            with AllOf(files.values()):
                active: set[int] = set()
                if chats_file is not None:
                    for chat in self.hook.search_chats(
                        [("updatedAt", ">=", since), ("updatedAt", "<", until)], sort="createdAt", order="asc"
                    ):
                        chats_file.write(chat)
                        if not _quiet_since(chat, since):
                            active.add(chat["id"])
                if messages_file is not None:
                    chat_ids = sorted(active | self._chats_with_messages_since(since))
                    self._write_messages(chat_ids, start.timestamp(), end.timestamp(), messages_file)
        except HelpCrunchError as err:
            written = ", ".join(f"{f.records:,} {stream}" for stream, f in files.items())
            raise err.restated(
                f"The export of {' and '.join(files)} from {start.isoformat()} to {end.isoformat()} stopped "
                f"after {written} had been read; none of it is at the final paths (a retry exports them "
                f"again). Cause: {self.hook._scrub(str(err))}"
            ) from err
        for file in files.values():
            clean_partials(file, self.log)
        return {stream: stream_summary(file) for stream, file in files.items()}

    def _chats_with_messages_since(self, since: int) -> set[int]:
        """
        Return the chats whose last message is not older than ``since``.

        ``GET /chats`` by ``lastMessageAt``, newest first, up to the first older chat. A chat that gets a
        message while we page moves to the front, where we have been already; so the front is read again, back
        to a little before the last read started, until a read finds no chat it did not know.
        """
        found: set[int] = set()
        back_to = since
        for reread in range(MAX_REREADS + 1):
            started = time.time()
            new = 0
            for chat in self.hook.list_chats(sort="lastMessageAt", order="desc"):
                last = readable_seconds(chat.get("lastMessageAt"))
                if last is None:
                    continue  # no message at all: wherever HelpCrunch sorts it, it has none in the window
                if last < back_to:
                    break  # every chat after it is older still
                if chat["id"] not in found:
                    found.add(chat["id"])
                    new += 1
            if reread and not new:
                return found
            back_to = max(since, math.floor(started) - CLOCK_SKEW)
        raise HelpCrunchAPIError(
            f"The chats with messages since {since} kept changing through {MAX_REREADS} re-reads of "
            "GET /chats by lastMessageAt; no complete list of them could be read"
        )

    def _write_messages(self, chat_ids: list[int], since: float, until: float, out: StreamFile) -> None:
        """
        Write the window's messages of ``chat_ids``, ``max_in_flight`` chats at a time, in their order.

        On an error, no request is sent after the stop is decided: only those on the wire finish.
        """
        stop = threading.Event()
        failure: list[HelpCrunchError] = []
        queue = iter(chat_ids)
        pending: deque[Future[list[dict[str, Any]]]] = deque()
        pool = ThreadPoolExecutor(self.max_in_flight, "helpcrunch-export")

        def submit() -> None:
            chat_id = next(queue, None)
            if chat_id is not None and not stop.is_set():
                pending.append(pool.submit(self._window_messages, chat_id, since, until, stop, failure))

        try:
            for _ in range(self.max_in_flight):
                submit()
            while pending:
                try:
                    messages = pending.popleft().result()
                except HelpCrunchCancelledError:
                    if failure:
                        raise failure[0] from None
                    raise
                for message in messages:
                    out.write(message)
                submit()
        except BaseException:
            stop.set()
            raise
        finally:
            for future in pending:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)

    def _window_messages(
        self, chat_id: int, since: float, until: float, stop: threading.Event, failure: list[HelpCrunchError]
    ) -> list[dict[str, Any]]:
        """Return a chat's messages created in the window; paging stops at the first message older than it."""
        kept = []
        client = self.hook.client
        try:
            with client.placed(cancel=stop):
                for message in client.list_chat_messages(chat_id):
                    created = _created(message, chat_id)
                    if created < since:
                        break  # newest first: every message after this one is older still
                    if created < until:
                        kept.append(message)
        except HelpCrunchNotFoundError:
            self.log.warning(
                "Chat %d was deleted while the export ran: its messages are not exported", chat_id
            )
            return []
        except HelpCrunchCancelledError:
            raise
        except HelpCrunchError as err:
            failure.append(err)  # told before the stop, so that the stop is never taken for the cause
            stop.set()
            raise
        return kept

    # ------------------------------------------------------------------ customers

    def _export_customers(self, folder: ObjectStoragePath) -> dict[str, dict[str, Any]]:
        """Take a snapshot of every customer, named after the moment its read started."""
        taken = datetime.now(UTC)
        final = folder / f"snapshot_{stamp(taken)}{self._suffix}"
        out = StreamFile("customers", final, self.compression)
        try:
            with out:
                for customer in self.hook.list_customers(sort="customers.firstSeen", order="asc"):
                    out.write(customer)
        except HelpCrunchError as err:
            raise err.restated(
                f"The customers snapshot stopped after {out.records:,} customers had been read; none of it "
                f"is at the final path (a retry takes it again). Cause: {self.hook._scrub(str(err))}"
            ) from err
        clean_partials(out, self.log)
        return {"customers": {**stream_summary(out), "taken_at": taken.replace(microsecond=0).isoformat()}}

    # ------------------------------------------------------------------ files, assets, lineage

    def _tell_assets(self, context: Context, done: dict[str, Any], start: datetime, end: datetime) -> None:
        """Say, on each stream's asset event, which file it wrote (downstream DAGs read it there)."""
        events = context.get("outlet_events")
        declared = {getattr(outlet, "uri", None) for outlet in self.outlets}
        if events is None:
            return
        for stream, written in done.items():
            asset = export_asset(self.path, stream)  # named as the declared outlets are
            if asset.uri in declared:
                events[asset].extra = {
                    **written,
                    "window_start": start.isoformat(),
                    "window_end": end.isoformat(),
                }

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """
        Return what the export read and wrote, for OpenLineage.

        HelpCrunch's endpoints in, each stream's folder out. ``None`` where the OpenLineage provider is not
        installed (nothing of it is imported then).
        """
        if not self._lineage:
            return None
        try:
            from airflow.providers.common.compat.openlineage.facet import Dataset
            from airflow.providers.openlineage.extractors import OperatorLineage
        except ImportError:
            return None
        api = urlsplit(self._lineage["api"])
        sources = {"chats": "/chats", "messages": "/chats/messages", "customers": "/customers"}
        streams = self._lineage["streams"]
        inputs = [
            Dataset(namespace=f"{api.scheme}://{api.netloc}", name=f"{api.path}{sources[stream]}")
            for stream in streams
        ]
        outputs = []
        for stream in streams:
            where = urlsplit(export_asset(self.path, stream).uri)
            if where.scheme == "file":
                outputs.append(Dataset(namespace="file", name=where.path))
            else:
                outputs.append(
                    Dataset(namespace=f"{where.scheme}://{where.netloc}", name=where.path.lstrip("/"))
                )
        return OperatorLineage(inputs=inputs, outputs=outputs)


def _created(message: dict[str, Any], chat_id: int) -> float:
    """When a message was created; a message that does not say is HelpCrunch's error, not a guess."""
    created = readable_seconds(message.get("createdAt"))
    if created is None:
        raise HelpCrunchAPIError(
            f"HelpCrunch returned a message of chat {chat_id} without a readable createdAt: "
            f"{short_repr(message)}",
            chat_id=chat_id,
        )
    return created


def _quiet_since(chat: dict[str, Any], since: int) -> bool:
    """Whether a chat's last message is older than ``since`` (then it has none in the window)."""
    last = readable_seconds(chat.get("lastMessageAt"))
    return last is not None and last < since


def _path_text(value: Any) -> str:
    """
    Return the export's folder as text.

    An ``ObjectStoragePath`` or its URL; empty, blank or missing is refused. No ``ObjectStoragePath`` is made
    here: that imports the storage's filesystem (s3fs...), which a DAG's parse need not pay.
    """
    if isinstance(value, ObjectStoragePath):
        return str(value)
    if not isinstance(value, str) or not value.strip():
        raise HelpCrunchConfigError(
            "path must be the folder to export to (e.g. 's3://aws_default@my-bucket/helpcrunch' or "
            f"'file:///data/helpcrunch'), got {short_repr(value)}"
        )
    return value.strip()


def export_asset(path: str | ObjectStoragePath, stream: str) -> Asset:
    """
    Return the asset :class:`HelpCrunchToObjectStorageOperator` emits for a stream exported under ``path``.

    Give it the same ``path`` as the operator, and schedule a DAG on it. Its URI is ``<path>/<stream>``
    without the Airflow connection (``s3://aws_default@bucket/x`` gives ``s3://bucket/x/chats``), as Airflow
    names assets.

    >>> export_asset("s3://aws_default@my-bucket/helpcrunch", "chats").uri
    's3://my-bucket/helpcrunch/chats'
    """
    if stream not in STREAMS:
        raise HelpCrunchConfigError(f"stream must be one of {', '.join(map(repr, STREAMS))}, got {stream!r}")
    text = _path_text(path).rstrip("/")
    scheme, sep, rest = text.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        rest = rest.split("@", 1)[1]
    return Asset(f"{scheme}{sep}{rest}/{stream}")
