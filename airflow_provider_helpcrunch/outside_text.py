"""
Text from outside (HelpCrunch's answers, transport errors, XCom values) made safe to put in a message.

Every message the provider builds from such text goes through :func:`quote` (one line, bounded) after a
:class:`Scrubber` has taken the API key out of it, in every form a server or a library may have echoed it.
"""

from __future__ import annotations

import json
import re
import reprlib
from typing import Any
from urllib.parse import quote as url_quote
from urllib.parse import quote_plus

#: the most characters of outside text one message quotes.
MAX_QUOTED_CHARS = 300
#: how far into a long text :func:`quote` looks; the rest is only counted.
_SCAN_FACTOR = 8
REDACTED = "***"

_repr = reprlib.Repr()
_repr.maxlevel = 3
_repr.maxstring = 80
_repr.maxother = 80
_repr.maxlist = _repr.maxtuple = _repr.maxdict = _repr.maxset = 6


def quote(text: str, limit: int = MAX_QUOTED_CHARS) -> str:
    """``text`` on one line, cut to ``limit`` characters; a cut says how long the whole text was."""
    head = text[: limit * _SCAN_FACTOR]
    line = " ".join(head.split())
    if len(line) <= limit and len(head) == len(text):
        return line
    return f"{line[:limit]}... ({len(text):,} characters in all)"


def short_repr(value: Any) -> str:
    """Return a bounded ``repr`` of any value, however large or deeply nested."""
    try:
        return _repr.repr(value)
    except Exception:  # a foreign object whose __repr__ fails
        return f"<{type(value).__name__}>"


def secret_forms(secret: str) -> set[str]:
    """Return the secret as it may appear in text: as is, escaped by ``repr`` or JSON, URL-encoded."""
    if not secret:
        return set()
    forms = {
        secret,
        repr(secret)[1:-1],
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        url_quote(secret, safe=""),
        quote_plus(secret),
        secret.encode("unicode_escape").decode("ascii"),
    }
    return {form for form in forms if form}


class Scrubber:
    """
    Replace secrets, and their escaped forms, with ``***`` in a text.

    :param secrets: the secrets to take out (empty ones are ignored).
    """

    def __init__(self, *secrets: str) -> None:
        forms: set[str] = set()
        for secret in secrets:
            forms |= secret_forms(secret)
        self.forms = frozenset(forms)
        # longest first, so that a form never leaves the tail of a longer one behind
        alternatives = "|".join(re.escape(form) for form in sorted(forms, key=len, reverse=True))
        self._pattern = re.compile(alternatives) if alternatives else None

    def __call__(self, text: str) -> str:
        return self._pattern.sub(REDACTED, text) if self._pattern is not None else text

    def quote(self, text: str, limit: int = MAX_QUOTED_CHARS) -> str:
        """Scrubbed, then quoted (scrubbing first: a cut must never leave part of a secret)."""
        return quote(self(text), limit)
