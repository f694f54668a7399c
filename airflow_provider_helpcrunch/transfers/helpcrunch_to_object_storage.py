"""
Export HelpCrunch chats, their messages and the customers to object storage: incremental by the DAG run's
data interval, idempotent, streamed, and never a half file at the final path.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.assets import Asset
from airflow.providers.common.compat.sdk import ObjectStoragePath

from airflow_provider_helpcrunch.exceptions import (
    HelpCrunchAPIError,
    HelpCrunchConfigError,
    HelpCrunchError,
    HelpCrunchNotFoundError,
)
from airflow_provider_helpcrunch.filters import to_timestamp
from airflow_provider_helpcrunch.operators.helpcrunch import MAX_IN_FLIGHT, BaseHelpCrunchOperator
from airflow_provider_helpcrunch.outside_text import short_repr
from airflow_provider_helpcrunch.timestamps import timestamp_seconds
from airflow_provider_helpcrunch.validation import check_bool, check_int, check_unless_template

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from airflow.providers.common.compat.sdk import Context


#: the streams an export can write; chats and messages are written in one pass over the chats.
STREAMS = ("chats", "messages", "customers")
COMPRESSIONS = (None, "gzip")
PROGRESS_KEY = "helpcrunch_export_progress"
RECORD_FORMAT = 1
#: a stream's file name, under ``path/<stream>/``: the window in UTC, e.g. 20261201T000000Z.
_STAMP = "%Y%m%dT%H%M%SZ"


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_STAMP)


def _record(value: dict[str, Any]) -> bytes:
    """One JSON line, keys sorted: the same record is the same bytes on every run."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


class _StreamFile:
    """
    One stream's file, written under a temporary name in its final folder and moved into place only when
    complete: a failed or killed try leaves a ``_``-prefixed ``.partial`` file, never one at the final path.
    """

    def __init__(self, final: ObjectStoragePath, compression: str | None) -> None:
        self.final = final
        self.partial = final.parent / f"_{final.name}.{uuid.uuid4().hex}.partial"
        self.records = 0
        self._compression = compression
        self._raw: Any = None
        self._out: Any = None

    def __enter__(self) -> _StreamFile:
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self._raw = self.partial.open("wb")
        # no name and no time in the gzip header: the same records are the same bytes on every run
        self._out = (
            gzip.GzipFile(fileobj=self._raw, mode="wb", filename="", mtime=0)
            if self._compression == "gzip"
            else self._raw
        )
        return self

    def write(self, record: dict[str, Any]) -> None:
        self._out.write(_record(record))
        self.records += 1

    def __exit__(self, kind: Any, *exc: object) -> None:
        try:
            if self._out is not self._raw:
                self._out.close()
            self._raw.close()
        except Exception:
            if kind is None:
                raise
        if kind is None:
            self.partial.rename(self.final)
            return
        # the try failed: take the partial file away too (a killed try leaves it, named as partial); the
        # task's own error is the one to report
        with contextlib.suppress(Exception):
            self.partial.unlink()


