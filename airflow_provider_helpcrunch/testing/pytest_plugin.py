"""
Pytest fixtures for testing DAGs that use HelpCrunch.

Opt in from a ``conftest.py``::

    pytest_plugins = ["airflow_provider_helpcrunch.testing.pytest_plugin"]

``helpcrunch_standin`` starts a :class:`~airflow_provider_helpcrunch.testing.HelpCrunchStandIn` on
loopback and points the ``helpcrunch_default`` connection at it for the duration of the test::

    def test_my_cleanup(helpcrunch_standin):
        chat = helpcrunch_standin.add_chat(status="closed", readByAgent=False)
        run_my_task()
        assert helpcrunch_standin.chat(chat["id"])["readByAgent"] is True

``make_helpcrunch_standin(**options)`` does the same with your own options (rate limit, latency,
seed...) and a connection ID of your choice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_helpcrunch.testing.server import HelpCrunchStandIn

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


@pytest.fixture
def make_helpcrunch_standin(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., HelpCrunchStandIn]]:
    """Return a factory: ``make_helpcrunch_standin(conn_id="helpcrunch_default", **options)``."""
    started: list[HelpCrunchStandIn] = []

    def make(conn_id: str = "helpcrunch_default", **options: Any) -> HelpCrunchStandIn:
        standin = HelpCrunchStandIn(**options).start()
        started.append(standin)
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", standin.connection_json())
        return standin

    yield make
    for standin in started:
        standin.stop()


@pytest.fixture
def helpcrunch_standin(make_helpcrunch_standin: Callable[..., HelpCrunchStandIn]) -> HelpCrunchStandIn:
    """Return a started stand-in with 20 seeded chats, behind the ``helpcrunch_default`` connection."""
    return make_helpcrunch_standin(chats=20)
