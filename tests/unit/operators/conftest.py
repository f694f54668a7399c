"""Fixtures of the operators' tests."""

from __future__ import annotations

import logging

import pytest


@pytest.fixture(autouse=True)
def fast_connection(set_connection):
    # a fast pace keeps these tests quick; pacing itself is tested on the virtual clock
    set_connection(extra={"requests_per_minute": 60000})


@pytest.fixture
def logs(caplog, capsys):
    """Everything the task logged: stdlib logging on Airflow 2, structlog to stdout on Airflow 3."""
    caplog.set_level(logging.DEBUG)
    return lambda: caplog.text + capsys.readouterr().out
