"""Operators for HelpCrunch: find chats, and write to each of them (read, status, assignee, snooze)."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_provider_helpcrunch.client import MAX_CONNECTIONS, unread_filter
from airflow_provider_helpcrunch.client.changes import (
    assignee_change,
    check_snooze,
    check_status,
    department_change,
    read_change,
    snooze_change,
    status_change,
)
from airflow_provider_helpcrunch.client.checks import (
    check_bool,
    check_by,
    check_id,
    check_int,
    check_max_chats,
    check_read,
    check_unread_by,
)
from airflow_provider_helpcrunch.exceptions import HelpCrunchConfigError
from airflow_provider_helpcrunch.hooks.helpcrunch import HelpCrunchHook
from airflow_provider_helpcrunch.operators.chat_writes import (
    ON_MISSING_CHOICES,
    ChatWrite,
    ChatWriteEngine,
    Tally,
    Words,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from airflow.providers.common.compat.sdk import Context

MAX_IN_FLIGHT = MAX_CONNECTIONS


def check_unless_template(value: Any, check: Callable[[Any], Any]) -> None:
    """Check an operator argument now, unless it is a Jinja template: that is checked once rendered."""
    if not (isinstance(value, str) and "{{" in value):
        check(value)


class BaseHelpCrunchOperator(BaseOperator):
    """
    What every HelpCrunch operator shares: the connection and the hook's overrides.

    :param helpcrunch_conn_id: the Airflow connection with the HelpCrunch API key.
    :param requests_per_minute: overrides the connection's pace (e.g. a share of the limit per mapped task).
    :param timeout: overrides the connection's timeout, in seconds.
    :param max_retries: overrides the connection's retries per request.
    :param redis_conn_id: overrides the connection's Redis connection, through which every task that uses the
        account shares one request window.
    :param hook_params: further keyword arguments of :class:`HelpCrunchHook` (``retry_backoff``,
        ``retry_backoff_max``, ``rate_limit_wait``...), as ``HttpOperator`` takes them.
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
        hook_params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.helpcrunch_conn_id = helpcrunch_conn_id
        self.requests_per_minute = requests_per_minute
        self.timeout = timeout
        self.max_retries = max_retries
        self.redis_conn_id = redis_conn_id
        if hook_params is not None and not isinstance(hook_params, dict):
            raise HelpCrunchConfigError(f"hook_params must be a dict, got {hook_params!r}")
        self.hook_params = dict(hook_params or {})

    @cached_property
    def hook(self) -> HelpCrunchHook:
        return HelpCrunchHook(
            helpcrunch_conn_id=self.helpcrunch_conn_id,
            requests_per_minute=self.requests_per_minute,
            timeout=self.timeout,
            max_retries=self.max_retries,
            redis_conn_id=self.redis_conn_id,
            **self.hook_params,
        )


