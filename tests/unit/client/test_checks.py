from __future__ import annotations

import pytest

from airflow_provider_helpcrunch.client.checks import (
    chat_id_problem,
    check_by,
    check_chat_id,
    check_id,
    check_int,
    check_max_chats,
    check_read,
    is_ascii_digits,
)
from airflow_provider_helpcrunch.exceptions import HelpCrunchConfigError
from airflow_provider_helpcrunch.vocabulary import MAX_ID as MAX_CHAT_ID


@pytest.mark.parametrize("value", [True, False, 1.0, "1", None, 0, -1])
def test_check_int_names_what_is_not_a_positive_int(value):
    with pytest.raises(HelpCrunchConfigError, match=rf"n must be an int of at least 1, got {value!r}"):
        check_int(value, "n")


def test_check_int_bounds():
    assert check_int(32, "m", maximum=32) == 32
    with pytest.raises(HelpCrunchConfigError, match="from 1 to 32, got 33"):
        check_int(33, "m", maximum=32)
    assert check_int(0, "r", minimum=0) == 0


@pytest.mark.parametrize(
    ("chat_id", "problem"),
    [
        (1, None),
        (MAX_CHAT_ID, None),
        (0, "not positive"),
        (-5, "not positive"),
        (MAX_CHAT_ID + 1, "over 2**63 - 1"),
    ],
)
def test_chat_id_problem(chat_id, problem):
    assert chat_id_problem(chat_id) == problem


def test_check_chat_id():
    assert check_chat_id(5208) == 5208
    with pytest.raises(HelpCrunchConfigError, match="chat_id"):
        check_chat_id(2**63)


def test_by_read_and_max_chats():
    assert check_by("customer") == "customer"
    with pytest.raises(HelpCrunchConfigError, match="'admin'"):
        check_by("admin")
    assert check_read(False) is False
    with pytest.raises(HelpCrunchConfigError, match="'yes'"):
        check_read("yes")
    assert check_max_chats(None) is None
    with pytest.raises(HelpCrunchConfigError, match="max_chats"):
        check_max_chats(0)


@pytest.mark.parametrize(
    ("text", "expected"), [("123", True), ("²", False), ("\u0661", False), ("\uff11", False), ("", False)]
)
def test_is_ascii_digits(text, expected):
    assert is_ascii_digits(text) is expected


@pytest.mark.parametrize(("given", "expected"), [(7, 7), ("7", 7), (" 12 ", 12)])
def test_ids_from_ints_and_rendered_templates(given, expected):
    assert check_id(given, "assignee") == expected


@pytest.mark.parametrize("bad", [0, -1, True, "seven", "7.5", 7.0, None, 2**63, "²"])
def test_bad_ids_are_refused_by_name(bad):
    with pytest.raises(HelpCrunchConfigError, match="department must be a positive integer ID"):
        check_id(bad, "department")
