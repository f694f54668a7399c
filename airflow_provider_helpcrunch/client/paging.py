"""
Paging through HelpCrunch's lists.

By offset for a list that items only join at the front, by key for a search that items can leave while it is
read.
"""

from __future__ import annotations

import itertools
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_helpcrunch.exceptions import HelpCrunchAPIError
from airflow_provider_helpcrunch.outside_text import short_repr
from airflow_provider_helpcrunch.vocabulary import PAGE_SIZE

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

    from airflow_provider_helpcrunch.outside_text import Scrubber


class Paging:
    """
    The paging of :class:`~airflow_provider_helpcrunch.client.HelpCrunchClient`.

    Each page is fetched by a function the caller gives (one request), and checked here.
    """

    _scrub: Scrubber
    log: Any

    def paginate(
        self,
        fetch: Callable[[int, int], Any],
        max_items: int | None,
        action: str,
        keep: Callable[[dict[str, Any]], bool] | None = None,
        *,
        kind: str = "chat",
        list_keys: tuple[str, ...] = ("data",),
    ) -> Iterator[dict[str, Any]]:
        """
        Yield items (chats, messages, customers) page by page, by offset.

        Paging ends at a short or empty page (the total alone is not trusted: items come and go while we
        page). An item seen on an earlier page is not yielded twice; with ``keep``, only the items it keeps
        are yielded and count toward ``max_items``. Pages are fetched as the items are consumed: stop
        iterating, and no further page is fetched.

        Offset paging is safe for a list that items only join at the front (a chat's messages, newest
        first): a shift makes a repeat, never a gap. For a list that items can leave, page by key
        (:meth:`paginate_by_key`).

        :param kind: what the items are, for messages.
        :param list_keys: where a page holds its items (the first that is a list).
        """
        return _drive(self._offset_steps(max_items, action, keep, kind, list_keys), fetch)

    def _offset_steps(
        self,
        max_items: int | None,
        action: str,
        keep: Callable[[dict[str, Any]], bool] | None,
        kind: str,
        list_keys: tuple[str, ...],
    ) -> _Steps:
        """Ask for each page of :meth:`paginate`, then give its items: the rules, free of I/O."""
        out = _Yield(max_items, keep)
        offset = 0
        while not out.full:
            limit = PAGE_SIZE if keep is not None else min(PAGE_SIZE, out.wanted)
            data = self._page_items((yield _Fetch((offset, limit))), action, offset, kind, list_keys)
            yield list(out.take(data))
            if len(data) < limit:
                return
            offset += len(data)

    def paginate_by_key(
        self,
        fetch: Callable[[list[dict[str, Any]], int, int], Any],
        *,
        key_field: str,
        key: Callable[[dict[str, Any]], int],
        descending: bool,
        action: str,
        max_items: int | None = None,
        keep: Callable[[dict[str, Any]], bool] | None = None,
        kind: str = "chat",
    ) -> Iterator[dict[str, Any]]:
        """
        Yield the items of a search sorted on an immutable key (a chat's ``createdAt``), paging on the key.

        Not by offset: each page asks for the items from the last key read on (``>=``, or ``<=``
        descending) with ``fetch(key_filters, 0, 100)``. An item that leaves the result while we page
        shifts nothing, so no item that matched all along is missed; items read twice are yielded once.

        A run of equal keys longer than a page (more than 100 chats created in one second) is read by offset
        within that key (``=``), pass after pass until a pass finds nothing new, then paging goes on past
        the key.

        :param fetch: sends one page request: the key filters to add to the search's own, offset, limit.
        :param key_field: the field to filter on, e.g. ``"chats.createdAt"``.
        :param key: an item's key, as the filter compares it (whole seconds); ``ValueError`` when it has none.
        :param descending: the sort order the search asks for.
        """
        steps = self._key_steps(key_field, key, descending, action, max_items, keep, kind)
        return _drive(steps, fetch)

    def apaginate_by_key(
        self,
        fetch: Callable[[list[dict[str, Any]], int, int], Awaitable[Any]],
        *,
        key_field: str,
        key: Callable[[dict[str, Any]], int],
        descending: bool,
        action: str,
        max_items: int | None = None,
        keep: Callable[[dict[str, Any]], bool] | None = None,
        kind: str = "chat",
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield the items of a search paged on a key, as :meth:`paginate_by_key` does, from an event loop."""
        steps = self._key_steps(key_field, key, descending, action, max_items, keep, kind)
        return _adrive(steps, fetch)

    def _key_steps(
        self,
        key_field: str,
        key: Callable[[dict[str, Any]], int],
        descending: bool,
        action: str,
        max_items: int | None,
        keep: Callable[[dict[str, Any]], bool] | None,
        kind: str,
    ) -> _Steps:
        """Ask for each page of :meth:`paginate_by_key`, then give its items: the rules, free of I/O."""
        out = _Yield(max_items, keep)
        bound: int | None = None
        while not out.full:
            given = [] if bound is None else [_key_filter(key_field, "<=" if descending else ">=", bound)]
            data = self._page_items((yield _Fetch((given, 0, PAGE_SIZE))), action, 0, kind)
            try:
                keys = [key(item) for item in data]
            except ValueError as err:
                raise HelpCrunchAPIError(
                    f"HelpCrunch answered {action} with {self._scrub(str(err))}"
                ) from None
            self._check_order(keys, bound, descending, action)
            yield list(out.take(data))
            if len(data) < PAGE_SIZE:
                return
            if bound is not None and keys[-1] == bound:  # the whole page is one key: read its run apart
                yield from self._key_run(out, key_field, bound, action, kind)
                bound = bound - 1 if descending else bound + 1
            else:
                bound = keys[-1]

    def _key_run(self, out: _Yield, key_field: str, value: int, action: str, kind: str) -> _Steps:
        """Every item whose key is ``value``, by offset, pass after pass until a pass finds nothing new."""
        for _ in range(MAX_KEY_RUN_PASSES):
            before = out.found
            offset = 0
            while not out.full:
                page = yield _Fetch(([_key_filter(key_field, "=", value)], offset, PAGE_SIZE))
                data = self._page_items(page, action, offset, kind)
                yield list(out.take(data))
                if len(data) < PAGE_SIZE:
                    break
                offset += len(data)
            if out.full or out.found == before:
                return
        raise HelpCrunchAPIError(
            f"HelpCrunch answered {action} for {key_field} = {value} with new {kind}s on each of "
            f"{MAX_KEY_RUN_PASSES} passes (over {PAGE_SIZE} {kind}s share that key and keep changing): "
            "no complete read of them could be made; try again later"
        )

    def _check_order(self, keys: list[int], bound: int | None, descending: bool, action: str) -> None:
        """Paging by key relies on HelpCrunch's sort: a page out of order is its error, not a guess."""
        known = keys if bound is None else [bound, *keys]
        steps = list(itertools.pairwise(known))
        if any((later > earlier) if descending else (later < earlier) for earlier, later in steps):
            direction = "descending" if descending else "ascending"
            raise HelpCrunchAPIError(
                f"HelpCrunch answered {action} with a page not sorted {direction} by the key asked for "
                f"(keys {short_repr(keys)} after {bound}): it cannot be paged safely"
            )

    def _page_items(
        self,
        body: Any,
        action: str,
        offset: int,
        kind: str = "chat",
        list_keys: tuple[str, ...] = ("data",),
    ) -> list[dict[str, Any]]:
        """Return a page's items, each checked to be an object with an int ``id``."""
        data: list[dict[str, Any]] | None = next(
            (body[key] for key in list_keys if isinstance(body.get(key), list)), None
        )
        if data is None:
            where = " or ".join(repr(key) for key in list_keys)
            raise HelpCrunchAPIError(
                f"HelpCrunch answered {action} without a {where} list: {self._scrub.quote(short_repr(body))}"
            )
        self.log.debug(
            "%s offset %d: %d %s(s) of %s",
            action,
            offset,
            len(data),
            kind,
            _total(body) or "an unknown total",
        )
        for item in data:
            item_id = item.get("id") if isinstance(item, dict) else None
            if isinstance(item_id, bool) or not isinstance(item_id, int):
                raise HelpCrunchAPIError(
                    f"HelpCrunch answered {action} with an entry that is not a {kind} with an id: "
                    f"{self._scrub.quote(short_repr(item))}"
                )
        return data


# ---------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class _Fetch:
    """A page the paging rules ask for: the arguments of the caller's ``fetch``."""

    args: tuple[Any, ...]


#: paging rules as a generator: it yields a :class:`_Fetch` and is sent the page's body, or yields items.
_Steps = Generator["_Fetch | list[dict[str, Any]]", Any, None]


def _drive(steps: _Steps, fetch: Callable[..., Any]) -> Iterator[dict[str, Any]]:
    """Run paging rules with a blocking ``fetch``: pages are fetched as the items are consumed."""
    answer = None
    while True:
        try:
            step = steps.send(answer)
        except StopIteration:
            return
        answer = None
        if isinstance(step, _Fetch):
            answer = fetch(*step.args)
        else:
            yield from step


async def _adrive(steps: _Steps, fetch: Callable[..., Awaitable[Any]]) -> AsyncIterator[dict[str, Any]]:
    """Run paging rules with an awaited ``fetch``, as :func:`_drive` does."""
    answer = None
    while True:
        try:
            step = steps.send(answer)
        except StopIteration:
            return
        answer = None
        if isinstance(step, _Fetch):
            answer = await fetch(*step.args)
        else:
            for item in step:
                yield item


#: passes over a run of equal keys longer than a page before paging gives up (each pass found new items).
MAX_KEY_RUN_PASSES = 10


class _Yield:
    """What a paging has yielded: each item once, those ``keep`` keeps, up to ``max_items``."""

    def __init__(self, max_items: int | None, keep: Callable[[dict[str, Any]], bool] | None) -> None:
        self.max_items = max_items
        self.keep = keep
        self.seen: set[int] = set()
        self.yielded = 0

    @property
    def found(self) -> int:
        return len(self.seen)

    @property
    def wanted(self) -> int:
        return PAGE_SIZE if self.max_items is None else self.max_items - self.yielded

    @property
    def full(self) -> bool:
        return self.max_items is not None and self.yielded >= self.max_items

    def take(self, data: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for item in data:
            if self.full:
                return
            if item["id"] in self.seen:
                continue
            self.seen.add(item["id"])
            if self.keep is not None and not self.keep(item):
                continue
            self.yielded += 1
            yield item


def _key_filter(field_name: str, operator: str, value: int) -> dict[str, Any]:
    return {"field": field_name, "operator": operator, "value": value}


def _total(body: dict[str, Any]) -> int | None:
    """Return the result total, read as ``meta.total`` or as a top-level ``total`` (both are seen)."""
    meta = body.get("meta")
    total = meta.get("total") if isinstance(meta, dict) else body.get("total")
    return total if isinstance(total, int) else None