class BaseChatWriteOperator(BaseHelpCrunchOperator):
    """
    What every per-chat write operator shares.

    The chats it takes from XCom, and the engine that writes them
    (:mod:`airflow_provider_helpcrunch.operators.chat_writes`). A subclass says what one chat's write is
    (:meth:`chat_write`) and what it returns (:meth:`result`).

    :param chat_ids: the chats (templated): ints, numeric strings, chat dicts with an ``"id"``, or lists of
        those nested up to 100 deep, from XCom or a Jinja string. ``None`` or empty writes nothing and
        succeeds.
    :param on_missing: ``"fail"`` (default) fails the task at the end if any chat was not found;
        ``"skip"`` logs a warning and succeeds.
    :param xcom_task_ids: task ID(s) to pull chat IDs from, added to ``chat_ids`` (templated).
    :param xcom_key: the XCom key to pull with ``xcom_task_ids`` (templated).
    :param max_in_flight: chats under way at once (1 to 32). The pace stays at ``requests_per_minute``
        either way; more in flight keeps it there when HelpCrunch is slow to answer.
    :param progress_interval: seconds between two progress lines in the task log.
    :param skip_unchanged: skip chat dicts that already show what is asked (default ``True``); plain IDs
        are always sent.
    :param resume: on Airflow 3.3 and later, let a retry skip what earlier tries of this task instance did
        (default ``True``); ``False`` always starts over.
    """

    template_fields: Sequence[str] = ("chat_ids", "xcom_task_ids", "xcom_key")
    #: the output's key of the chats written
    done_key = "updated"

    def __init__(
        self,
        *,
        chat_ids: Any = None,
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
        check_bool(skip_unchanged, "skip_unchanged")
        check_bool(resume, "resume")
        check_int(max_in_flight, "max_in_flight", maximum=MAX_IN_FLIGHT)
        self.chat_ids = chat_ids
        self.on_missing = on_missing
        self.xcom_task_ids = xcom_task_ids
        self.xcom_key = xcom_key
        self.max_in_flight = max_in_flight
        self.progress_interval = progress_interval
        self.skip_unchanged = skip_unchanged
        self.resume = resume

    def chat_write(self) -> ChatWrite:
        """Make the write of each chat from the rendered arguments (checked once, before any request)."""
        raise NotImplementedError

    def result(self, tally: Tally, write: ChatWrite) -> dict[str, Any]:
        """Return what the task returns (XCom ``return_value``): the tally's lists, and what was asked."""
        return {
            self.done_key: tally.done,
            "missing": tally.missing,
            "skipped": tally.skipped,
            **write.asked,
            "requested": len(tally.chat_ids),
        }

    def execute(self, context: Context) -> dict[str, Any]:
        write = self.chat_write()
        sources = [self.chat_ids]
        if self.xcom_task_ids:
            sources.append(context["ti"].xcom_pull(task_ids=self.xcom_task_ids, key=self.xcom_key))
        engine = ChatWriteEngine(
            write,
            client=lambda: self.hook.client,
            pace=lambda: self.hook.pace,
            where=lambda: self.hook.settings.base_url,
            log=self.log,
            on_missing=self.on_missing,
            max_in_flight=self.max_in_flight,
            progress_interval=self.progress_interval,
            skip_unchanged=self.skip_unchanged,
            resume=self.resume,
        )
        try:
            tally = engine.run(
                sources,
                store=context.get("task_state_store"),
                try_number=getattr(context.get("ti"), "try_number", 1),
            )
        finally:
            self.hook.close()
        # what the requests cost: a run slowed by 429s says so
        return {**self.result(tally, write), "requests": self.hook.client.stats.as_dict()}


class MarkChatReadOperator(BaseChatWriteOperator):
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

    :param by: ``"agent"`` or ``"customer"`` (templated).
    :param read: ``True`` marks read, ``False`` marks unread.

    ``chat_ids``, ``on_missing``, ``xcom_task_ids``, ``xcom_key``, ``max_in_flight``,
    ``progress_interval``, ``skip_unchanged`` and ``resume`` are as for :class:`BaseChatWriteOperator`;
    ``helpcrunch_conn_id``, ``requests_per_minute``, ``timeout``, ``max_retries``, ``redis_conn_id`` and
    ``hook_params`` as for :class:`BaseHelpCrunchOperator`.
    """

    template_fields: Sequence[str] = ("chat_ids", "by", "xcom_task_ids", "xcom_key")
    done_key = "marked"

    def __init__(self, *, by: str = "agent", read: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        check_read(read)
        check_unless_template(by, check_by)
        self.by = by
        self.read = read

    def chat_write(self) -> ChatWrite:
        by, read = check_by(self.by), self.read
        state = "read" if read else "unread"
        words = Words("mark", "Marking", "marked", f"{state} by {by}", f"{state} by {by}", state)
        return ChatWrite("mark", {"by": by, "read": read}, (read_change(by, read),), words)


class SetChatStatusOperator(BaseChatWriteOperator):
    """
    Set the status of HelpCrunch chats (``PUT /chats/status``).

    Close the chats that went quiet, put them on hold, reopen them.

    Chat dicts that already have the status are skipped (``skip_unchanged``); the rest of the behaviour
    (order, pacing, stops, missing chats, resuming a retry) is that of :class:`MarkChatReadOperator`.

    Returns (XCom ``return_value``): ``{"updated": [...], "missing": [...], "skipped": [...], "status": ...,
    "requested": n}``, each list in input order and covering earlier tries.

    :param status: ``"new"``, ``"opened"``, ``"pending"``, ``"on hold"``, ``"no communication"`` or
        ``"closed"`` (templated); ``"on-hold"`` and ``"onhold"`` are read as ``"on hold"``.

    The other parameters are as for :class:`BaseChatWriteOperator` and :class:`BaseHelpCrunchOperator`.
    """

    template_fields: Sequence[str] = ("chat_ids", "status", "xcom_task_ids", "xcom_key")

    def __init__(self, *, status: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        check_unless_template(status, check_status)
        self.status = status

    def chat_write(self) -> ChatWrite:
        change = status_change(self.status)
        status = change.values["status"]
        words = Words("update", "Setting", "set", f"to status {status!r}", f"in status {status!r}", status)
        return ChatWrite("status", {"status": status}, (change,), words)


class AssignChatOperator(BaseChatWriteOperator):
    """
    Hand HelpCrunch chats to an agent or a department, or unassign them.

    It sends ``PUT /chats/department`` and ``PUT /chats/assignee``.

    Give ``assignee``, ``department``, or both (the department is set first, then the agent), or
    ``unassign=True``. Chat dicts that already show all of it are skipped (``skip_unchanged``). A chat
    counts as updated once HelpCrunch confirmed every write asked of it; the rest of the behaviour is that
    of :class:`MarkChatReadOperator`.

    Returns (XCom ``return_value``): ``{"updated": [...], "missing": [...], "skipped": [...], "assignee":
    ..., "department": ..., "requested": n}``.

    :param assignee: the agent's ID (templated).
    :param department: the department's ID (templated).
    :param unassign: leave the chats with no agent (not with ``assignee``).

    The other parameters are as for :class:`BaseChatWriteOperator` and :class:`BaseHelpCrunchOperator`.
    """

    template_fields: Sequence[str] = ("chat_ids", "assignee", "department", "xcom_task_ids", "xcom_key")

    def __init__(
        self,
        *,
        assignee: int | str | None = None,
        department: int | str | None = None,
        unassign: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_bool(unassign, "unassign")
        if assignee is not None and unassign:
            raise HelpCrunchConfigError(f"give assignee or unassign=True, not both (assignee={assignee!r})")
        if assignee is None and department is None and not unassign:
            raise HelpCrunchConfigError("give assignee, department or unassign=True: nothing is asked")
        if assignee is not None:
            check_unless_template(assignee, _check_assignee)
        if department is not None:
            check_unless_template(department, _check_department)
        self.assignee = assignee
        self.department = department
        self.unassign = unassign

    def chat_write(self) -> ChatWrite:
        agent = None if self.assignee is None else _check_assignee(self.assignee)
        department = None if self.department is None else _check_department(self.department)
        changes = []  # the department first, then the agent
        if department is not None:
            changes.append(department_change(department))
        if agent is not None or self.unassign:
            changes.append(assignee_change(agent))
        target = " and ".join(change.wanted for change in changes if change.values != {"assignee": None})
        if not target:  # unassign alone
            words = Words("assign", "Unassigning", "unassigned", "", "with no agent", "unassigned")
        else:
            no_agent = self.unassign  # with a department: moved there and unassigned
            goal = f"to {target}" + (", with no agent" if no_agent else "")
            state = f"with {target}" + (" and no agent" if no_agent else "")
            words = Words("assign", "Assigning", "assigned", goal, state, "assigned so")
        asked = {"assignee": agent, "department": department, "unassign": self.unassign}
        return ChatWrite("assign", asked, tuple(changes), words)


class SnoozeChatOperator(BaseChatWriteOperator):
    """
    Snooze HelpCrunch chats until a moment, or unsnooze them (``PUT /chats/snooze``).

    HelpCrunch marks a snoozed chat unread when its snooze ends.

    Chat dicts already snoozed until that moment are skipped (``skip_unchanged``); the rest of the
    behaviour is that of :class:`MarkChatReadOperator`.

    Returns (XCom ``return_value``): ``{"updated": [...], "missing": [...], "skipped": [...],
    "snoozed_until": seconds or None, "requested": n}``.

    :param snoozed_until: when the snooze ends (templated): UNIX seconds (an int, or a rendered number such
        as ``"{{ (data_interval_end + macros.timedelta(days=3)).int_timestamp }}"``), a datetime or a
        pendulum object. ``None`` unsnoozes.

    The other parameters are as for :class:`BaseChatWriteOperator` and :class:`BaseHelpCrunchOperator`.
    """

    template_fields: Sequence[str] = ("chat_ids", "snoozed_until", "xcom_task_ids", "xcom_key")

    def __init__(self, *, snoozed_until: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        check_unless_template(snoozed_until, check_snooze)
        self.snoozed_until = snoozed_until

    def chat_write(self) -> ChatWrite:
        until = check_snooze(self.snoozed_until)
        if until is None:
            words = Words("snooze", "Unsnoozing", "unsnoozed", "", "not snoozed", "not snoozed")
        else:
            words = Words(
                "snooze", "Snoozing", "snoozed", f"until {until}", f"snoozed until {until}", "snoozed so"
            )
        return ChatWrite("snooze", {"snoozed_until": until}, (snooze_change(until),), words)


def _check_assignee(value: Any) -> int:
    return check_id(value, "assignee")


def _check_department(value: Any) -> int:
    return check_id(value, "department")


class HelpCrunchSearchChatsOperator(BaseHelpCrunchOperator):
    """
    Find HelpCrunch chats with ``POST /chats/search``, every page of them, and push what was found.

    Pages are read on the chats' ``createdAt``, not by offset: a chat that stops matching while the
    search runs pushes no other chat out of the result (see :meth:`HelpCrunchHook.search_chats`).

    Its output feeds :class:`MarkChatReadOperator` directly: ``MarkChatReadOperator(chat_ids=search.output)``.

    Returns (XCom ``return_value``): the chat IDs (``return_ids=True``) or the Chat dicts.

    :param filters: a list of ``{"field", "operator", "value"}`` dicts or ``(field, operator, value)``
        tuples (templated), e.g. ``[("status", "=", "closed"), ("closedAt", "<", "{{ ... }}")]``. The
        ``chats.`` prefix may be left out; timestamps may be ints, numeric strings or datetimes.
        Empty or ``None`` finds every chat.
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
            # paged on createdAt (no filters: every chat), so that chats changing meanwhile push none out
            found = self.hook.search_chats(
                self.filters or [], comparison=self.comparison, sort=self.sort, order=self.order
            )
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
