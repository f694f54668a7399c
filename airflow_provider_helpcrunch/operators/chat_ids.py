"""Turn whatever upstream tasks pushed to XCom into a clean list of HelpCrunch chat IDs."""

from __future__ import annotations

import ast
import json
import numbers
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_helpcrunch.client.checks import chat_id_problem, is_ascii_digits
from airflow_provider_helpcrunch.exceptions import InvalidChatIdsError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["ChatIds", "InvalidChatIdsError", "normalize_chat_ids"]

_SEPARATORS = re.compile(r"[\s,;]+")
#: how deeply lists of chat IDs may nest (mapped results nest two or three deep).
MAX_NESTING = 100
_TOO_DEEP = f"nested deeper than {MAX_NESTING} levels"


class ChatIds:
    """
    The chat IDs found in one XCom value: ``ids`` (unique, first-seen order) and ``nulls`` (``None`` items).

    Use :func:`normalize_chat_ids`, which raises on any invalid item.
    """

    __slots__ = ("_is_unchanged", "_seen", "invalid", "nulls", "received", "unchanged")

    def __init__(self, is_unchanged: Callable[[Mapping[str, Any]], bool] | None = None) -> None:
        self._seen: dict[int, None] = {}
        self._is_unchanged = is_unchanged
        self.invalid: list[tuple[str, Any, str]] = []
        self.nulls = 0
        self.received = 0
        #: with ``is_unchanged``: the chats every occurrence of which is a chat dict it holds unchanged
        #: (a plain ID is always left out).
        self.unchanged: set[int] = set()

    @property
    def ids(self) -> list[int]:
        return list(self._seen)

    def add_value(self, value: Any, position: str = "", depth: int = 0) -> None:
        """Add one XCom value (any supported shape). ``None`` and empty values add nothing."""
        if value is None:
            return
        if isinstance(value, str):
            self._add_text(value, position, top_level=True, depth=depth)
        elif isinstance(value, Mapping):
            self._add_item(value, position, depth)
        elif isinstance(value, Iterable) and not isinstance(value, (bytes, bytearray)):
            self._add_items(value, position, depth)
        else:
            self._add_item(value, position, depth)

    def _add_items(self, items: Iterable[Any], prefix: str, depth: int) -> None:
        if depth >= MAX_NESTING:
            self._reject(prefix, "[...]", _TOO_DEEP)
            return
        seen = self._seen
        for index, item in enumerate(items):
            # Fast paths only accept: positive ints, chat dicts with one, ASCII digit strings. Anything
            # else, every invalid item included, takes the full checks with its original value.
            kind = type(item)
            chat_id = None
            if kind is int:
                chat_id = item
            elif kind is dict:
                chat_id = item.get("id")
                chat_id = chat_id if type(chat_id) is int else None
            elif kind is str and is_ascii_digits(item):
                chat_id = int(item)
            if chat_id is not None and chat_id_problem(chat_id) is None:
                if self._is_unchanged is None:
                    self.received += 1
                    seen[chat_id] = None
                else:
                    self._accept(chat_id, item if kind is dict else None)
            else:
                self._add_item(item, f"{prefix}[{index}]", depth + 1)

    def _accept(self, chat_id: int, chat: Mapping[str, Any] | None) -> None:
        """Count a valid chat ID; ``chat`` is the chat dict it came in, if any."""
        self.received += 1
        first = chat_id not in self._seen
        self._seen[chat_id] = None
        if self._is_unchanged is None:
            return
        if chat is not None and self._is_unchanged(chat):
            if first:
                self.unchanged.add(chat_id)
        else:
            self.unchanged.discard(chat_id)

    def _add_item(self, item: Any, position: str, depth: int, chat: Mapping[str, Any] | None = None) -> None:
        if item is None:
            self.nulls += 1
        elif isinstance(item, bool):
            self._reject(position, item, "bool")
        elif isinstance(item, numbers.Integral):
            self._add_int(int(item), item, position, chat)
        elif isinstance(item, float):
            if item.is_integer():
                self._add_int(int(item), item, position, chat)
            else:
                self._reject(position, item, "not a whole number")
        elif isinstance(item, str):
            self._add_text(item, position, top_level=False, depth=depth, chat=chat)
        elif isinstance(item, Mapping):
            self._add_mapping(item, position, depth)
        elif isinstance(item, Iterable) and not isinstance(item, (bytes, bytearray)):
            self._add_items(item, position, depth)
        else:
            self._reject(position, item, f"unsupported type {type(item).__name__}")

    def _add_mapping(self, item: Mapping[str, Any], position: str, depth: int) -> None:
        """Add a chat dict (its ``id``), or an upstream write's output (the chats it left as asked)."""
        done_key = _write_result_key(item)
        if done_key is not None:
            self._add_items([item[done_key], item["skipped"]], f"{position}[{done_key!r}]", depth)
        elif "id" not in item:
            self._reject(position, item, "dict without 'id'")
        elif isinstance(item["id"], (Mapping, list, tuple)) or item["id"] is None:
            self._reject(f"{position}['id']", item["id"], "not a chat ID")
        else:
            self._add_item(item["id"], f"{position}['id']", depth, chat=item)

    def _add_int(
        self, chat_id: int, original: Any, position: str, chat: Mapping[str, Any] | None = None
    ) -> None:
        problem = chat_id_problem(chat_id)
        if problem:
            self._reject(position, original, problem)
        else:
            self._accept(chat_id, chat)

    def _add_text(
        self, text: str, position: str, *, top_level: bool, depth: int, chat: Mapping[str, Any] | None = None
    ) -> None:
        stripped = text.strip()
        if is_ascii_digits(stripped):
            self._add_int(int(stripped), text, position, chat)
            return
        if top_level and stripped in ("", "None", "null", "[]", "()"):
            return
        if stripped[:1] in "[({" and stripped:
            parsed = _parse_literal(stripped)
            if parsed is _TOO_DEEP_TEXT:
                self._reject(position, text, _TOO_DEEP)
                return
            if parsed is not _UNPARSED:
                self.add_value(parsed, position, depth)
                return
        parts = [part for part in _SEPARATORS.split(stripped) if part]
        if len(parts) > 1:
            for index, part in enumerate(parts):
                if is_ascii_digits(part):
                    self._add_int(int(part), part, f"{position}[{index}]")
                else:
                    self._reject(f"{position}[{index}]", part, "not a number")
            return
        self._reject(position, text, "not a number" if stripped else "empty string")

    def _reject(self, position: str, value: Any, reason: str) -> None:
        self.invalid.append((position, value, reason))


