"""
Records in Airflow's task state store (3.3 and later).

A retry of the same task instance resumes from them where the earlier try stopped: :class:`TaskStateRecord`
(one versioned record per task instance, tied to its input by a fingerprint) and, on it, :class:`ChatProgress`
(how far a run of per-chat writes got). Clearing the task discards the store.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

#: what became of a chat: HelpCrunch confirmed the write (``DONE``), did not know the chat, or it was
#: skipped as already as wanted.
DONE, MISSING, SKIPPED = "done", "missing", "skipped"
#: the record's key in the task state store, per kind of write (``MarkChatReadOperator``'s is "mark").
PROGRESS_KEY = "helpcrunch_{}_progress"
#: format 1 (up to 0.x) counted chats skipped as unchanged among the done; it is not read.
RECORD_FORMAT = 2
#: the largest record kept; Airflow warns past 64 KB.
MAX_RECORD_BYTES = 60_000
#: the record's runs: "m" done (marked), "x" missing (404), "." nothing confirmed (not sent, or skipped).
_CODES = {DONE: "m", MISSING: "x"}
_NOTHING = "."
_OUTCOMES = {code: outcome for outcome, code in _CODES.items()}
_RUNS = re.compile(r"(?:[mx.][1-9][0-9]{0,8})*")
_RUN = re.compile(r"([mx.])([0-9]+)")


class StateStore(Protocol):
    """What this module needs of ``context["task_state_store"]``."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...


class Log(Protocol):
    """A logger: the operator's (stdlib on Airflow 2, structlog-backed on Airflow 3)."""

    def warning(self, msg: Any, /, *args: Any, **kwargs: Any) -> Any: ...


def fingerprint(chat_ids: Sequence[int], *asked: Any) -> str:
    """Identify the input: the chats, in order, and what is asked of them (e.g. ``"agent", True``)."""
    return _digest([*asked, list(chat_ids)])


def _digest(parts: Any) -> str:
    text = json.dumps(parts, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class TaskStateRecord:
    """
    One record of a task instance in the task state store.

    ``{"format", "fingerprint", <payload_key>}``. A record of another format, or for another input, or not of
    that shape, is not used (and said so).

    :param store: the task state store, or ``None`` where there is none (then nothing is kept).
    :param key: the record's key.
    :param version: the format this code writes.
    :param payload_key: the key of what the record holds.
    :param asked: what identifies the input (JSON-able; other values by their ``str``).
    :param log: where to say why a record is not used.
    :param other_input: what to say of a record for another input.
    :param unreadable: what to say of a record not of the shape this version writes.
    """

    def __init__(
        self,
        store: StateStore | None,
        key: str,
        *,
        version: int,
        payload_key: str,
        asked: Any,
        log: Log,
        other_input: str,
        unreadable: str,
    ) -> None:
        self._store = store
        self.key = key
        self._version = version
        self._payload_key = payload_key
        self.fingerprint = _digest(asked)
        self._log = log
        self._other_input = other_input
        self._unreadable = unreadable

    def load(self, read: Callable[[Any], Any | None]) -> Any | None:
        """
        Return the payload an earlier try kept, as ``read`` makes it, or ``None``.

        ``read`` gives ``None`` for a payload not of the shape this version writes.
        """
        if self._store is None:
            return None
        record = self._store.get(self.key)
        if record is None:
            return None
        if (
            isinstance(record, dict)
            and set(record) == {"format", "fingerprint", self._payload_key}
            and record["format"] == self._version
            and isinstance(record["fingerprint"], str)
        ):
            if record["fingerprint"] != self.fingerprint:
                self._log.warning(self._other_input)
                return None
            payload = read(record[self._payload_key])
            if payload is not None:
                return payload
        self._log.warning(self._unreadable)
        return None

    def record(self, payload: Any) -> dict[str, Any]:
        """Return the record that keeps ``payload``."""
        return {"format": self._version, "fingerprint": self.fingerprint, self._payload_key: payload}

    def save(self, payload: Any) -> None:
        """Keep ``payload`` (nothing where there is no store)."""
        if self._store is not None:
            self._store.set(self.key, self.record(payload))


class ChatProgress:
    """
    One compact record per task instance.

    The input's fingerprint and, position by position in the input, what HelpCrunch confirmed for each chat,
    as runs (``"m40x1m9.3m2"``: 40 marked, 1 missing, 9 marked, 3 with nothing confirmed, 2 marked). Only what
    HelpCrunch answered is kept: a chat skipped as unchanged is not, so a retry judges it again on its own
    input.

    :param store: the task state store.
    :param name: the kind of write (``"mark"``, ``"status"``...): the record's key.
    :param chat_ids: the input, in order.
    :param asked: what is asked of every chat (for marking: ``by``, ``read``), part of the fingerprint.
    :param log: where to say what was resumed or why not.
    """

    def __init__(
        self, store: StateStore, name: str, chat_ids: Sequence[int], asked: Sequence[Any], log: Log
    ) -> None:
        self._chat_ids = chat_ids
        self._log = log
        self._record = TaskStateRecord(
            store,
            PROGRESS_KEY.format(name),
            version=RECORD_FORMAT,
            payload_key="runs",
            asked=[*asked, list(chat_ids)],
            log=log,
            other_input="The chat IDs differ from those an earlier try of this task worked on; "
            "starting over.",
            unreadable="The progress record of an earlier try is unreadable (not the shape this version "
            "writes); starting over.",
        )
        self.key = self._record.key
        self.fingerprint = self._record.fingerprint
        self._too_large_said = False

    def load(self) -> dict[int, str]:
        """Return what earlier tries had confirmed (chat -> ``done`` or ``missing``); empty to start over."""
        return self._record.load(self._outcomes) or {}

    def _outcomes(self, runs: Any) -> dict[int, str] | None:
        """Return the outcomes in a record's runs, or ``None`` unless they are as :meth:`save` writes them."""
        if not isinstance(runs, str) or len(runs) > MAX_RECORD_BYTES or not _RUNS.fullmatch(runs):
            return None
        chat_ids = self._chat_ids
        outcomes: dict[int, str] = {}
        position = 0
        for code, count in _RUN.findall(runs):
            end = position + int(count)
            if end > len(chat_ids):
                return None
            if code != _NOTHING:
                outcomes.update(dict.fromkeys(chat_ids[position:end], _OUTCOMES[code]))
            position = end
        return outcomes

    def save(self, outcomes: Mapping[int, str]) -> None:
        """
        Write the record for ``outcomes`` (every chat with an outcome so far, this try's and earlier ones').

        Only ``done`` and ``missing`` are kept.
        """
        codes = (_CODES.get(outcomes.get(chat_id, ""), _NOTHING) for chat_id in self._chat_ids)
        runs = [(code, sum(1 for _ in group)) for code, group in itertools.groupby(codes)]
        if runs and runs[-1][0] == _NOTHING:
            runs.pop()
        record = self._record.record("".join(f"{code}{count}" for code, count in runs))
        size = len(json.dumps(record, separators=(",", ":")))
        if size > MAX_RECORD_BYTES:
            if not self._too_large_said:
                self._too_large_said = True
                self._log.warning(
                    "The progress record (%d bytes, %d runs of outcomes) is too large to keep; a retry "
                    "resumes from the last record that fitted.",
                    size,
                    len(runs),
                )
            return
        self._record.save(record["runs"])