def _as_moment(value: Any, name: str) -> datetime:
    """A window bound: a datetime, a pendulum object, UNIX seconds or a rendered number or ISO 8601 text."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and not value.strip().lstrip("-").replace(".", "", 1).isdigit():
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise HelpCrunchConfigError(
                f"{name} must be a datetime, UNIX seconds or ISO 8601 text, got {short_repr(value)}"
            ) from None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return datetime.fromtimestamp(to_timestamp(value, name), tz=UTC)


def _check_start(value: Any) -> datetime:
    return _as_moment(value, "window_start")


def _check_end(value: Any) -> datetime:
    return _as_moment(value, "window_end")


class HelpCrunchToObjectStorageOperator(BaseHelpCrunchOperator):
    """
    Export HelpCrunch data to object storage (``file://``, ``s3://``, ``gs://``... any backend of Airflow's
    ``ObjectStoragePath``), as JSON Lines, one file per stream and window.

    - ``chats``: the chats changed in the window (``POST /chats/search`` on ``chats.updatedAt``, oldest
      first), as HelpCrunch returns them.
    - ``messages``: every message created in the window, of every chat that changed since its start (a chat
      that changed again after the window still had its messages in it). Newest first, paging a chat's
      messages stops at the first one older than the window.
    - ``customers``: a full snapshot (``GET /customers``).

    The window is the run's data interval by default, so a scheduled run exports what changed since the last
    one and a backfill exports its intervals (schedule with ``CronDataIntervalTimetable`` on Airflow 3, whose
    default cron timetable gives runs an empty interval). A run with no data interval, or an empty one,
    exports ``window_if_no_interval`` up to the interval's end, or else up to its ``run_after``. Files go to
    ``<path>/<stream>/<start>_<end>.jsonl[.gz]`` (customers: ``<path>/customers/snapshot_<end>...``), each
    written under a temporary name and moved into place when complete, records in a fixed order with
    sorted keys: re-running an interval rewrites the same files with the same bytes (for unchanged data).
    On Airflow 3.3 a retry does not export again a stream that an earlier try finished.

    Returns (XCom ``return_value``): ``{"window": {"start", "end"}, "streams": {name: {"path", "records"}}}``.
    Emits an asset event per stream written (``outlets``: ``<path>/<stream>``), so that DAGs can be
    scheduled on the export.

    :param path: the folder to write to (templated), e.g. ``"s3://aws_default@my-bucket/helpcrunch"``.
    :param streams: which of ``"chats"``, ``"messages"``, ``"customers"`` (default chats and messages).
    :param window_start: the window's start (templated; default: the data interval's start).
    :param window_end: the window's end, not included (templated; default: the data interval's end).
    :param window_if_no_interval: the window of a run with no data interval or an empty one (default a day).
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
        if not isinstance(window_if_no_interval, timedelta) or window_if_no_interval <= timedelta(0):
            raise HelpCrunchConfigError(
                f"window_if_no_interval must be a positive timedelta, got {window_if_no_interval!r}"
            )
        check_int(max_in_flight, "max_in_flight", maximum=MAX_IN_FLIGHT)
        check_bool(resume, "resume")
        if window_start not in (None, ""):
            check_unless_template(window_start, _check_start)
        if window_end not in (None, ""):
            check_unless_template(window_end, _check_end)
        if "outlets" not in kwargs and not (isinstance(path, str) and "{{" in path):
            kwargs["outlets"] = [Asset(_asset_uri(path, stream)) for stream in streams]
        super().__init__(**kwargs)
        self.path = path
        self.streams = streams
        self.window_start = window_start
        self.window_end = window_end
        self.window_if_no_interval = window_if_no_interval
        self.compression = compression
        self.max_in_flight = max_in_flight
        self.resume = resume

    # ------------------------------------------------------------------ the run

    def execute(self, context: Context) -> dict[str, Any]:
        start, end = self._window(context)
        base = self.path if isinstance(self.path, ObjectStoragePath) else ObjectStoragePath(self.path)
        suffix = ".jsonl.gz" if self.compression == "gzip" else ".jsonl"
        window = f"{_stamp(start)}_{_stamp(end)}"
        finals = {
            stream: base
            / stream
            / ((f"snapshot_{_stamp(end)}" if stream == "customers" else window) + suffix)
            for stream in self.streams
        }
        progress = _ExportProgress(
            context.get("task_state_store") if self.resume else None,
            [str(base), start.isoformat(), end.isoformat(), list(self.streams), self.compression],
            self.log,
        )
        done = progress.load(finals)
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
                done.update(self._export_customers(finals["customers"]))
                progress.save(done)
        finally:
            self.hook.close()
        for stream, written in done.items():
            self.log.info("%s: %s record(s) in %s", stream, f"{written['records']:,}", written["path"])
        self._tell_assets(context, base, done, start, end)
        return {"window": {"start": start.isoformat(), "end": end.isoformat()}, "streams": done}

    def _window(self, context: Context) -> tuple[datetime, datetime]:
        """
        The window: ``window_start`` / ``window_end`` as given, else the run's data interval; a run with no
        data interval, or an empty one (Airflow 3's default cron timetable gives its runs one), exports
        ``window_if_no_interval`` up to the interval's end, or else up to ``run_after``.
        """
        given_start = None if self.window_start in (None, "", "None") else self.window_start
        given_end = None if self.window_end in (None, "", "None") else self.window_end
        start = given_start if given_start is not None else context.get("data_interval_start")
        end = given_end if given_end is not None else context.get("data_interval_end")
        if end is None:
            end = getattr(context.get("dag_run"), "run_after", None) or datetime.now(UTC)
        end = _as_moment(end, "window_end")
        if given_start is None and (start is None or not _as_moment(start, "window_start") < end):
            start = end - self.window_if_no_interval
            self.log.info(
                "The run has no data interval to export: exporting the %s up to %s",
                self.window_if_no_interval,
                end,
            )
        start = _as_moment(start, "window_start")
        if not start < end:
            raise HelpCrunchConfigError(f"The window must start before it ends: {start} to {end}")
        return start, end

    def _export_chats(
        self, start: datetime, end: datetime, finals: dict[str, ObjectStoragePath]
    ) -> dict[str, dict[str, Any]]:
        """One pass over the chats: the chats changed in the window, and the messages created in it."""
        since, until = int(start.timestamp()), int(end.timestamp())
        files = {stream: _StreamFile(final, self.compression) for stream, final in finals.items()}
        chats_file, messages_file = files.get("chats"), files.get("messages")
        seen: set[int] = set()
        try:
            with _all(files.values()), ThreadPoolExecutor(self.max_in_flight, "helpcrunch-export") as pool:
                self._chats_pass(pool, since, until, chats_file, messages_file, seen)
        except HelpCrunchError as err:
            written = ", ".join(f"{f.records:,} {stream}" for stream, f in files.items())
            raise err.restated(
                f"The export of {' and '.join(files)} from {start.isoformat()} to {end.isoformat()} stopped "
                f"after {written} had been read; none of it is at the final paths (a retry exports them "
                f"again). Cause: {err}"
            ) from err
        return {stream: {"path": str(f.final), "records": f.records} for stream, f in files.items()}

    def _chats_pass(
        self,
        pool: ThreadPoolExecutor,
        since: int,
        until: int,
        chats_file: _StreamFile | None,
        messages_file: _StreamFile | None,
        seen: set[int],
    ) -> None:
        """The chats changed in the window, a page at a time, each page's messages after it."""
        hook = self.hook
        changed = hook.search_chats(
            [("updatedAt", ">=", since), ("updatedAt", "<", until)], sort="createdAt", order="asc"
        )
        for batch in _batches(changed, 100):
            if chats_file is not None:
                for chat in batch:
                    chats_file.write(chat)
            if messages_file is not None:
                self._write_messages(pool, batch, since, until, messages_file, seen)
        if messages_file is not None:
            # a chat that changed again after the window still had its messages in it
            later = hook.search_chats([("updatedAt", ">=", until)], sort="createdAt", order="asc")
            for batch in _batches(later, 100):
                self._write_messages(pool, batch, since, until, messages_file, seen)

    def _write_messages(
        self,
        pool: ThreadPoolExecutor,
        chats: list[dict[str, Any]],
        since: int,
        until: int,
        out: _StreamFile,
        seen: set[int],
    ) -> None:
        """The window's messages of ``chats``, fetched ``max_in_flight`` chats at a time, written in order."""
        wanted = []
        for chat in chats:
            if chat["id"] in seen or _quiet_since(chat, since):
                continue
            seen.add(chat["id"])
            wanted.append(chat["id"])
        futures: list[Future[list[dict[str, Any]]]] = [
            pool.submit(self._window_messages, chat_id, since, until) for chat_id in wanted
        ]
        try:
            for future in futures:
                for message in future.result():
                    out.write(message)
        finally:
            for future in futures:
                future.cancel()

    def _window_messages(self, chat_id: int, since: int, until: int) -> list[dict[str, Any]]:
        """A chat's messages created in the window; paging stops at the first message older than it."""
        kept = []
        try:
            for message in self.hook.list_chat_messages(chat_id):
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
        return kept

    def _export_customers(self, final: ObjectStoragePath) -> dict[str, dict[str, Any]]:
        with _StreamFile(final, self.compression) as out:
            for customer in self.hook.list_customers(sort="customers.firstSeen", order="asc"):
                out.write(customer)
        return {"customers": {"path": str(final), "records": out.records}}

    def _tell_assets(
        self, context: Context, base: ObjectStoragePath, done: dict[str, Any], start: datetime, end: datetime
    ) -> None:
        """Say, on each stream's asset event, which file it wrote (downstream DAGs read it there)."""
        events = context.get("outlet_events")
        declared = {getattr(outlet, "uri", None) for outlet in self.outlets}
        if events is None:
            return
        for stream, written in done.items():
            uri = _asset_uri(base, stream)
            if uri in declared:
                events[Asset(uri)].extra = {
                    **written,
                    "window_start": start.isoformat(),
                    "window_end": end.isoformat(),
                }


