"""
How far ``MarkChatReadOperator`` got, kept in Airflow's task state store (3.3 and later) so that a retry of
the same task instance resumes where the earlier try stopped. Clearing the task discards the store.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

#: what became of a chat.
MARKED, MISSING, SKIPPED = "marked", "missing", "skipped"
PROGRESS_KEY = "helpcrunch_mark_progress"
RECORD_FORMAT = 1
#: the largest record kept; Airflow warns past 64 KB.
MAX_RECORD_BYTES = 60_000
_CODES = {MARKED: "m", MISSING: "x"}
_OUTCOMES = {code: outcome for outcome, code in _CODES.items()}


class StateStore(Protocol):
    """What this module needs of ``context["task_state_store"]``."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...


class Log(Protocol):
    """A logger: the operator's (stdlib on Airflow 2, structlog-backed on Airflow 3)."""

    def warning(self, msg: Any, /, *args: Any, **kwargs: Any) -> Any: ...


def fingerprint(chat_ids: Sequence[int], by: str, read: bool) -> str:
    """Identifies the input: the chats, in order, and what is asked of them."""
    digest = hashlib.sha256(json.dumps([by, read, list(chat_ids)], separators=(",", ":")).encode())
    return digest.hexdigest()[:32]


class MarkProgress:
    """
    One compact record per task instance: the input's fingerprint, a watermark below which every chat is
    done, the chats below it that were missing, and the few done beyond it (requests leave in input order,
    so those are at most the ones that were in flight). Chats skipped as unchanged are not stored: the same
    input skips them again.

    :param store: the task state store.
    :param chat_ids: the input, in order.
    :param by: ``"agent"`` or ``"customer"``.
    :param read: what is asked.
    :param log: where to say what was resumed or why not.
    """

    def __init__(self, store: StateStore, chat_ids: Sequence[int], by: str, read: bool, log: Log) -> None:
        self._store = store
        self._chat_ids = chat_ids
        self._log = log
        self.fingerprint = fingerprint(chat_ids, by, read)
        self._too_large_said = False

    def load(self) -> dict[int, str]:
        """What earlier tries did (chat -> ``marked`` or ``missing``); empty to start over."""
        record = self._store.get(PROGRESS_KEY)
        if record is None:
            return {}
        if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT:
            self._log.warning(
                "The progress record of an earlier try is not one this version reads; starting over."
            )
            return {}
        if record.get("fingerprint") != self.fingerprint:
            self._log.warning(
                "The chat IDs differ from those an earlier try of this task worked on; starting over."
            )
            return {}
        try:
            return self._outcomes(record)
        except (TypeError, ValueError, KeyError, IndexError):
            self._log.warning("The progress record of an earlier try is unreadable; starting over.")
            return {}

    def _outcomes(self, record: dict[str, Any]) -> dict[int, str]:
        chat_ids = self._chat_ids
        below = record["done_below"]
        if isinstance(below, bool) or not isinstance(below, int) or not 0 <= below <= len(chat_ids):
            raise ValueError(below)
        missing = set(record["missing"])
        outcomes = {chat_ids[i]: MISSING if i in missing else MARKED for i in range(below)}
        for position, code in record["beyond"].items():
            index = int(position)
            if not below <= index < len(chat_ids):
                raise IndexError(index)
            outcomes[chat_ids[index]] = _OUTCOMES[code]
        return outcomes

    def save(self, outcomes: Mapping[int, str]) -> None:
        """Write the record for ``outcomes`` (every chat done so far, this try's and earlier ones')."""
        chat_ids = self._chat_ids
        below = 0
        while below < len(chat_ids) and chat_ids[below] in outcomes:
            below += 1
        missing = [i for i in range(below) if outcomes[chat_ids[i]] == MISSING]
        record = {
            "format": RECORD_FORMAT,
            "fingerprint": self.fingerprint,
            "done_below": below,
            "missing": missing,
            "beyond": {
                str(i): _CODES[outcomes[chat_ids[i]]]
                for i in range(below, len(chat_ids))
                if outcomes.get(chat_ids[i]) in _CODES
            },
        }
        size = len(json.dumps(record, separators=(",", ":")))
        if size > MAX_RECORD_BYTES:
            if not self._too_large_said:
                self._too_large_said = True
                self._log.warning(
                    "The progress record (%d bytes, %d missing chats) is too large to keep; a retry resumes "
                    "from the last record that fitted.",
                    size,
                    len(missing),
                )
            return
        self._store.set(PROGRESS_KEY, record)
