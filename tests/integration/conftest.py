from __future__ import annotations

import pytest
import requests

from tests.helpers import API_KEY

pytestmark = pytest.mark.integration


@pytest.fixture
def standin(make_helpcrunch_standin):
    """A stand-in with 30 chats, no rate limit, accepting the tests' API key."""
    return make_helpcrunch_standin(chats=30, api_key=API_KEY, requests_per_minute=None)


@pytest.fixture
def api(standin):
    """A plain requests session to the stand-in, with the right key."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {API_KEY}"
    session.base = standin.base_url
    yield session
    session.close()