class _ExportProgress:
    """Which streams earlier tries of this task instance finished, in the task state store (Airflow 3.3)."""

    def __init__(self, store: Any, asked: list[Any], log: Any) -> None:
        self._store = store
        self._log = log
        self.fingerprint = hashlib.sha256(json.dumps(asked, default=str).encode()).hexdigest()[:32]

    def load(self, finals: dict[str, ObjectStoragePath]) -> dict[str, dict[str, Any]]:
        if self._store is None:
            return {}
        record = self._store.get(PROGRESS_KEY)
        if record is None:
            return {}
        done = record.get("done") if isinstance(record, dict) else None
        if (
            not isinstance(record, dict)
            or set(record) != {"format", "fingerprint", "done"}
            or record["format"] != RECORD_FORMAT
            or not isinstance(done, dict)
            or not all(
                stream in finals
                and isinstance(entry, dict)
                and set(entry) == {"path", "records"}
                and entry["path"] == str(finals[stream])
                and isinstance(entry["records"], int)
                and not isinstance(entry["records"], bool)
                for stream, entry in done.items()
            )
        ):
            self._log.warning("The export record of an earlier try is unreadable; exporting every stream.")
            return {}
        if record["fingerprint"] != self.fingerprint:
            self._log.warning("An earlier try exported another window or path; exporting every stream.")
            return {}
        return {stream: entry for stream, entry in done.items() if finals[stream].exists()}

    def save(self, done: dict[str, dict[str, Any]]) -> None:
        if self._store is not None:
            self._store.set(
                PROGRESS_KEY, {"format": RECORD_FORMAT, "fingerprint": self.fingerprint, "done": done}
            )


