from __future__ import annotations

import pytest
from airflow.providers.common.compat.sdk import AirflowException

from airflow_provider_helpcrunch.exceptions import (
    ErrorDetail,
    HelpCrunchAPIError,
    HelpCrunchAuthError,
    HelpCrunchCancelledError,
    HelpCrunchConfigError,
    HelpCrunchConnectionError,
    HelpCrunchError,
    HelpCrunchNotFoundError,
    HelpCrunchRateLimitError,
    InvalidChatIdsError,
    error_from_answer,
)
from airflow_provider_helpcrunch.outside_text import Scrubber


def test_errors_are_airflow_exceptions():
    for cls in (
        HelpCrunchAuthError,
        HelpCrunchNotFoundError,
        HelpCrunchRateLimitError,
        HelpCrunchAPIError,
        HelpCrunchConnectionError,
        HelpCrunchConfigError,
        HelpCrunchCancelledError,
        InvalidChatIdsError,
    ):
        assert issubclass(cls, HelpCrunchError)
        assert issubclass(cls, AirflowException)


def answer_error(status, body, *, chat_id=None, text=""):
    action = "PUT /chats/readByAgent"
    return error_from_answer(
        status, body=body, text=text, action=action, scrub=Scrubber("k3y"), chat_id=chat_id
    )


class TestErrorFromAnswer:
    def test_a_not_found_404_is_a_missing_chat_only_for_a_chat(self):
        body = {"errors": [{"code": "not_found", "message": "nope"}]}
        assert type(answer_error(404, body, chat_id=5)) is HelpCrunchNotFoundError
        assert type(answer_error(404, body)) is HelpCrunchAPIError

    def test_specific_entries_lead_and_a_few_are_quoted(self):
        entries = [{"code": "invalid_request", "message": "Invalid request"}] + [
            {"code": f"e{i}", "message": "m" * 500} for i in range(10)
        ]
        err = answer_error(400, {"errors": entries})
        message = str(err)
        assert message.index("e0: ") < message.index("e1: ")
        assert "invalid_request" not in message
        assert "and 7 more error(s)" in message
        assert len(message) < 1000
        # the error keeps the first ten entries, bounded, and counts the one it left out
        assert (len(err.errors), err.errors_left_out) == (10, 1)
        assert err.codes[:2] == ("invalid_request", "e0")

    def test_server_text_is_scrubbed(self):
        err = answer_error(401, None, text="bad token k3y")
        assert "k3y" not in str(err)
        assert isinstance(err, HelpCrunchAuthError)


def test_restated_keeps_class_and_details_whatever_the_constructor():
    original = InvalidChatIdsError([("[0]", "x", "not a number")], 0)
    restated = original.restated("with context")
    assert type(restated) is InvalidChatIdsError
    assert str(restated) == "with context"
    assert restated.invalid == original.invalid
    api = HelpCrunchAPIError("m", status_code=500, errors=(ErrorDetail("e", "x"),), chat_id=3)
    again = api.restated("n")
    assert (type(again), again.status_code, again.codes, again.chat_id) == (
        HelpCrunchAPIError,
        500,
        ("e",),
        3,
    )


def test_config_errors_are_value_errors_too():
    with pytest.raises(ValueError, match="x"):
        raise HelpCrunchConfigError("x")


class TestEntriesKeptOnTheError:
    def test_the_key_is_taken_out_of_the_entries_as_of_the_message(self):
        body = {
            "errors": [
                {"code": "unauthorized", "message": "bad header: Bearer k3y"},
                {"code": "k3y", "message": 'echo "k3y"'},
            ]
        }
        err = answer_error(401, body)
        assert "k3y" not in repr(err.errors)
        assert err.errors == (
            ErrorDetail("unauthorized", "bad header: Bearer ***"),
            ErrorDetail("***", 'echo "***"'),
        )
        assert err.codes == ("unauthorized", "***")

    def test_entries_are_bounded_in_number_and_size_and_say_how_many_were_left_out(self):
        megabyte = "x" * 1_000_000  # one string, 20,000 times: as a parsed body holds nothing more
        body = {"errors": [{"code": f"c{n}", "message": megabyte} for n in range(20_000)]}
        err = answer_error(400, body)
        assert len(err.errors) == 10
        assert err.errors_left_out == 19_990
        assert all(len(detail.message) < 300 for detail in err.errors)
        assert err.errors[0].message.endswith("(1,000,000 characters in all)")
        assert len(repr(err.errors)) < 5_000

    def test_a_missing_chat_is_still_recognised_among_many_entries(self):
        entries = [{"code": "invalid_request", "message": "m"}] * 50 + [{"code": "chat_not_found"}]
        err = answer_error(404, {"errors": entries}, chat_id=7)
        assert isinstance(err, HelpCrunchNotFoundError)

    def test_non_text_fields_are_quoted_bounded(self):
        err = answer_error(400, {"errors": [{"code": ["deep", ["er", ["still"]]], "message": 12}]})
        assert err.errors[0].message == "12"
        assert len(err.errors[0].code) < 100

    def test_a_restated_error_keeps_the_bounded_entries(self):
        body = {"errors": [{"code": "c", "message": "k3y"}] * 12}
        err = answer_error(400, body).restated("Stopped at chat 1: ...")
        assert (len(err.errors), err.errors_left_out) == (10, 2)
        assert "k3y" not in repr(err.errors)
