"""Every chat write over HTTP against the stand-in: what shows, bad values, missing chats, 429s, stops."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
import requests

from airflow_provider_helpcrunch.exceptions import HelpCrunchAPIError, HelpCrunchAuthError
from airflow_provider_helpcrunch.hooks.helpcrunch import HelpCrunchHook
from airflow_provider_helpcrunch.operators.helpcrunch import (
    AssignChatOperator,
    SetChatStatusOperator,
    SnoozeChatOperator,
)
from airflow_provider_helpcrunch.testing import Fault
from tests.helpers import API_KEY

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = pytest.mark.integration

UNTIL = 1_900_000_000


@dataclass(frozen=True)
class Write:
    """One kind of write: its operator, a value HelpCrunch refuses, and how a written chat looks."""

    name: str
    make: Callable[..., Any]
    bad: dict[str, Any]
    written: Callable[[dict], bool]
    unwritten: dict[str, Any]


WRITES = [
    Write(
        "status",
        lambda **kw: SetChatStatusOperator(status=kw.pop("value", "closed"), **kw),
        {},  # every documented status is taken: the bad value is refused before sending (unit tests)
        lambda chat: chat["status"] == "closed",
        {"status": "opened"},
    ),
    Write(
        "assignee",
        lambda **kw: AssignChatOperator(assignee=kw.pop("value", 12), **kw),
        {"value": 99},  # no such agent
        lambda chat: (chat["assignee"] or {}).get("id") == 12,
        {"assignee": None},
    ),
    Write(
        "department",
        lambda **kw: AssignChatOperator(department=kw.pop("value", 2), **kw),
        {"value": 9},  # no such department
        lambda chat: (chat["department"] or {}).get("id") == 2,
        {"department": None},
    ),
    Write(
        "snooze",
        lambda **kw: SnoozeChatOperator(snoozed_until=kw.pop("value", UNTIL), **kw),
        {},
        lambda chat: chat["snoozedUntil"] == f"{UNTIL}.000",
        {"snoozedUntil": None},
    ),
]
IDS = {write.name: write for write in WRITES}


def fresh(standin, write: Write, count: int) -> list[int]:
    """``count`` chats not yet as the write wants them."""
    return [standin.add_chat(id=6000 + n, **write.unwritten)["id"] for n in range(count)]


def fast(**kwargs: Any) -> dict[str, Any]:
    return {"task_id": "write", "requests_per_minute": 6000, "hook_params": {"retry_backoff": 0.05}, **kwargs}


@pytest.mark.parametrize("write", WRITES, ids=lambda w: w.name)
def test_the_change_shows_in_the_chat_and_in_search(standin, api, write):
    ids = fresh(standin, write, 5)
    result = write.make(**fast(chat_ids=ids)).execute({})
    assert result["updated"] == ids
    for chat_id in ids:
        shown = requests.get(f"{standin.base_url}/chats/{chat_id}", headers=api.headers, timeout=5).json()
        assert write.written(shown)
    found = HelpCrunchHook().search_chats([("updatedAt", ">=", 1_700_000_000)])
    assert {chat["id"] for chat in found if write.written(chat)} >= set(ids)


@pytest.mark.parametrize("write", [w for w in WRITES if w.bad], ids=lambda w: w.name)
def test_a_value_helpcrunch_refuses_stops_at_the_first_chat(standin, write):
    ids = fresh(standin, write, 6)
    op = write.make(**fast(chat_ids=ids, max_in_flight=1), **write.bad)
    with pytest.raises(HelpCrunchAPIError, match="invalid_chat_value") as caught:
        op.execute({})
    assert "Stopped at chat 6000 (1 of 6): 0 chat(s) were assigned before the stop" in str(caught.value)
    assert [r.status for r in standin.requests] == [400]  # a 400 is not repeated, and nothing follows it


@pytest.mark.parametrize("write", WRITES, ids=lambda w: w.name)
def test_a_missing_chat_is_reported_and_the_rest_are_written(standin, write):
    ids = fresh(standin, write, 3)
    result = write.make(**fast(chat_ids=[ids[0], 999, *ids[1:]], on_missing="skip")).execute({})
    assert (result["updated"], result["missing"]) == (ids, [999])
    assert all(write.written(standin.chat(i)) for i in ids)


@pytest.mark.parametrize("write", WRITES, ids=lambda w: w.name)
def test_a_429_storm_loses_nothing(make_helpcrunch_standin, write):
    # the server allows 4 requests a second; the hook is told 6000/min and learns from the 429s
    standin = make_helpcrunch_standin(chats=0, api_key=API_KEY, requests_per_minute=4, window=1.0)
    ids = fresh(standin, write, 12)
    result = write.make(**fast(chat_ids=ids, max_in_flight=4)).execute({})
    statuses = [r.status for r in standin.requests]
    assert statuses.count(429) > 0
    assert statuses.count(200) == 12
    assert result["updated"] == ids
    assert all(write.written(standin.chat(i)) for i in ids)


@pytest.mark.parametrize("write", WRITES, ids=lambda w: w.name)
def test_a_stop_mid_run_sends_nothing_after_it(standin, write):
    ids = fresh(standin, write, 20)
    standin.inject(Fault(status=401), chat_id=ids[7])
    # 100 ms between starts: the 401 is answered before the next chat's turn at the pacer comes
    op = write.make(**fast(chat_ids=ids, max_in_flight=4, requests_per_minute=600))
    with pytest.raises(HelpCrunchAuthError, match=f"Stopped at chat {ids[7]} \\(8 of 20\\)") as caught:
        op.execute({})
    log = standin.requests
    assert (log[-1].chat_id, log[-1].status) == (ids[7], 401)  # the stopping answer was the last
    sent = [r.chat_id for r in log[:-1]]
    assert sent == ids[:7]  # in input order, each once; none after the stop
    assert all(write.written(standin.chat(i)) for i in sent)
    assert not any(write.written(standin.chat(i)) for i in ids[7:])
    assert f"13 not done [{ids[7]}, {ids[8]}" in str(caught.value)


def test_on_hold_falls_back_to_the_older_spelling_against_an_older_api(make_helpcrunch_standin):
    standin = make_helpcrunch_standin(chats=0, api_key=API_KEY, requests_per_minute=None, on_hold="on-hold")
    ids = [standin.add_chat(id=6000 + n, status="opened")["id"] for n in range(3)]
    result = SetChatStatusOperator(**fast(chat_ids=ids, max_in_flight=1), status="on hold").execute({})
    assert result["updated"] == ids
    assert [r.body["status"] for r in standin.requests] == ["on hold", "on-hold", "on-hold", "on-hold"]
    assert all(standin.chat(i)["status"] == "on-hold" for i in ids)
