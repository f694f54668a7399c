"""
The export's files.

Each stream's file written under a temporary name in its final folder and moved into place only when complete,
and the stale temporary files of killed tries cleaned up.
"""

from __future__ import annotations

import contextlib
import gzip
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_helpcrunch.operators.task_state import TaskStateRecord
from airflow_provider_helpcrunch.transfers.export_records import (
    SCHEMA_VERSION,
    json_line,
    normalized,
    schema_bytes,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from airflow.providers.common.compat.sdk import ObjectStoragePath

#: the streams an export can write; chats and messages are written in one pass over the chats.
STREAMS = ("chats", "messages", "customers")
#: the task state store's record of the streams finished (Airflow 3.3), and its format.
PROGRESS_KEY = "helpcrunch_export_progress"
RECORD_FORMAT = 2
_SNAPSHOT = re.compile(r"snapshot_\d{8}T\d{6}Z\.jsonl(\.gz)?")
#: a temporary file untouched for this long belongs to no running task: a try writes it continuously.
STALE_PARTIAL_AGE = timedelta(hours=6)
_PARTIAL = re.compile(r"_(?P<final>.+)\.[0-9a-f]{32}\.partial")


class StreamFile:
    """
    One stream's file, written under a temporary name in its final folder and moved into place when complete.

    A failed try takes its ``_<name>.<random>.partial`` away; a killed one leaves it, and the
    next successful run of the stream removes it once it is stale (:data:`STALE_PARTIAL_AGE`).

    :param stream: the stream (its records' timestamps are written in one form, :mod:`.export_records`).
    :param final: the final path.
    :param compression: ``None`` or ``"gzip"``.
    """

    def __init__(self, stream: str, final: ObjectStoragePath, compression: str | None) -> None:
        self.stream = stream
        self.final = final
        self.partial = final.parent / f"_{final.name}.{uuid.uuid4().hex}.partial"
        self.records = 0
        self._compression = compression
        self._raw: Any = None
        self._out: Any = None

    def __enter__(self) -> StreamFile:
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
        self._out.write(json_line(normalized(self.stream, record)))
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
        # the try failed: take the partial file away too; the task's own error is the one to report
        with contextlib.suppress(Exception):
            self.partial.unlink()


class AllOf:
    """Enter every stream file; leave them all (each moves into place, or is taken away on an error)."""

    def __init__(self, files: Iterable[StreamFile]) -> None:
        self._files = list(files)
        self._entered: list[StreamFile] = []

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


def stale_partials(
    folder: ObjectStoragePath, *, now: datetime | None = None, age: timedelta = STALE_PARTIAL_AGE
) -> list[ObjectStoragePath]:
    """
    Return the temporary files of ``folder`` that no running task can be writing.

    Named as :class:`StreamFile` names them, and not modified for ``age``. A final file is never one of them.
    """
    now = now or datetime.now(UTC)
    found = []
    for path in folder.iterdir():
        if not _PARTIAL.fullmatch(path.name):
            continue
        modified = _modified(path)
        if modified is not None and now - modified >= age:
            found.append(path)
    return found


def _modified(path: ObjectStoragePath) -> datetime | None:
    """When a file was last written, from the storage's own record (``None`` when it does not say)."""
    try:
        info = path.stat()
    except (OSError, ValueError):
        return None
    seconds = getattr(info, "st_mtime", None)
    if isinstance(seconds, (int, float)) and seconds > 0:
        return datetime.fromtimestamp(seconds, tz=UTC)
    return None


def stream_summary(file: StreamFile) -> dict[str, Any]:
    """Put the stream's schema beside its file; return what was written (the task's output for it)."""
    schema_path = file.final.parent / f"_schema.v{SCHEMA_VERSION}.json"
    schema_path.write_bytes(schema_bytes(file.stream))
    return {
        "path": str(file.final),
        "records": file.records,
        "schema": str(schema_path),
        "schema_version": SCHEMA_VERSION,
    }


def clean_partials(file: StreamFile, log: Any) -> None:
    """Remove what killed tries left in the stream's folder; a failure here fails nothing."""
    try:
        stale = stale_partials(file.final.parent)
        for path in stale:
            path.unlink()
    except Exception as err:
        log.warning(
            "Could not remove stale temporary files in %s (%s: %s)",
            file.final.parent,
            type(err).__name__,
            err,
        )
        return
    if stale:
        log.info(
            "Removed %d temporary file(s) left by killed tries in %s: %s",
            len(stale),
            file.final.parent,
            ", ".join(path.name for path in stale),
        )


class ExportProgress:
    """Which streams earlier tries of this task instance finished, in the task state store (Airflow 3.3)."""

    def __init__(self, store: Any, asked: list[Any], log: Any) -> None:
        self._record = TaskStateRecord(
            store,
            PROGRESS_KEY,
            version=RECORD_FORMAT,
            payload_key="done",
            asked=asked,
            log=log,
            other_input="An earlier try exported another window or path; exporting every stream.",
            unreadable="The export record of an earlier try is unreadable; exporting every stream.",
        )

    def load(
        self, base: ObjectStoragePath, finals: dict[str, ObjectStoragePath]
    ) -> dict[str, dict[str, Any]]:
        """Return the streams an earlier try finished whose files are still there."""

        def read(done: Any) -> dict[str, dict[str, Any]] | None:
            if not isinstance(done, dict) or not all(
                _is_entry(base, finals, stream, entry) for stream, entry in done.items()
            ):
                return None
            return done

        done = self._record.load(read) or {}
        return {stream: entry for stream, entry in done.items() if type(base)(entry["path"]).exists()}

    def save(self, done: dict[str, dict[str, Any]]) -> None:
        """Keep the streams finished so far."""
        self._record.save(done)


def _is_entry(base: ObjectStoragePath, finals: dict[str, ObjectStoragePath], stream: str, entry: Any) -> bool:
    """Whether a stream's entry of the record is one this export writes (its path where it belongs)."""
    if stream not in STREAMS or not isinstance(entry, dict):
        return False
    keys = {"path", "records", "schema", "schema_version"} | (
        {"taken_at"} if stream == "customers" else set()
    )
    if set(entry) != keys or not isinstance(entry["path"], str):
        return False
    if isinstance(entry["records"], bool) or not isinstance(entry["records"], int):
        return False
    if stream == "customers":
        folder, _, name = entry["path"].rpartition("/")
        return folder == str(base / "customers") and _SNAPSHOT.fullmatch(name) is not None
    return stream in finals and entry["path"] == str(finals[stream])
