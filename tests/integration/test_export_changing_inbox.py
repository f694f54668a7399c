"""
The export against an inbox that agents keep changing while it runs: chats leaving the window, entering it,
changing twice, new messages moving chats to the front; and a HelpCrunch whose new messages move only
``lastMessageAt``. Judged against what the stand-in held, record by record, not against the export's own
reading of it.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from datetime import datetime

import pytest

from airflow_provider_helpcrunch.testing.chats import make_message
from airflow_provider_helpcrunch.timestamps import timestamp_seconds
from tests.helpers import API_KEY, export_operator

pytestmark = pytest.mark.integration

DAY = 86_400


class Agents:
    """
    Every ``every``-th request the stand-in answers, an agent acts (up to ``limit`` times): the action is
    called with the stand-in, between that answer and the next request.
    """

    def __init__(self, action, *, every: int, limit: int, path: str = "/") -> None:
        self.action = action
        self.every = every
        self.limit = limit
        self.path = path  # counted: the requests to paths starting so
        self.acted = 0
        self.seen = itertools.count(1)
        self.lock = threading.Lock()
        self.standin = None

    def __call__(self, record) -> None:
        if not record.path.startswith(self.path):
            return
        with self.lock:
            if next(self.seen) % self.every or self.acted >= self.limit:
                return
            self.acted += 1
        self.action(self.standin, self.acted)


def make_inbox(make_helpcrunch_standin, agents, *, chats, start, end, message_moves_updated_at=True):
    """
    ``chats`` chats, created over the 10 days before ``start`` (a run of 130 in one second: longer than a
    page), each changed in the window with messages before, in and after it.
    """
    standin = make_helpcrunch_standin(
        chats=0,
        api_key=API_KEY,
        requests_per_minute=None,
        on_request=agents,
        message_moves_updated_at=message_moves_updated_at,
    )
    agents.standin = standin
    span = end - start
    for n in range(chats):
        created = start - DAY if n < 130 else start - 10 * DAY + n * 997 % (9 * DAY)
        chat_id = 7000 + n
        standin.add_chat(id=chat_id, createdAt=created)
        for moment in (start - 60, start + n * 37 % span, start + n * 53 % span):
            standin.add_message(chat_id, createdAt=moment)
        # changed in the window (or, for a tenth of them, before it: only their messages are in it)
        updated = start - 3600 if n % 10 == 0 else start + n * 61 % span
        standin.update_chat(chat_id, updatedAt=updated)
    return standin


def in_window(standin, start, end) -> set[int]:
    return {
        chat_id
        for chat_id, chat in standin.chats.items()
        if start <= timestamp_seconds(chat["updatedAt"]) < end
    }


def window_messages(standin, start, end) -> set[int]:
    return {
        message["id"]
        for chat_id in standin.chats
        for message in standin.messages(chat_id)
        if start <= timestamp_seconds(message["createdAt"]) < end
    }


def export(tmp_path, start, end, **kwargs) -> dict:
    return export_operator(tmp_path, start, end, **kwargs).execute({})


def ids_in(result, stream) -> list[int]:
    path = result["streams"][stream]["path"].removeprefix("file://")
    with open(path, encoding="utf-8") as file:
        return [json.loads(line)["id"] for line in file]


def leave_the_window(count):
    """Agents close ``count`` chats of the (past) window: their updatedAt moves to now, out of it."""

    def act(standin, acted):
        for n in range(count):
            in_it = sorted(
                i for i, c in standin.chats.items() if timestamp_seconds(c["updatedAt"]) < PAST_END
            )
            chat_id = in_it[(acted * 7919 + n * 104729) % len(in_it)]
            standin.update_chat(chat_id, status="closed", updatedAt=int(time.time()))

    return act


PAST_START, PAST_END = 1_764_000_000, 1_764_000_000 + DAY


@pytest.mark.parametrize("per_page", [1, 5])
def test_chats_leaving_the_window_while_it_is_read_push_no_other_chat_out(
    tmp_path, make_helpcrunch_standin, per_page
):
    # after each page of the window's chats, agents close chats of the window (out of it)
    agents = Agents(leave_the_window(per_page), every=1, limit=20, path="/v1/chats/search")
    standin = make_inbox(make_helpcrunch_standin, agents, chats=400, start=PAST_START, end=PAST_END)
    at_start = in_window(standin, PAST_START, PAST_END)
    messages_at_start = window_messages(standin, PAST_START, PAST_END)
    result = export(tmp_path, PAST_START, PAST_END)
    at_end = in_window(standin, PAST_START, PAST_END)
    assert agents.acted >= 4  # the agents did change the inbox between pages
    exported = ids_in(result, "chats")
    assert len(exported) == len(set(exported))  # each chat once
    assert at_start & at_end <= set(exported)  # none that stayed in the window is missing
    assert set(exported) <= at_start  # none invented: a chat only leaves a past window
    # a message is immutable: every message of the window is there, whatever its chat did meanwhile
    assert (
        set(ids_in(result, "messages")) == messages_at_start == window_messages(standin, PAST_START, PAST_END)
    )


def test_chats_entering_and_changing_twice_during_an_open_window(tmp_path, make_helpcrunch_standin):
    now = int(time.time())
    start, end = now - DAY, now + DAY  # the window holds "now": agent writes move chats into it

    def touch(standin, acted):
        chats = standin.chats
        chat_ids = sorted(chats)
        outside = [i for i in chat_ids if timestamp_seconds(chats[i]["updatedAt"]) < start]
        if acted % 2 and outside:  # a chat enters the window
            standin.update_chat(outside[acted % len(outside)], updatedAt=int(time.time()))
        else:  # a chat of the window changes again
            standin.update_chat(chat_ids[(acted * 31) % len(chat_ids)], updatedAt=int(time.time()))

    agents = Agents(touch, every=4, limit=60)
    standin = make_inbox(make_helpcrunch_standin, agents, chats=300, start=start, end=end)
    at_start = in_window(standin, start, end)
    result = export(tmp_path, start, end)
    at_end = in_window(standin, start, end)
    assert agents.acted == 60
    exported = set(ids_in(result, "chats"))
    assert at_start & at_end <= exported
    assert exported <= at_end  # in a window that holds now, nothing leaves


def test_messages_whose_chat_updated_at_did_not_move_are_exported(tmp_path, make_helpcrunch_standin):
    """A HelpCrunch where a new message moves only lastMessageAt: the messages stream does not rely on
    updatedAt; chats getting new messages while it pages (moving to the front) are read again."""

    def new_messages(standin, acted):  # three chats get a new message: they move to the list's front
        chat_ids = sorted(standin.chats)
        for n in range(3):
            standin.add_message(chat_ids[(acted * 97 + n * 31) % len(chat_ids)], createdAt=int(time.time()))

    # after each page of the chats by lastMessageAt
    agents = Agents(new_messages, every=1, limit=20, path="/v1/chats?")
    standin = make_inbox(
        make_helpcrunch_standin,
        agents,
        chats=300,
        start=PAST_START,
        end=PAST_END,
        message_moves_updated_at=False,
    )
    for chat_id in list(standin.chats)[:40]:  # their updatedAt is before the window; their messages are not
        standin.update_chat(chat_id, updatedAt=PAST_START - 7200)
    expected = window_messages(standin, PAST_START, PAST_END)
    result = export(tmp_path, PAST_START, PAST_END, streams=["messages"])
    assert agents.acted >= 4  # chats got new messages (moved to the front) while the export read them
    exported = ids_in(result, "messages")
    assert len(exported) == len(set(exported))
    assert set(exported) == expected == window_messages(standin, PAST_START, PAST_END)
    # about one page per 100 chats on top of the messages: the list by lastMessageAt and its re-reads
    listing = [r for r in standin.requests if r.path.startswith("/v1/chats?")]
    assert len(listing) <= 300 // 100 + 1 + 3


def test_the_messages_of_a_chat_whose_updated_at_is_unreadable_still_come(tmp_path, make_helpcrunch_standin):
    standin = make_helpcrunch_standin(chats=0, api_key=API_KEY, requests_per_minute=None)
    standin.add_chat(id=1, createdAt=PAST_START - DAY)
    message = standin.add_message(1, createdAt=PAST_START + 5)
    standin.update_chat(1, updatedAt=None)  # HelpCrunch's documented chat carries no updatedAt
    result = export(tmp_path, PAST_START, PAST_END, streams=["chats", "messages"])
    assert ids_in(result, "messages") == [message["id"]]
    assert result["streams"]["chats"]["records"] == 0


def test_make_message_is_the_stand_ins_shape():
    message = make_message({"id": 3}, 1, "1700000000.5")
    assert datetime.fromtimestamp(float(message["createdAt"])).microsecond == 500_000
