"""
The engine of every per-chat write (marking read, status, assignee, department, snooze).

One chat at a time through the client's pacer, in input order, ``max_in_flight`` under way, nothing sent after
a stop, chats already as wanted skipped, a retry resumed from the task state store, progress lines, and one
account of what was done. An operator plugs in a :class:`ChatWrite`: the changes each chat gets, checked once,
and the words its log lines use.
"""

from __future__ import annotations

import itertools
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from airflow_provider_helpcrunch.client.rate_limit import rate_per_minute
from airflow_provider_helpcrunch.client.sending import RATE_LIMITED_ADVICE
from airflow_provider_helpcrunch.exceptions import (
    HelpCrunchCancelledError,
    HelpCrunchError,
    HelpCrunchNotFoundError,
)
from airflow_provider_helpcrunch.operators.chat_ids import normalize_chat_ids
from airflow_provider_helpcrunch.operators.task_state import DONE, MISSING, SKIPPED, ChatProgress

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from contextlib import AbstractContextManager

    from airflow_provider_helpcrunch.client.changes import ChatChange
    from airflow_provider_helpcrunch.client.sending import RequestStats
    from airflow_provider_helpcrunch.operators.task_state import StateStore

ON_MISSING_CHOICES = ("fail", "skip")

#: seconds between two writes of the progress record (never one per request).
PROGRESS_SAVE_INTERVAL = 5.0
_MAX_IDS_IN_MESSAGE = 50


class Pacer(Protocol):
    """What the engine needs of the client's pacer: places in its queue, in input order."""

    def take_ticket(self) -> int: ...

    def abandon(self, ticket: int) -> None: ...


class ChatClient(Protocol):
    """What the engine needs of :class:`~airflow_provider_helpcrunch.client.HelpCrunchClient`."""

    @property
    def rate_limiter(self) -> Pacer: ...

    @property
    def stats(self) -> RequestStats: ...

    def placed(
        self, *, ticket: int | None = None, cancel: threading.Event | None = None
    ) -> AbstractContextManager[None]: ...

    def apply(self, chat_id: int, change: ChatChange) -> object: ...


class EngineLog(Protocol):
    """The operator's logger."""

    def info(self, msg: Any, /, *args: Any, **kwargs: Any) -> Any: ...

    def warning(self, msg: Any, /, *args: Any, **kwargs: Any) -> Any: ...

    def error(self, msg: Any, /, *args: Any, **kwargs: Any) -> Any: ...


class Words(NamedTuple):
    """
    How the log lines speak of one kind of write.

    :param verb: ``"mark"``; ``doing``: ``"Marking"``; ``done``: ``"marked"``.
    :param goal: what is done to each chat, after the verb: ``"read by agent"``, ``"to status 'closed'"``.
    :param state: how a chat already as wanted is: ``"read by agent"``, ``"in status 'closed'"``.
    :param short: the same, shorter, for ``"(already ...)"``: ``"read"``, ``"closed"``.
    """

    verb: str
    doing: str
    done: str
    goal: str
    state: str
    short: str


@dataclass(frozen=True)
class ChatWrite:
    """
    One kind of per-chat write, its values parsed once.

    :param name: the kind (``"mark"``, ``"status"``...): the key of its progress record.
    :param asked: the parsed values asked of every chat (e.g. ``{"by": "agent", "read": True}``): the task's
        output repeats them, and they identify the input with the IDs.
    :param changes: what each chat gets, in order; a chat is done once HelpCrunch confirmed every one.
    :param words: how the log lines speak of it.
    """

    name: str
    asked: Mapping[str, Any]
    changes: tuple[ChatChange, ...]
    words: Words

    def is_unchanged(self, chat: Mapping[str, Any]) -> bool:
        """Whether a chat dict of the input already shows every change (then it is skipped)."""
        return all(change.shows(chat) for change in self.changes)


@dataclass
class Tally:
    """What became of every chat of the input, each list in input order (earlier tries included)."""

    chat_ids: list[int]
    outcomes: dict[int, str] = field(default_factory=dict)

    def _of(self, outcome: str | None) -> list[int]:
        return [chat_id for chat_id in self.chat_ids if self.outcomes.get(chat_id) == outcome]

    @property
    def done(self) -> list[int]:
        return self._of(DONE)

    @property
    def missing(self) -> list[int]:
        return self._of(MISSING)

    @property
    def skipped(self) -> list[int]:
        return self._of(SKIPPED)

    @property
    def not_done(self) -> list[int]:
        return self._of(None)


