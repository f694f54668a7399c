"""
What HelpCrunch's ``POST /chats/search`` accepts, as its API documents it.

Kept free of imports: the client's checks (``filters``) and the local stand-in (``testing``) both read it,
and the stand-in loads as a pytest plugin, before Airflow is configured.
"""

from __future__ import annotations

OPERATORS = frozenset({"=", "!=", ">", "<", ">=", "<=", "~", "!~"})
COMPARISONS = ("AND", "OR")
ORDERS = ("asc", "desc")
SORT_FIELDS = ("chats.createdAt", "chats.lastCustomerMessageAt", "chats.lastMessageAt", "chats.closedAt")

# Each search field and the type its value must have: HelpCrunch fails a query whose value does not match.
FIELD_TYPES: dict[str, str] = {
    "chats.assignee": "int",
    "chats.agents": "int",
    "chats.department": "int",
    "chats.customer": "int",
    "chats.createdAt": "timestamp",
    "chats.updatedAt": "timestamp",
    "chats.closedAt": "timestamp",
    "chats.status": "str",
    "chats.rating": "str",
    "chats.customer.email": "str",
    "chats.customer.tagsData": "str",
}