#: the list of chats an upstream write operator's output holds: MarkChatReadOperator's, the others'.
_WRITE_RESULT_KEYS = ("marked", "updated")


def _write_result_key(item: Mapping[str, Any]) -> str | None:
    """Return the key of the chats written, when ``item`` is a write operator's output (and not a chat)."""
    if "id" in item or not isinstance(item.get("skipped"), list) or "requested" not in item:
        return None
    found = [key for key in _WRITE_RESULT_KEYS if isinstance(item.get(key), list)]
    return found[0] if len(found) == 1 else None


_UNPARSED = object()
_TOO_DEEP_TEXT = object()


def _parse_literal(text: str) -> Any:
    """JSON first (what XCom holds), then a Python literal (what Jinja renders a list of dicts to)."""
    try:
        return json.loads(text)
    except RecursionError:
        return _TOO_DEEP_TEXT
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (RecursionError, MemoryError):
        return _TOO_DEEP_TEXT
    except (ValueError, SyntaxError, TypeError):
        return _UNPARSED


def normalize_chat_ids(
    *values: Any, is_unchanged: Callable[[Mapping[str, Any]], bool] | None = None
) -> ChatIds:
    """
    Collect chat IDs from XCom values of any supported shape.

    Accepted: ints from 1 to 2**63 - 1; strings of ASCII digits; chat dicts with an ``"id"``; the output of
    a write operator (its ``"marked"`` or ``"updated"`` chats and its ``"skipped"`` ones: those it left as
    asked); lists, tuples and lazy sequences of those, nested up to :data:`MAX_NESTING` deep (results of
    mapped tasks); and strings holding a JSON or Python list, or IDs separated by commas or spaces (what a
    Jinja template renders to). Duplicates are kept once, in first-seen order; ``None`` values add nothing.

    :param is_unchanged: whether a chat dict is already as a write wants it (e.g. ``readByAgent`` true):
        collect in ``unchanged`` the chats every occurrence of which is such a dict.
    :raises InvalidChatIdsError: naming every invalid item and its position, before anything is sent.
    """
    collected = ChatIds(is_unchanged)
    for index, value in enumerate(values):
        collected.add_value(value, f"source {index}: " if len(values) > 1 else "")
    if collected.invalid:
        raise InvalidChatIdsError(collected.invalid, len(collected._seen))
    return collected
