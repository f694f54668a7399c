"""Operators for HelpCrunch."""

from __future__ import annotations

import itertools
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_provider_helpcrunch.chat_ids import normalize_chat_ids
from airflow_provider_helpcrunch.exceptions import (
    HelpCrunchCancelledError,
    HelpCrunchConfigError,
    HelpCrunchError,
    HelpCrunchNotFoundError,
)
from airflow_provider_helpcrunch.hooks.helpcrunch import MAX_CONNECTIONS, HelpCrunchHook, unread_filter
from airflow_provider_helpcrunch.progress import MARKED, MISSING, SKIPPED, MarkProgress
from airflow_provider_helpcrunch.rate_limit import rate_per_minute
from airflow_provider_helpcrunch.validation import (
    READ_FIELDS,
    ReadBy,
    check_bool,
    check_by,
    check_int,
    check_max_chats,
    check_read,
    check_unless_template,
    check_unread_by,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.providers.common.compat.sdk import Context

ON_MISSING_CHOICES = ("fail", "skip")
#: seconds between two writes of the progress record (never one per request).
PROGRESS_SAVE_INTERVAL = 5.0
MAX_IN_FLIGHT = MAX_CONNECTIONS
_MAX_IDS_IN_MESSAGE = 50


def _id_list(ids: Sequence[int]) -> str:
    shown = ", ".join(str(i) for i in ids[:_MAX_IDS_IN_MESSAGE])
    more = f", ... ({len(ids) - _MAX_IDS_IN_MESSAGE} more)" if len(ids) > _MAX_IDS_IN_MESSAGE else ""
    return f"[{shown}{more}]"


class BaseHelpCrunchOperator(BaseOperator):
    """
    What every HelpCrunch operator shares: the connection and the hook's overrides.

    :param helpcrunch_conn_id: the Airflow connection with the HelpCrunch API key.
    :param requests_per_minute: overrides the connection's pace (e.g. a share of the limit per mapped task).
    :param timeout: overrides the connection's timeout, in seconds.
    :param max_retries: overrides the connection's retries per request.
    :param redis_conn_id: overrides the connection's Redis connection, through which every task that uses the
        account shares one request window.
    """

    ui_color = "#d9e8ff"
    ui_fgcolor = "#0b2a5b"

    def __init__(
        self,
        *,
        helpcrunch_conn_id: str = HelpCrunchHook.default_conn_name,
        requests_per_minute: int | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        redis_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.helpcrunch_conn_id = helpcrunch_conn_id
        self.requests_per_minute = requests_per_minute
        self.timeout = timeout
        self.max_retries = max_retries
        self.redis_conn_id = redis_conn_id

    @cached_property
    def hook(self) -> HelpCrunchHook:
        return HelpCrunchHook(
            helpcrunch_conn_id=self.helpcrunch_conn_id,
            requests_per_minute=self.requests_per_minute,
            timeout=self.timeout,
            max_retries=self.max_retries,
            redis_conn_id=self.redis_conn_id,
        )


class MarkChatReadOperator(BaseHelpCrunchOperator):
    """
    Mark HelpCrunch chats read (or unread), by the agent or by the customer.

    The chat IDs usually come from an upstream task through XCom: pass its output (``chat_ids=find()``
    or ``chat_ids=op.output``), a Jinja string (``"{{ ti.xcom_pull(task_ids='find') }}"``), or name the
    tasks in ``xcom_task_ids``. Items may be ints, numeric strings, chat dicts with an ``"id"``, or
    lists of those nested to any depth; duplicates are marked once. Invalid items fail the task before
    anything is sent.

    A chat HelpCrunch does not know (404) is recorded and the run goes on; ``on_missing`` decides what
    that does at the end. An auth error stops at once; a 429, 5xx or network error that outlives the
    hook's retries stops the task, saying how many chats were marked and which one failed.

    Chat dicts that already show the state asked for (``readByAgent`` / ``readByCustomer``) are skipped
    (``skip_unchanged``); plain IDs are always sent. On Airflow 3.3 and later a retry of the task resumes
    where the earlier try stopped (``resume``), from a small progress record in the task state store.

    Returns (XCom ``return_value``): ``{"marked": [...], "missing": [...], "skipped": [...], "by": ...,
    "read": ..., "requested": n}``, each list in input order and covering earlier tries.

    :param chat_ids: the chats to mark (templated). ``None`` or empty marks nothing and succeeds.
    :param by: ``"agent"`` or ``"customer"`` (templated).
    :param read: ``True`` marks read, ``False`` marks unread.
    :param on_missing: ``"fail"`` (default) fails the task at the end if any chat was not found;
        ``"skip"`` logs a warning and succeeds.
    :param xcom_task_ids: task ID(s) to pull chat IDs from, added to ``chat_ids`` (templated).
    :param xcom_key: the XCom key to pull with ``xcom_task_ids`` (templated).
    :param max_in_flight: chats under way at once (1 to 32). The pace stays at ``requests_per_minute``
        either way; more in flight keeps it there when HelpCrunch is slow to answer.
    :param progress_interval: seconds between two progress lines in the task log.
    :param skip_unchanged: skip chat dicts whose read field already is ``read`` (default ``True``).
    :param resume: on Airflow 3.3 and later, let a retry skip what earlier tries of this task instance did
        (default ``True``); ``False`` always starts over.

    ``helpcrunch_conn_id``, ``requests_per_minute``, ``timeout`` and ``max_retries`` are as for
    :class:`BaseHelpCrunchOperator`.
    """

    template_fields: Sequence[str] = ("chat_ids", "by", "xcom_task_ids", "xcom_key")

    def __init__(
        self,
        *,
        chat_ids: Any = None,
        by: str = "agent",
        read: bool = True,
        on_missing: str = "fail",
        xcom_task_ids: str | list[str] | None = None,
        xcom_key: str = "return_value",
        max_in_flight: int = 4,
        progress_interval: float = 10.0,
        skip_unchanged: bool = True,
        resume: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if on_missing not in ON_MISSING_CHOICES:
            raise HelpCrunchConfigError(f"on_missing must be 'fail' or 'skip', got {on_missing!r}")
        check_read(read)
        check_bool(skip_unchanged, "skip_unchanged")
        check_bool(resume, "resume")
        check_int(max_in_flight, "max_in_flight", maximum=MAX_IN_FLIGHT)
        check_unless_template(by, check_by)
        self.chat_ids = chat_ids
        self.by = by
        self.read = read
        self.on_missing = on_missing
        self.xcom_task_ids = xcom_task_ids
        self.xcom_key = xcom_key
        self.max_in_flight = max_in_flight
        self.progress_interval = progress_interval
        self.skip_unchanged = skip_unchanged
        self.resume = resume

    def execute(self, context: Context) -> dict[str, Any]:
        by = check_by(self.by)
        sources = [self.chat_ids]
        if self.xcom_task_ids:
            sources.append(context["ti"].xcom_pull(task_ids=self.xcom_task_ids, key=self.xcom_key))
        state = (READ_FIELDS[by], self.read) if self.skip_unchanged else None
        collected = normalize_chat_ids(*sources, state=state)
        if collected.nulls:
            self.log.warning("Ignored %d null item(s) in the chat IDs received", collected.nulls)
        chat_ids = collected.ids
        if collected.received > len(chat_ids):
            self.log.info("%d duplicate chat ID(s) will be marked once", collected.received - len(chat_ids))
        result: dict[str, Any] = {
            "marked": [],
            "missing": [],
            "skipped": [],
            "by": by,
            "read": self.read,
            "requested": len(chat_ids),
        }
        if not chat_ids:
            self.log.info("No chat IDs to mark; nothing was sent to HelpCrunch.")
            return result

        verb = "read" if self.read else "unread"
        outcomes: dict[int, str] = dict.fromkeys(collected.unchanged, SKIPPED)
        progress = self._progress(context, chat_ids, by)
        if progress is not None:
            earlier = progress.load()
            if earlier:
                self.log.info(
                    "Resuming: %s of %s chats were done by earlier tries",
                    f"{len(earlier):,}",
                    f"{len(chat_ids):,}",
                )
            # what HelpCrunch confirmed to an earlier try stands; a chat skipped then is judged on this input
            outcomes.update(earlier)
        unchanged = sum(1 for outcome in outcomes.values() if outcome == SKIPPED)
        if unchanged:
            self.log.info(
                "%d chat(s) are %s by %s already (as the input shows): skipped", unchanged, verb, by
            )
        to_send = [chat_id for chat_id in chat_ids if chat_id not in outcomes]
        settings = self.hook.settings
        self.log.info(
            "Marking %d chat(s) %s by %s %s (%s)",
            len(to_send),
            verb,
            by,
            self.hook.pace,
            settings.base_url,
        )
        started = time.monotonic()
        self._mark_all(chat_ids, to_send, by, started, outcomes, progress)
        marked, missing, skipped, _ = _tally(chat_ids, outcomes)
        result.update(marked=marked, missing=missing, skipped=skipped)

        elapsed = time.monotonic() - started
        self.log.info(
            "Done: %d of %d chat(s) marked %s by %s, %d skipped (already %s), %d missing; %d sent in %.1f s "
            "(%.1f chats/min; paced %s)",
            len(marked),
            len(chat_ids),
            verb,
            by,
            len(skipped),
            verb,
            len(missing),
            len(to_send),
            elapsed,
            rate_per_minute(len(to_send), elapsed),
            self.hook.pace,
        )
        if missing:
            message = (
                f"{len(missing)} of {len(chat_ids)} chat(s) were not found in HelpCrunch: "
                f"{_id_list(missing)}; "
                f"the other {len(marked)} were marked {verb} by {by}"
                + (f" ({len(skipped)} were {verb} already)." if skipped else ".")
            )
            if self.on_missing == "fail":
                raise HelpCrunchNotFoundError(message + " Set on_missing='skip' to let this succeed.")
            self.log.warning(message)
        return result

    def _progress(self, context: Context, chat_ids: list[int], by: ReadBy) -> MarkProgress | None:
        """The progress record of this task instance, where Airflow keeps one (3.3 and later)."""
        if not self.resume:
            return None
        store = context.get("task_state_store")
        if store is None:
            ti = context.get("ti")
            if getattr(ti, "try_number", 1) > 1:
                self.log.warning(
                    "This is a retry, but resuming where an earlier try stopped needs Airflow 3.3 or later "
                    "(its task state store): every chat is sent again (marking is idempotent)."
                )
            return None
        return MarkProgress(store, chat_ids, by, self.read, self.log)

    def _mark_one(self, chat_id: int, by: ReadBy, ticket: int, stop: threading.Event) -> str | None:
        """Mark one chat: its outcome, or ``None`` when the run stopped before it was sent."""
        try:
            self.hook.mark_chat_read(chat_id, by=by, read=self.read, cancel=stop, ticket=ticket)
        except HelpCrunchNotFoundError:
            self.log.warning("Chat %d was not found in HelpCrunch", chat_id)
            return MISSING
        except HelpCrunchCancelledError:
            return None
        except BaseException:
            stop.set()  # decided here, before any other request can leave the pacer
            raise
        finally:
            self.hook.rate_limiter.abandon(ticket)  # a no-op once the ticket was served
        return MARKED

    def _mark_all(
        self,
        chat_ids: list[int],
        to_send: list[int],
        by: ReadBy,
        started: float,
        outcomes: dict[int, str],
        progress: MarkProgress | None,
    ) -> None:
        """
        Mark the chats ``to_send``, at most ``max_in_flight`` at a time, all through the hook's one pacer,
        which sends them in input order (each takes its place in the pacer's queue here, in order).

        Each chat's outcome goes into ``outcomes`` (which holds the skipped and earlier ones already), and
        the progress record is written every few seconds and once more at the end or at a stop. On an
        error other than a 404 no request leaves after the stop is decided; those already sent finish, and
        the error says what was done and what was not.
        """
        known = len(outcomes)
        failure: tuple[int, HelpCrunchError] | None = None
        pending: dict[Future[str | None], int] = {}
        tickets: dict[Future[str | None], int] = {}
        queue = iter(to_send)
        stop = threading.Event()
        limiter = self.hook.rate_limiter
        last_report = last_save = started
        pool = ThreadPoolExecutor(max_workers=self.max_in_flight, thread_name_prefix="helpcrunch-mark")

        def submit(chat_id: int) -> None:
            ticket = limiter.take_ticket()
            future = pool.submit(self._mark_one, chat_id, by, ticket, stop)
            pending[future] = chat_id
            tickets[future] = ticket

        try:
            for chat_id in itertools.islice(queue, self.max_in_flight):
                submit(chat_id)
            while pending:
                done, _ = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
                for future in done:
                    chat_id = pending.pop(future)
                    try:
                        outcome = future.result()
                    except HelpCrunchError as err:
                        failure = failure or (chat_id, err)
                    else:
                        if outcome is not None:
                            outcomes[chat_id] = outcome
                    if failure is None and not stop.is_set() and (following := next(queue, None)) is not None:
                        submit(following)
                now = time.monotonic()
                if progress is not None and now - last_save >= PROGRESS_SAVE_INTERVAL:
                    last_save = now
                    progress.save(outcomes)
                if now - last_report >= self.progress_interval:
                    last_report = now
                    _, missing, _, _ = _tally(chat_ids, outcomes)
                    self._log_progress(len(outcomes) - known, len(to_send), len(missing), now - started)
        except BaseException as err:  # a task timeout, a kill, a bug: still say how far the run got
            marked, missing, _, not_done = _tally(chat_ids, outcomes)
            self.log.error(
                "Interrupted by %s: %d chat(s) marked, %d not found, %d not done %s",
                type(err).__name__,
                len(marked),
                len(missing),
                len(not_done),
                _id_list(not_done),
            )
            raise
        finally:
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            for future, ticket in tickets.items():
                if future.cancelled():  # never ran: its place in the pacer's queue goes back
                    limiter.abandon(ticket)
            self.hook.close()
            if progress is not None:
                self._save_progress(progress, outcomes)
        if failure is not None:
            raise self._stopped(*failure, chat_ids, outcomes) from failure[1]

    def _save_progress(self, progress: MarkProgress, outcomes: dict[int, str]) -> None:
        """The last write, at the end or at a stop: a failure to write it must not hide the task's own."""
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

    def _stopped(
        self, chat_id: int, err: HelpCrunchError, chat_ids: list[int], outcomes: dict[int, str]
    ) -> HelpCrunchError:
        """The same kind of error, saying what was done before the stop and what was not."""
        marked, missing, skipped, not_done = _tally(chat_ids, outcomes)
        unchanged = f"{len(skipped)} skipped as unchanged, " if skipped else ""
        message = (
            f"Stopped at chat {chat_id} ({chat_ids.index(chat_id) + 1} of {len(chat_ids)}): {len(marked)} "
            f"chat(s) were marked before the stop, {unchanged}{len(missing)} not found, {len(not_done)} not "
            f"done {_id_list(not_done)}. Cause: {err}"
        )
        self.log.error(message)
        return err.restated(message)


def _tally(
    chat_ids: list[int], outcomes: dict[int, str]
) -> tuple[list[int], list[int], list[int], list[int]]:
    """The chats marked, not found, skipped and not done (no outcome yet), each in input order."""
    lists: dict[str | None, list[int]] = {MARKED: [], MISSING: [], SKIPPED: [], None: []}
    for chat_id in chat_ids:
        lists[outcomes.get(chat_id)].append(chat_id)
    return lists[MARKED], lists[MISSING], lists[SKIPPED], lists[None]


class HelpCrunchSearchChatsOperator(BaseHelpCrunchOperator):
    """
    Find HelpCrunch chats with ``POST /chats/search``, every page of them, and push what was found.

    Its output feeds :class:`MarkChatReadOperator` directly: ``MarkChatReadOperator(chat_ids=search.output)``.

    Returns (XCom ``return_value``): the chat IDs (``return_ids=True``) or the Chat dicts.

    :param filters: a list of ``{"field", "operator", "value"}`` dicts or ``(field, operator, value)``
        tuples (templated), e.g. ``[("status", "=", "closed"), ("closedAt", "<", "{{ ... }}")]``. The
        ``chats.`` prefix may be left out; timestamps may be ints, numeric strings or datetimes.
        Empty or ``None`` lists every chat.
    :param comparison: ``"AND"`` (every filter) or ``"OR"`` (any filter) (templated).
    :param sort: ``chats.createdAt``, ``chats.lastCustomerMessageAt``, ``chats.lastMessageAt`` or
        ``chats.closedAt`` (templated).
    :param order: ``"asc"`` or ``"desc"`` (templated).
    :param max_chats: keep at most this many chats; more are left for the next run, and the log says so.
    :param return_ids: push a list of chat IDs (default) rather than the Chat dicts.
    :param unread_by: ``"agent"`` or ``"customer"`` (templated): keep only the chats not read by them yet
        (``readByAgent`` / ``readByCustomer`` false). Search cannot filter on it, so the pages are filtered
        as they arrive; ``max_chats`` counts the chats kept. ``None`` (default) keeps every match.

    ``helpcrunch_conn_id``, ``requests_per_minute``, ``timeout`` and ``max_retries`` are as for
    :class:`BaseHelpCrunchOperator`.
    """

    template_fields: Sequence[str] = ("filters", "comparison", "sort", "order", "unread_by")

    def __init__(
        self,
        *,
        filters: Any = None,
        comparison: str = "AND",
        sort: str | None = None,
        order: str | None = None,
        max_chats: int | None = None,
        return_ids: bool = True,
        unread_by: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_max_chats(max_chats)
        check_unless_template(unread_by, check_unread_by)
        self.unread_by = unread_by
        self.filters = filters
        self.comparison = comparison
        self.sort = sort
        self.order = order
        self.max_chats = max_chats
        self.return_ids = return_ids

    def execute(self, context: Context) -> list[int] | list[dict[str, Any]]:
        unread_by = check_unread_by(self.unread_by or None)
        keep = unread_filter(unread_by)
        # one more than asked for tells whether the result was cut
        wanted = None if self.max_chats is None else self.max_chats + 1
        chats: list[dict[str, Any]] = []
        read_already = 0
        try:
            if self.filters:
                found = self.hook.search_chats(
                    self.filters, comparison=self.comparison, sort=self.sort, order=self.order
                )
            else:
                found = self.hook.list_chats(sort=self.sort, order=self.order)
            for chat in found:  # pages are fetched as they are consumed: stop once enough are kept
                if keep is not None and not keep(chat):
                    read_already += 1
                    continue
                chats.append(chat)
                if wanted is not None and len(chats) >= wanted:
                    break
        finally:
            self.hook.close()
        if self.max_chats is not None and len(chats) > self.max_chats:
            chats = chats[: self.max_chats]
            self.log.warning(
                "More than %d chats match; kept the first %d (max_chats), the rest are left for later.",
                self.max_chats,
                self.max_chats,
            )
        if unread_by is None:
            self.log.info("Found %d chat(s)", len(chats))
        else:
            self.log.info(
                "Found %d chat(s); kept the %d not read by %s yet, left out %d read already",
                len(chats) + read_already,
                len(chats),
                unread_by,
                read_already,
            )
        if self.return_ids:
            return [chat["id"] for chat in chats]
        return chats