def _then(words: str) -> str:
    """``words`` after a space, or nothing for no words."""
    return f" {words}" if words else ""


def id_list(ids: Sequence[int]) -> str:
    """``[1, 2, 3]``, cut after 50 IDs with how many more there are."""
    shown = ", ".join(str(i) for i in ids[:_MAX_IDS_IN_MESSAGE])
    more = f", ... ({len(ids) - _MAX_IDS_IN_MESSAGE} more)" if len(ids) > _MAX_IDS_IN_MESSAGE else ""
    return f"[{shown}{more}]"


class ChatWriteEngine:
    """
    Run one :class:`ChatWrite` over the chats of an input.

    :param write: the kind of write.
    :param client: gives the client that sends the writes (``lambda: hook.client``), when it is needed.
    :param pace: how the hook paces, in words (``hook.pace``).
    :param where: the API base URL, for the log.
    :param log: the operator's logger.
    :param on_missing: ``"fail"``: a chat HelpCrunch does not know fails the run at the end; ``"skip"``:
        a warning.
    :param max_in_flight: chats under way at once.
    :param progress_interval: seconds between two progress lines.
    :param skip_unchanged: skip chat dicts that already are as wanted.
    :param resume: keep a progress record in the task state store, and resume from it.
    :param clock: a monotonic clock for the progress lines and record writes.
    """

    def __init__(
        self,
        write: ChatWrite,
        *,
        client: Callable[[], ChatClient],
        pace: Callable[[], str],
        where: Callable[[], str],
        log: EngineLog,
        on_missing: str = "fail",
        max_in_flight: int = 4,
        progress_interval: float = 10.0,
        skip_unchanged: bool = True,
        resume: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.write = write
        self._client = client
        self._pace = pace
        self._where = where
        self.log = log
        self.on_missing = on_missing
        self.max_in_flight = max_in_flight
        self.progress_interval = progress_interval
        self.skip_unchanged = skip_unchanged
        self.resume = resume
        self._clock = clock

    def run(self, sources: Iterable[Any], *, store: StateStore | None = None, try_number: int = 1) -> Tally:
        """
        Write every chat of ``sources`` (XCom values of any supported shape); the tally of what was done.

        :param store: ``context["task_state_store"]`` (Airflow 3.3 and later), or ``None``.
        :param try_number: the task instance's try, to say so when a retry cannot resume.
        :raises InvalidChatIdsError: before anything is sent, for any item that is not a chat ID.
        :raises HelpCrunchNotFoundError: at the end, with ``on_missing="fail"``, if a chat was not found.
        :raises HelpCrunchError: the error that stopped the run, saying what was done and what was not.
        """
        tally = self._collect(sources)
        if not tally.chat_ids:
            self.log.info("No chat IDs to %s; nothing was sent to HelpCrunch.", self.write.words.verb)
            return tally
        progress = self._resume(tally, store, try_number)
        to_send = [chat_id for chat_id in tally.chat_ids if chat_id not in tally.outcomes]
        words = self.write.words
        self.log.info(
            "%s %d chat(s)%s %s (%s)",
            words.doing,
            len(to_send),
            _then(words.goal),
            self._pace(),
            self._where(),
        )
        started = self._clock()
        self._write_all(tally, to_send, started, progress)
        self._report(tally, len(to_send), self._clock() - started)
        return tally

    def _collect(self, sources: Iterable[Any]) -> Tally:
        """Read the chat IDs of ``sources`` (nothing sent): the tally, the chats unchanged already skipped."""
        write = self.write
        collected = normalize_chat_ids(
            *sources, is_unchanged=write.is_unchanged if self.skip_unchanged else None
        )
        if collected.nulls:
            self.log.warning("Ignored %d null item(s) in the chat IDs received", collected.nulls)
        tally = Tally(collected.ids)
        if collected.received > len(tally.chat_ids):
            duplicates = collected.received - len(tally.chat_ids)
            self.log.info("%d duplicate chat ID(s) will be %s once", duplicates, write.words.done)
        tally.outcomes.update(dict.fromkeys(collected.unchanged, SKIPPED))
        return tally

    def _resume(self, tally: Tally, store: StateStore | None, try_number: int) -> ChatProgress | None:
        """Take in what earlier tries had confirmed; return the progress record (where there is one)."""
        progress = self._progress(store, tally.chat_ids, try_number)
        if progress is not None:
            earlier = progress.load()
            if earlier:
                self.log.info(
                    "Resuming: %s of %s chats were done by earlier tries",
                    f"{len(earlier):,}",
                    f"{len(tally.chat_ids):,}",
                )
            # what HelpCrunch confirmed to an earlier try stands; a chat skipped then is judged on this input
            tally.outcomes.update(earlier)
        unchanged = sum(1 for outcome in tally.outcomes.values() if outcome == SKIPPED)
        if unchanged:
            self.log.info(
                "%d chat(s) are %s already (as the input shows): skipped", unchanged, self.write.words.state
            )
        return progress

    def _report(self, tally: Tally, sent: int, elapsed: float) -> None:
        """Log what the run did and cost; with ``on_missing="fail"``, raise at the end for missing chats."""
        words = self.write.words
        done, missing, skipped = tally.done, tally.missing, tally.skipped
        stats = self._client().stats
        self.log.info(
            "Done: %d of %d chat(s) %s%s, %d skipped (already %s), %d missing; %d sent in %.1f s "
            "(%.1f chats/min; %spaced %s)",
            len(done),
            len(tally.chat_ids),
            words.done,
            _then(words.goal),
            len(skipped),
            words.short,
            len(missing),
            sent,
            elapsed,
            rate_per_minute(sent, elapsed),
            f"{stats.describe()}, ",
            self._pace(),
        )
        if stats.rate_limited:
            self.log.warning(RATE_LIMITED_ADVICE)
        if missing:
            message = (
                f"{len(missing)} of {len(tally.chat_ids)} chat(s) were not found in HelpCrunch: "
                f"{id_list(missing)}; the other {len(done)} were {words.done}{_then(words.goal)}"
                + (f" ({len(skipped)} were {words.short} already)." if skipped else ".")
            )
            if self.on_missing == "fail":
                raise HelpCrunchNotFoundError(message + " Set on_missing='skip' to let this succeed.")
            self.log.warning(message)

    def _progress(
        self, store: StateStore | None, chat_ids: list[int], try_number: int
    ) -> ChatProgress | None:
        """Return the progress record of this task instance, where Airflow keeps one (3.3 and later)."""
        if not self.resume:
            return None
        if store is None:
            if try_number > 1:
                self.log.warning(
                    "This is a retry, but resuming where an earlier try stopped needs Airflow 3.3 or later "
                    "(its task state store): every chat is sent again (each write sets the same state "
                    "again, so this is safe)."
                )
            return None
        return ChatProgress(store, self.write.name, chat_ids, tuple(self.write.asked.values()), self.log)

    def _write_one(self, chat_id: int, ticket: int, stop: threading.Event) -> str | None:
        """Write one chat: its outcome, or ``None`` when the run stopped before it was sent."""
        client = self._client()
        try:
            with client.placed(ticket=ticket, cancel=stop):  # the first request takes the chat's place
                for change in self.write.changes:
                    client.apply(chat_id, change)
        except HelpCrunchNotFoundError:
            self.log.warning("Chat %d was not found in HelpCrunch", chat_id)
            return MISSING
        except HelpCrunchCancelledError:
            return None
        except BaseException:
            stop.set()  # decided here, before any other request can leave the pacer
            raise
        finally:
            client.rate_limiter.abandon(ticket)  # a no-op once the ticket was served
        return DONE

    def _write_all(
        self, tally: Tally, to_send: list[int], started: float, progress: ChatProgress | None
    ) -> None:
        """
        Write the chats ``to_send``, at most ``max_in_flight`` at a time, all through the client's one pacer.

        The pacer sends them in input order (each takes its place in its queue here, in order).

        Each chat's outcome goes into the tally (which holds the skipped and earlier ones already), and the
        progress record is written every few seconds and once more at the end or at a stop. On an error
        other than a 404 no request leaves after the stop is decided; those already sent finish, and the
        error says what was done and what was not.
        """
        run = _WriteRun(self, tally, to_send, started, progress)
        try:
            run.start()
            while run.pending:
                finished, _ = wait(run.pending, timeout=1.0, return_when=FIRST_COMPLETED)
                run.collect(finished)
                run.tick()
        except BaseException as err:  # a task timeout, a kill, a bug: still say how far the run got
            not_done = tally.not_done
            self.log.error(
                "Interrupted by %s: %d chat(s) %s, %d not found, %d not done %s",
                type(err).__name__,
                len(tally.done),
                self.write.words.done,
                len(tally.missing),
                len(not_done),
                id_list(not_done),
            )
            raise
        finally:
            run.close()
        if run.failure is not None:
            raise self._stopped(*run.failure, tally) from run.failure[1]

    def _save_progress(self, progress: ChatProgress, outcomes: dict[int, str]) -> None:
        """
        Write the progress record a last time, at the end or at a stop.

        A failure to write it must not hide the task's own.
        """
        try:
            progress.save(outcomes)
        except Exception as err:
            self.log.warning("Could not write the progress record (%s): a retry may send chats again", err)

    def _log_progress(self, done: int, total: int, missing: int, elapsed: float) -> None:
        rate = rate_per_minute(done, elapsed)
        left = f"about {(total - done) / rate * 60:.0f} s left" if rate else "time left not known yet"
        self.log.info(
            "Progress: %d/%d chats (%.0f%%), %d missing, %.1f chats/min, %s",
            done,
            total,
            100 * done / total,
            missing,
            rate,
            left,
        )

    def _stopped(self, chat_id: int, err: HelpCrunchError, tally: Tally) -> HelpCrunchError:
        """Return the same kind of error, saying what was done before the stop and what was not."""
        chat_ids = tally.chat_ids
        skipped, not_done = tally.skipped, tally.not_done
        unchanged = f"{len(skipped)} skipped as unchanged, " if skipped else ""
        message = (
            f"Stopped at chat {chat_id} ({chat_ids.index(chat_id) + 1} of {len(chat_ids)}): "
            f"{len(tally.done)} chat(s) were {self.write.words.done} before the stop, {unchanged}"
            f"{len(tally.missing)} not found, {len(not_done)} not done {id_list(not_done)}. Cause: {err}"
        )
        self.log.error(message)
        return err.restated(message)


class _WriteRun:
    """
    One run of :meth:`ChatWriteEngine._write_all`: the chats under way and their places at the pacer.

    Once a write fails (other than a 404) or the run is stopped, no further chat is started.
    """

    def __init__(
        self,
        engine: ChatWriteEngine,
        tally: Tally,
        to_send: list[int],
        started: float,
        progress: ChatProgress | None,
    ) -> None:
        self._engine = engine
        self._tally = tally
        self._known = len(tally.outcomes)
        self._total = len(to_send)
        self._queue = iter(to_send)
        self._started = self._last_report = self._last_save = started
        self._progress = progress
        self._pacer = engine._client().rate_limiter
        self._pool = ThreadPoolExecutor(
            max_workers=engine.max_in_flight, thread_name_prefix="helpcrunch-write"
        )
        self.stop = threading.Event()
        self.pending: dict[Future[str | None], int] = {}
        self._tickets: dict[Future[str | None], int] = {}
        self.failure: tuple[int, HelpCrunchError] | None = None

    def start(self) -> None:
        """Start the first ``max_in_flight`` chats, each with its place in the pacer's queue."""
        for chat_id in itertools.islice(self._queue, self._engine.max_in_flight):
            self._submit(chat_id)

    def _submit(self, chat_id: int) -> None:
        ticket = self._pacer.take_ticket()
        future = self._pool.submit(self._engine._write_one, chat_id, ticket, self.stop)
        self.pending[future] = chat_id
        self._tickets[future] = ticket

    def collect(self, finished: Iterable[Future[str | None]]) -> None:
        """Take the outcomes of the ``finished`` writes, and start as many chats, unless the run stopped."""
        for future in finished:
            chat_id = self.pending.pop(future)
            try:
                outcome = future.result()
            except HelpCrunchError as err:
                self.failure = self.failure or (chat_id, err)
            else:
                if outcome is not None:
                    self._tally.outcomes[chat_id] = outcome
            following = None if self.failure or self.stop.is_set() else next(self._queue, None)
            if following is not None:
                self._submit(following)

    def tick(self) -> None:
        """Write the progress record every few seconds, and a progress line every ``progress_interval``."""
        engine, outcomes = self._engine, self._tally.outcomes
        now = engine._clock()
        if self._progress is not None and now - self._last_save >= PROGRESS_SAVE_INTERVAL:
            self._last_save = now
            self._progress.save(outcomes)
        if now - self._last_report >= engine.progress_interval:
            self._last_report = now
            done = len(outcomes) - self._known
            engine._log_progress(done, self._total, len(self._tally.missing), now - self._started)

    def close(self) -> None:
        """Stop: wait for the writes under way, give back the places never used, and save the progress."""
        self.stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        for future, ticket in self._tickets.items():
            if future.cancelled():  # never ran: its place in the pacer's queue goes back
                self._pacer.abandon(ticket)
        if self._progress is not None:
            self._engine._save_progress(self._progress, self._tally.outcomes)
