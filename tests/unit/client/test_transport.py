"""One attempt, in-process (requests-mock); the deadline at the socket is tested over loopback HTTP."""

from __future__ import annotations

import pytest
import requests

from airflow_provider_helpcrunch.client.transport import (
    BearerAuth,
    ResponseTooLarge,
    make_session,
    send_once,
)
from tests.helpers import API_KEY, BASE

URL = f"{BASE}/chats/readByAgent"


@pytest.fixture
def session():
    return make_session(token=API_KEY, headers={"Accept": "application/json"}, pool_size=4)


def test_the_bearer_is_the_requests_auth_and_its_repr_hides_it(session, requests_mock):
    requests_mock.put(URL, json={})
    send_once(session, "PUT", URL, timeout=5, max_body_bytes=1000, json={"id": 1})
    assert requests_mock.last_request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert API_KEY not in repr(BearerAuth(API_KEY))


def test_a_redirect_is_the_answer(session, requests_mock):
    requests_mock.put(URL, status_code=302, headers={"Location": "https://elsewhere.example/"})
    answer = send_once(session, "PUT", URL, timeout=5, max_body_bytes=1000)
    assert (answer.status, answer.headers["Location"]) == (302, "https://elsewhere.example/")
    assert requests_mock.call_count == 1


@pytest.mark.parametrize("size", [1000, 1001])
def test_the_body_cap(session, requests_mock, size):
    requests_mock.put(URL, content=b"x" * size)
    if size > 1000:
        with pytest.raises(ResponseTooLarge, match="1,000"):
            send_once(session, "PUT", URL, timeout=5, max_body_bytes=1000)
    else:
        assert len(send_once(session, "PUT", URL, timeout=5, max_body_bytes=1000).body) == size


def test_transport_failures_are_requests_exceptions(session, requests_mock):
    requests_mock.put(URL, exc=requests.ConnectionError("reset"))
    with pytest.raises(requests.ConnectionError):
        send_once(session, "PUT", URL, timeout=5, max_body_bytes=1000)
