"""Seeded, realistic HelpCrunch chats and the search semantics of ``POST /chats/search``."""

from __future__ import annotations

import random
from typing import Any

from airflow_provider_helpcrunch.timestamps import timestamp_seconds
from airflow_provider_helpcrunch.vocabulary import FIELD_TYPES, OPERATORS

STATUSES = ("new", "opened", "pending", "on hold", "no communication", "closed", "empty")

AGENTS = [
    {"id": 11, "name": "Olena Koval", "email": "olena@example.com", "role": "admin"},
    {"id": 12, "name": "Marc Dubois", "email": "marc@example.com", "role": "agent"},
    {"id": 13, "name": "Aiko Tanaka", "email": "aiko@example.com", "role": "agent"},
    {"id": 14, "name": "Sam Okafor", "email": "sam@example.com", "role": "agent"},
]
DEPARTMENTS = [{"id": 1, "name": "Support"}, {"id": 2, "name": "Billing"}, {"id": 3, "name": "Sales"}]
_FIRST = ("Ana", "Ben", "Chloe", "Dmytro", "Eva", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Kira", "Luis")
_LAST = ("Moreau", "Nowak", "Silva", "Berg", "Khan", "Rossi", "Meyer", "Ito", "Garcia", "Novak")
_TEXTS = (
    "Thanks, that fixed it!",
    "Can I get a refund for last month?",
    "The invoice shows the wrong VAT number.",
    "How do I export my data?",
    "Is there an API limit?",
    "Great, have a nice day",
)
_TAGS = ("vip", "trial", "churn-risk", "beta")
# The three ways HelpCrunch writes a UNIX timestamp.
_FORMATS = (int, str, lambda seconds: f"{seconds}.000")


def make_chats(count: int, *, seed: int = 0, first_id: int = 5200, now: int = 1_764_000_000) -> list[dict]:
    """``count`` chats, the same for the same seed, with ids from ``first_id`` and times before ``now``."""
    rng = random.Random(seed)
    return [_with_last_message(_make_chat(rng, first_id + index, now)) for index in range(count)]


def _with_last_message(chat: dict[str, Any]) -> dict[str, Any]:
    """Set a chat's last-message fields to those of its newest message, as HelpCrunch's are."""
    newest = seed_messages(chat)[0]
    chat["lastMessageId"] = newest["id"]
    chat["lastMessageText"] = newest["text"]
    return chat


def _stamp(rng: random.Random, seconds: int) -> Any:
    return rng.choice(_FORMATS)(seconds)


def _make_chat(rng: random.Random, chat_id: int, now: int) -> dict[str, Any]:
    created = now - rng.randint(3_600, 90 * 86_400)
    status = rng.choices(STATUSES, weights=(2, 4, 2, 1, 1, 8, 1))[0]
    closed = created + rng.randint(300, 10 * 86_400) if status == "closed" else None
    last_message = min(now, (closed or created) + rng.randint(0, 3_600))
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    customer_id = 900_000 + rng.randint(1, 99_999)
    agents = rng.sample(AGENTS, rng.randint(0, 2))
    assignee = agents[0] if agents and status != "new" else None
    return {
        "id": chat_id,
        "status": status,
        "closedBy": rng.choice(("agent", "customer", "system")) if closed else None,
        "rating": rng.choice((None, None, "good", "average", "poor")) if closed else None,
        "readByAgent": status == "closed" and rng.random() < 0.3,
        "readByCustomer": rng.random() < 0.6,
        "createdWith": rng.choice(("widget", "widget", "email", "api")),
        "createdAt": _stamp(rng, created),
        "closedAt": _stamp(rng, closed) if closed else None,
        "lastMessageAt": _stamp(rng, last_message),
        "lastCustomerMessageAt": _stamp(rng, last_message - rng.randint(0, 600)),
        "snoozedUntil": _stamp(rng, now + 86_400) if status == "on hold" else None,
        "lastMessageText": rng.choice(_TEXTS),
        "lastMessageId": chat_id * 10 + rng.randint(1, 9),
        "applicationId": 1,
        "lastCommunicatedAgentId": assignee["id"] if assignee else None,
        "agents": agents,
        "customer": {
            "id": customer_id,
            "name": f"{first} {last}",
            "email": f"{first}.{last}{customer_id % 1000}@example.org".lower(),
            "userId": f"user-{customer_id}",
            "tagsData": rng.sample(_TAGS, rng.randint(0, 2)),
        },
        "assignee": assignee,
        "department": rng.choice((None, *DEPARTMENTS)),
        "updatedAt": _stamp(rng, last_message),
    }


class FilterError(ValueError):
    """A search filter HelpCrunch would refuse (the stand-in answers 400)."""


def check_filter(entry: Any) -> tuple[str, str, Any]:
    """Validate one ``{"field", "operator", "value"}`` filter as HelpCrunch does."""
    if not isinstance(entry, dict) or not {"field", "operator", "value"} <= entry.keys():
        raise FilterError(f"Filter must have field, operator and value: {entry!r}")
    field, operator, value = entry["field"], entry["operator"], entry["value"]
    if field not in FIELD_TYPES:
        raise FilterError(f"Unknown filter field {field!r}")
    if operator not in OPERATORS:
        raise FilterError(f"Unknown filter operator {operator!r}")
    kind = FIELD_TYPES[field]
    if kind in ("int", "timestamp") and (isinstance(value, bool) or not isinstance(value, int)):
        raise FilterError(f"The value of {field} has to be an integer, got {value!r}")
    if kind == "str" and not isinstance(value, str):
        raise FilterError(f"The value of {field} has to be a string, got {value!r}")
    return field, operator, value


def _field_values(chat: dict, field: str) -> list[Any]:
    """Return the chat's values for a search field (a list: ``chats.agents`` has several)."""
    name = field.removeprefix("chats.")
    if name in ("assignee", "department", "customer"):
        ref = chat.get(name)
        return [ref["id"]] if ref else []
    if name == "agents":
        return [agent["id"] for agent in chat.get("agents") or []]
    if name == "customer.email":
        return [(chat.get("customer") or {}).get("email")]
    if name == "customer.tagsData":
        return list((chat.get("customer") or {}).get("tagsData") or [])
    if FIELD_TYPES[field] == "timestamp":
        seconds = timestamp_seconds(chat.get(name))
        return [] if seconds is None else [seconds]
    return [chat.get(name)]


def _compare(actual: Any, operator: str, expected: Any) -> bool:
    if actual is None:
        return operator in ("!=", "!~")
    if operator in ("~", "!~"):
        found = str(expected).lower() in str(actual).lower()
        return found if operator == "~" else not found
    try:
        return bool(
            {
                "=": actual == expected,
                "!=": actual != expected,
                ">": actual > expected,
                "<": actual < expected,
                ">=": actual >= expected,
                "<=": actual <= expected,
            }[operator]
        )
    except TypeError:
        return False


def matches(chat: dict, filters: list[tuple[str, str, Any]], comparison: str) -> bool:
    """Whether a chat passes the filters, combined with ``AND`` or ``OR``."""
    results = []
    for field, operator, expected in filters:
        values = _field_values(chat, field)
        if operator in ("!=", "!~"):
            results.append(all(_compare(value, operator, expected) for value in values))
        else:
            results.append(any(_compare(value, operator, expected) for value in values))
    if not results:
        return True
    return all(results) if comparison == "AND" else any(results)


def sort_key(field: str) -> Any:
    """Sort chats by a sort field; chats without a value go last in ascending order."""
    name = field.removeprefix("chats.")

    def key(chat: dict) -> tuple[bool, float]:
        seconds = timestamp_seconds(chat.get(name))
        return (seconds is None, seconds or 0.0)

    return key


def seed_messages(chat: dict[str, Any]) -> list[dict[str, Any]]:
    """
    Make a chat's messages, newest first, the same for the same chat.

    From its creation to its last message (at ``lastMessageAt``): every chat has at least that one.
    """
    rng = random.Random(chat["id"])
    created = int(timestamp_seconds(chat.get("createdAt")) or 0)
    last = int(timestamp_seconds(chat.get("lastMessageAt")) or created)
    count = rng.randint(1, 6) if last > created else 1
    moments = sorted(rng.randint(created, last) for _ in range(max(0, count - 1)))
    if count:
        moments.append(last)
    messages = [make_message(chat, number, moment) for number, moment in enumerate(moments, start=1)]
    messages.sort(key=message_order)
    return messages


def make_message(chat: dict[str, Any], number: int, created: int | float | str) -> dict[str, Any]:
    """Return the ``number``-th message of a chat, created at ``created``, in HelpCrunch's shape."""
    rng = random.Random(f"{chat['id']}-{number}")
    by_agent = rng.random() < 0.5
    agent = (chat.get("assignee") or rng.choice(AGENTS)) if by_agent else None
    seconds = timestamp_seconds(created) or 0.0
    stamp = f"{seconds:.3f}"
    return {
        "id": chat["id"] * 1000 + number,
        "chat": chat["id"],
        "from": "agent" if by_agent else "customer",
        "agent": {"id": agent["id"], "name": agent["name"]} if agent else None,
        "type": "message",
        "text": rng.choice(_TEXTS),
        "read": rng.random() < 0.7,
        "edited": False,
        "broadcastType": None,
        "createdAt": stamp,
        "updatedAt": stamp,
    }


def message_order(message: dict[str, Any]) -> tuple[float, int]:
    """Newest first, as HelpCrunch sorts a chat's messages (ties by id, newest id first)."""
    return (-(timestamp_seconds(message["createdAt"]) or 0.0), -message["id"])


def customers_of(chats: Any) -> list[dict[str, Any]]:
    """Return the account's customers, from its chats: each once, first and last seen, by id."""
    found: dict[int, dict[str, Any]] = {}
    for chat in chats:
        customer = chat.get("customer")
        if not customer:
            continue
        seen = int(timestamp_seconds(chat.get("createdAt")) or 0)
        last = int(timestamp_seconds(chat.get("lastCustomerMessageAt")) or seen)
        entry = found.setdefault(
            customer["id"],
            {**{k: v for k, v in customer.items() if k != "tagsData"}, "firstSeen": seen, "lastSeen": last},
        )
        entry["tagsData"] = [{"name": tag} for tag in customer.get("tagsData") or []]
        entry["firstSeen"] = min(entry["firstSeen"], seen)
        entry["lastSeen"] = max(entry["lastSeen"], last)
    return sorted(found.values(), key=lambda customer: customer["id"])
