"""The values of the chat writes: checked before anything is sent, read back from chats in every spelling."""

from __future__ import annotations

from datetime import UTC, datetime

import pendulum
import pytest

from airflow_provider_helpcrunch.client.changes import (
    canonical_status,
    check_snooze,
    check_status,
    shows_reference,
    shows_snooze,
    shows_status,
)
from airflow_provider_helpcrunch.exceptions import HelpCrunchConfigError


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("closed", "closed"),
        ("on hold", "on hold"),
        ("on-hold", "on hold"),
        ("onhold", "on hold"),
        (" On Hold ", "on hold"),
        ("open", "opened"),
        ("no communication", "no communication"),
    ],
)
def test_every_documented_spelling_of_a_status_is_taken(given, expected):
    assert check_status(given) == expected


@pytest.mark.parametrize("bad", ["done", "", None, 3, ["closed"], "on_hold"])
def test_an_unknown_status_is_refused_by_name(bad):
    with pytest.raises(
        HelpCrunchConfigError, match=r"status must be one of .* got " + repr(bad).replace("[", r"\[")
    ):
        check_status(bad)


def test_a_chat_shows_its_status_in_any_spelling():
    assert shows_status({"status": "onhold"}, "on hold")
    assert shows_status({"status": "on-hold"}, "on hold")
    assert not shows_status({"status": "opened"}, "on hold")
    assert not shows_status({}, "closed")
    assert canonical_status("empty") is None  # a status HelpCrunch shows, never one to set


class TestReferences:
    def test_an_object_a_bare_id_or_null(self):
        assert shows_reference({"assignee": {"id": 12, "name": "Marc"}}, "assignee", 12)
        assert shows_reference({"assignee": 12}, "assignee", 12)
        assert shows_reference({"assignee": None}, "assignee", None)
        assert not shows_reference({"assignee": {"id": 13}}, "assignee", 12)
        assert not shows_reference({"assignee": {"id": 12}}, "assignee", None)
        assert not shows_reference({"assignee": None}, "assignee", 12)

    def test_a_chat_that_does_not_say_is_not_as_wanted(self):
        assert not shows_reference({}, "assignee", None)
        assert not shows_reference({"department": {"name": "Support"}}, "department", None)
        assert not shows_reference({"department": True}, "department", 1)
        assert not shows_reference({"department": "1"}, "department", 1)


class TestSnooze:
    @pytest.mark.parametrize(
        "given",
        [
            1_764_000_000,
            "1764000000",
            1_764_000_000.0,
            datetime.fromtimestamp(1_764_000_000, tz=UTC),
            pendulum.from_timestamp(1_764_000_000),
        ],
    )
    def test_a_moment_in_every_form(self, given):
        assert check_snooze(given) == 1_764_000_000

    def test_none_unsnoozes(self):
        assert check_snooze(None) is None

    @pytest.mark.parametrize("bad", ["tomorrow", True, 0, -5, "1.5", 10**13])
    def test_bad_moments_are_refused_by_name(self, bad):
        with pytest.raises(HelpCrunchConfigError, match="snoozed_until"):
            check_snooze(bad)

    def test_a_chat_shows_its_snooze_in_every_timestamp_form(self):
        for shown in (1_764_000_000, "1764000000", "1764000000.000"):
            assert shows_snooze({"snoozedUntil": shown}, 1_764_000_000)
        assert not shows_snooze({"snoozedUntil": "1764000001.000"}, 1_764_000_000)
        assert shows_snooze({"snoozedUntil": None}, None)
        assert shows_snooze({"snoozedUntil": ""}, None)
        assert not shows_snooze({"snoozedUntil": "1764000000"}, None)
        assert not shows_snooze({}, None)
        assert not shows_snooze({"snoozedUntil": "soon"}, 1_764_000_000)
