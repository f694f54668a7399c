"""
HelpCrunch's words for chats, as its API documents them.

The writes and the fields they change, the statuses, who reads a chat, and what a search takes.

Kept free of imports: the client's checks and the local stand-in (``testing``) both read it, and the stand-in
may be imported before Airflow is configured.
"""

from __future__ import annotations

from typing import Literal

# ---------------------------------------------------------------------- reading

#: who a chat is marked read by: ``PUT /chats/readByAgent`` or ``PUT /chats/readByCustomer``.
ReadBy = Literal["agent", "customer"]
READ_BY: tuple[ReadBy, ...] = ("agent", "customer")
#: the Chat object's field that says whether it is read, by who.
READ_FIELDS: dict[str, str] = {"agent": "readByAgent", "customer": "readByCustomer"}
#: the endpoint that marks a chat read, by who.
READ_ENDPOINTS: dict[str, str] = {"agent": "/chats/readByAgent", "customer": "/chats/readByCustomer"}

# ---------------------------------------------------------------------- the other writes

#: the statuses ``PUT /chats/status`` takes, as HelpCrunch's current API page spells them.
STATUSES = ("new", "opened", "pending", "on hold", "no communication", "closed")
ON_HOLD = "on hold"
#: the older spelling of "on hold" (an older page, the Ukrainian one), tried once if the current is refused.
ON_HOLD_OLDER = "on-hold"
#: other documented spellings, read from users and from HelpCrunch's chats alike.
STATUS_ALIASES = {"on-hold": ON_HOLD, "onhold": ON_HOLD, "open": "opened"}
#: a Chat's fields that each write changes.
STATUS_FIELD, ASSIGNEE_FIELD, DEPARTMENT_FIELD, SNOOZE_FIELD = (
    "status",
    "assignee",
    "department",
    "snoozedUntil",
)
#: HelpCrunch's IDs (chats, agents, departments) are signed 64-bit integers.
MAX_ID = 2**63 - 1
#: the latest moment taken (the year 9999): later is a mistake, not a date.
MAX_TIMESTAMP = 253_402_300_799

# ---------------------------------------------------------------------- search and lists

OPERATORS = frozenset({"=", "!=", ">", "<", ">=", "<=", "~", "!~"})
COMPARISONS = ("AND", "OR")
ORDERS = ("asc", "desc")
CREATED_AT = "chats.createdAt"
SORT_FIELDS = (CREATED_AT, "chats.lastCustomerMessageAt", "chats.lastMessageAt", "chats.closedAt")
CUSTOMER_SORT_FIELDS = ("customers.firstSeen", "customers.lastSeen")
#: HelpCrunch's largest page.
PAGE_SIZE = 100

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