class _all:
    """Enter every stream file; leave them all (each moves into place, or is taken away on an error)."""

    def __init__(self, files: Iterable[_StreamFile]) -> None:
        self._files = list(files)
        self._entered: list[_StreamFile] = []

    def __enter__(self) -> None:
        try:
            for file in self._files:
                self._entered.append(file.__enter__())
        except BaseException as err:  # those opened already are taken away too
            self.__exit__(type(err), err, err.__traceback__)
            raise

    def __exit__(self, *exc: Any) -> None:
        for file in reversed(self._entered):
            file.__exit__(*exc)


def _batches(items: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _created(message: dict[str, Any], chat_id: int) -> float:
    """When a message was created; a message that does not say is HelpCrunch's error, not a guess."""
    try:
        created = timestamp_seconds(message.get("createdAt"))
    except ValueError:
        created = None
    if created is None:
        raise HelpCrunchAPIError(
            f"HelpCrunch returned a message of chat {chat_id} without a readable createdAt: "
            f"{short_repr(message)}",
            chat_id=chat_id,
        )
    return created


def _quiet_since(chat: dict[str, Any], since: int) -> bool:
    """Whether a chat's last message is older than ``since`` (then it has none in the window)."""
    try:
        last = timestamp_seconds(chat.get("lastMessageAt"))
    except ValueError:
        return False
    return last is not None and last < since


def _asset_uri(path: str | ObjectStoragePath, stream: str) -> str:
    """``<path>/<stream>`` as an asset URI: the storage's URL without the Airflow connection in it."""
    text = str(path).rstrip("/")
    scheme, sep, rest = text.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        rest = rest.split("@", 1)[1]
    return f"{scheme}{sep}{rest}/{stream}"
