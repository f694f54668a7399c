"""
The rules of polling HelpCrunch for changed chats, free of I/O and of time: the caller gives both.

HelpCrunch's search filters on ``chats.updatedAt`` but a chat does not carry it back, so the cursor is a time:
each poll asks for the chats changed since the previous poll started, less an ``overlap`` for clock skew and
index lag. A chat found again in the overlap whose watched fields are as reported is not reported again; one
whose watched fields differ, or that left the result and came back, is (it changed again). Nothing found is
skipped; a change can be reported twice only after a restart that lost the memory of it.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from airflow_provider_helpcrunch.client.checks import check_int, check_max_chats
from airflow_provider_helpcrunch.client.filters import normalize_filters
from airflow_provider_helpcrunch.exceptions import HelpCrunchConfigError

#: the shortest poll interval: one request a poll, so a watcher takes at most 4 of the account's 120 a minute.
MIN_POLL_INTERVAL = 15.0
DEFAULT_POLL_INTERVAL = 60.0
#: how far back of the previous poll's start a poll reaches: HelpCrunch's clock and index may lag ours.
DEFAULT_OVERLAP = 300.0
#: the most chat IDs one event carries (its ``count`` says how many changed in all).
DEFAULT_MAX_IDS = 1000
MAX_MAX_IDS = 10_000
#: the most chats remembered between polls (and kept across a restart) to tell a repeat from a change.
MAX_REMEMBERED = 5000
STATE_FORMAT = 1
#: the fields whose change makes a chat found again in the overlap a change: not the read flags or the snooze,
#: which write operators set (a DAG's own writes would start it again).
DEFAULT_WATCH_FIELDS = ("status", "assignee", "department", "closedAt", "lastMessageAt", "lastMessageId")


def filter_rows(filters: Any) -> list[list[Any]]:
    """
    Check ``filters`` as a search does, and return them as ``[field, operator, value]`` lists.

    A trigger's kwargs are hashed to identify it: lists of scalars hash the same in the DAG and in the
    database (a list of dicts does not, and the watcher would never attach).
    """
    return [[row["field"], row["operator"], row["value"]] for row in normalize_filters(filters)]


def check_poll_interval(seconds: Any, name: str = "poll_interval") -> float:
    """``poll_interval`` (or a sensor's ``poke_interval``): a number of seconds, at least the floor."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds >= MIN_POLL_INTERVAL:
        raise HelpCrunchConfigError(
            f"{name} must be at least {MIN_POLL_INTERVAL:g} seconds, a number (one request a poll: a "
            f"watcher stays under a few percent of the account's 120 a minute), got {seconds!r}"
        )
    return float(seconds)


def check_chat_counts(min_chats: Any, max_chats: Any) -> tuple[int, int | None]:
    """``min_chats`` (a positive int) and ``max_chats`` (``None``, or an int not below ``min_chats``)."""
    least, most = check_int(min_chats, "min_chats"), check_max_chats(max_chats)
    if most is not None and most < least:
        raise HelpCrunchConfigError(f"max_chats ({max_chats}) must be at least min_chats ({min_chats})")
    return least, most


def check_overlap(seconds: Any) -> float:
    """``overlap``: a number of seconds, 0 or more."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds < math.inf:
        raise HelpCrunchConfigError(f"overlap must be a number of seconds, 0 or more, got {seconds!r}")
    return float(seconds)


def check_max_ids(value: Any) -> int:
    """``max_ids``: how many chat IDs an event carries at most."""
    return check_int(value, "max_ids", maximum=MAX_MAX_IDS)


def check_watch_fields(fields: Any) -> list[str]:
    """``watch_fields``: chat field names, at least one."""
    if (
        isinstance(fields, str)
        or not isinstance(fields, (list, tuple))
        or not fields
        or not all(isinstance(field, str) and field.strip() for field in fields)
    ):
        raise HelpCrunchConfigError(f"watch_fields must be a list of chat field names, got {fields!r}")
    return [field.strip().removeprefix("chats.") for field in fields]


def fingerprint(chat: dict[str, Any], fields: list[str]) -> str:
    """Return what a chat's watched ``fields`` hold, in 16 hex digits: a change there looks different."""
    watched = {field: chat.get(field) for field in fields}
    text = json.dumps(watched, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class ChangeWatch:
    """
    A watcher's cursor and memory, and what each poll reports.

    :param overlap: how far back of the previous poll's start a poll reaches, in seconds.
    :param max_ids: the most chat IDs one event carries.
    :param watch_fields: the fields whose change makes a chat found again a change.
    """

    def __init__(self, *, overlap: float, max_ids: int, watch_fields: list[str] | None = None) -> None:
        self.overlap = overlap
        self.max_ids = max_ids
        self.watch_fields = list(watch_fields or DEFAULT_WATCH_FIELDS)
        self.cursor: float | None = None
        #: chat id -> (its fingerprint when reported, when it was reported)
        self.seen: dict[int, tuple[str, float]] = {}

    def since(self, now: float) -> int:
        """Return the ``updatedAt`` a poll starting ``now`` asks from (at first: the overlap before now)."""
        start = now if self.cursor is None else self.cursor
        return math.floor(start - self.overlap)

    def take(self, chats: list[dict[str, Any]], started: float) -> dict[str, Any] | None:
        """
        Take the chats a poll started at ``started`` found; return the event to send, or ``None``.

        The event says the window it covers (``since`` to the poll's start) and the changed chats' IDs, at
        most ``max_ids`` of them; ``count`` is how many changed in all.
        """
        since = self.since(started)
        # what was reported before this poll's reach cannot come back unchanged: it is not compared
        known = {chat_id: seen for chat_id, seen in self.seen.items() if seen[1] >= since}
        changed: list[int] = []
        present: dict[int, tuple[str, float]] = {}
        for chat in chats:
            look = fingerprint(chat, self.watch_fields)
            earlier = known.get(chat["id"])
            if earlier is None or earlier[0] != look:
                changed.append(chat["id"])
                present[chat["id"]] = (look, started)
            else:
                present[chat["id"]] = earlier
        # only the chats of this result are remembered: one that left it and comes back has changed
        self.seen = present
        self.cursor = started
        self._bound()
        if not changed:
            return None
        return {
            "chat_ids": changed[: self.max_ids],
            "count": len(changed),
            "truncated": len(changed) > self.max_ids,
            "window": {"start": since, "end": math.ceil(started)},
        }

    def _bound(self) -> None:
        """Keep the memory bounded."""
        if len(self.seen) > MAX_REMEMBERED:  # the oldest reports go first: at worst, reported once more
            newest = sorted(self.seen.items(), key=lambda item: item[1][1])[-MAX_REMEMBERED:]
            self.seen = dict(newest)

    # ------------------------------------------------------------------ kept across restarts

    def state(self) -> dict[str, Any]:
        """Return the cursor and memory as JSON, for the asset state store."""
        return {
            "format": STATE_FORMAT,
            "cursor": self.cursor,
            "seen": {str(chat_id): [look, at] for chat_id, (look, at) in self.seen.items()},
        }

    def restore(self, state: Any) -> bool:
        """Take a state written by :meth:`state`; return whether it was usable (else nothing is taken)."""
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            return False
        cursor, seen = state.get("cursor"), state.get("seen")
        if not isinstance(cursor, (int, float)) or isinstance(cursor, bool) or not isinstance(seen, dict):
            return False
        restored: dict[int, tuple[str, float]] = {}
        for key, value in seen.items():
            if not (isinstance(key, str) and key.isascii() and key.isdigit()):
                return False
            if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)):
                return False
            if isinstance(value[1], bool) or not isinstance(value[1], (int, float)):
                return False
            restored[int(key)] = (value[0], float(value[1]))
        self.cursor, self.seen = float(cursor), restored
        return True
