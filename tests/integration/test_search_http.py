"""Search and list over real HTTP: pages of 100 from the stand-in, filters typed on the way."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from airflow_provider_helpcrunch.exceptions import HelpCrunchNotFoundError
from airflow_provider_helpcrunch.hooks.helpcrunch import HelpCrunchHook
from airflow_provider_helpcrunch.testing import Fault
from airflow_provider_helpcrunch.timestamps import timestamp_seconds
from tests.helpers import API_KEY

pytestmark = pytest.mark.integration


@pytest.fixture
def big(make_helpcrunch_standin):
    return make_helpcrunch_standin(chats=250, api_key=API_KEY, requests_per_minute=None)


def hook() -> HelpCrunchHook:
    return HelpCrunchHook(requests_per_minute=6000, retry_backoff=0.05)


def test_list_every_page(big):
    found = list(hook().list_chats(sort="createdAt", order="asc"))
    assert sorted(c["id"] for c in found) == sorted(big.chats)
    assert [r.path.split("offset=")[1].split("&")[0] for r in big.requests] == ["0", "100", "200"]


def test_search_with_a_datetime_filter_over_pages(big):
    chats = list(big.chats.values())
    cut = sorted(timestamp_seconds(c["createdAt"]) for c in chats)[200]
    expected = {c["id"] for c in chats if timestamp_seconds(c["createdAt"]) < cut}
    when = datetime.fromtimestamp(cut, tz=UTC)
    found = list(hook().search_chats([("createdAt", "<", when)]))
    assert {c["id"] for c in found} == expected
    assert len(found) == len(expected) > 100
    assert big.requests[0].body["filter"] == [
        {"field": "chats.createdAt", "operator": "<", "value": int(cut)}
    ]


def test_search_survives_faults_mid_paging(big):
    big.inject(Fault(status=503), request=big.request_count + 2)
    big.inject(Fault(drop=True), request=big.request_count + 3)
    found = list(hook().search_chats([("status", "!=", "nope")]))
    assert len(found) == 250
    assert [r.status for r in big.requests] == [200, 503, None, 200, 200]


def test_max_chats_over_http(big):
    assert len(list(hook().search_chats([], max_chats=130))) == 130
    assert [r.body["limit"] for r in big.requests] == [100, 100]  # pages on a key are full pages


def test_get_chat(big):
    chat_id = next(iter(big.chats))
    assert hook().get_chat(chat_id) == big.chat(chat_id)
    with pytest.raises(HelpCrunchNotFoundError):
        hook().get_chat(1)


def test_or_of_two_filters_over_pages_finds_the_union_once_each(big):
    chats = big.chats.values()
    expected = {c["id"] for c in chats if c["status"] in ("closed", "opened")}
    found = list(hook().search_chats([("status", "=", "closed"), ("status", "=", "opened")], comparison="OR"))
    assert {c["id"] for c in found} == expected
    assert len(found) == len(expected) > 100  # each once
    created = [timestamp_seconds(c["createdAt"]) for c in found]
    assert created == sorted(created)  # merged in createdAt order
    assert {r.body["comparison"] for r in big.requests} == {"AND"}
