"""One exported record: one timestamp form per field, a schema per stream, valid UTF-8 JSON lines."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import jsonschema
import pytest

from airflow_provider_helpcrunch.exceptions import HelpCrunchAPIError
from airflow_provider_helpcrunch.testing.chats import make_chats, seed_messages
from airflow_provider_helpcrunch.transfers.export_records import (
    SCHEMA_VERSION,
    json_line,
    normalized,
    rfc3339,
    schema,
    schema_bytes,
    timestamp_fields,
)


class TestOneForm:
    @pytest.mark.parametrize(
        "value", [1603885746, "1603885746", "1603885746.000", 1603885746.0, " 1603885746 ", "1603885746.0000"]
    )
    def test_every_way_helpcrunch_writes_a_moment_gives_one_text(self, value):
        assert rfc3339(value) == "2020-10-28T11:49:06.000000Z"

    def test_sub_second_precision_is_kept_exactly(self):
        assert rfc3339("1594139170.913") == "2020-07-07T16:26:10.913000Z"
        assert rfc3339(1594139170.913) == "2020-07-07T16:26:10.913000Z"  # no float rounding to .912999
        assert rfc3339("1594139170.000001") == "2020-07-07T16:26:10.000001Z"

    def test_the_same_instant(self):
        text = rfc3339("1796110858.250")
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        assert parsed.timestamp() == 1796110858.25
        assert parsed.tzinfo == UTC

    @pytest.mark.parametrize("value", [None, "", "  "])
    def test_no_moment_is_null(self, value):
        assert rfc3339(value) is None

    @pytest.mark.parametrize("value", ["yesterday", True, "nan", "inf", [1], {"a": 1}, "1e400", 10**20])
    def test_anything_else_is_refused_by_name(self, value):
        with pytest.raises(ValueError, match="not a timestamp"):
            rfc3339(value)


class TestNormalized:
    def test_every_timestamp_field_of_a_chat_in_one_form_the_rest_as_sent(self):
        chats = make_chats(200, seed=3)
        forms: dict[str, set[type]] = {}
        for chat in chats:
            out = normalized("chats", chat)
            for name in timestamp_fields("chats"):
                if name in out:
                    forms.setdefault(name, set()).add(type(out[name]))
                    assert out[name] is None or out[name].endswith("Z")
            assert {k: v for k, v in out.items() if k not in timestamp_fields("chats")} == {
                k: v for k, v in chat.items() if k not in timestamp_fields("chats")
            }
        # the seeded chats use all three of HelpCrunch's forms; the file has one
        assert forms["updatedAt"] == {str}
        assert forms["closedAt"] == {str, type(None)}
        assert forms["snoozedUntil"] == {str, type(None)}

    def test_a_message_keeps_its_milliseconds(self):
        (message,) = seed_messages({"id": 1, "createdAt": 1_700_000_000, "lastMessageAt": 1_700_000_000})
        message["createdAt"] = "1700000000.913"
        assert normalized("messages", message)["createdAt"] == "2023-11-14T22:13:20.913000Z"

    def test_an_unreadable_timestamp_is_helpcrunchs_error_naming_the_record(self):
        with pytest.raises(HelpCrunchAPIError, match=r"chat 7 with an unreadable closedAt: .*'soon'"):
            normalized("chats", {"id": 7, "closedAt": "soon"})

    def test_records_match_their_schema(self):
        for chat in make_chats(50, seed=1):
            jsonschema.validate(normalized("chats", chat), schema("chats"))
            for message in seed_messages(chat):
                jsonschema.validate(normalized("messages", message), schema("messages"))


class TestSchemas:
    @pytest.mark.parametrize("stream", ["chats", "messages", "customers"])
    def test_each_stream_has_a_valid_versioned_schema(self, stream):
        loaded = schema(stream)
        jsonschema.Draft202012Validator.check_schema(loaded)
        assert loaded["$id"].endswith(f":{stream}:v{SCHEMA_VERSION}")
        assert json.loads(schema_bytes(stream)) == loaded
        assert "createdAt" in timestamp_fields(stream)


class TestJsonLine:
    def test_sorted_keys_one_line(self):
        assert json_line({"b": 1, "a": "é"}) == '{"a":"é","b":1}\n'.encode()

    def test_a_lone_surrogate_is_kept_escaped_in_valid_utf8(self):
        record = json.loads('{"id": 1, "text": "broken \\ud83d emoji, fine \\ud83d\\ude00"}')
        line = json_line(record)
        text = line.decode("utf-8")  # valid UTF-8: strict decoding does not fail
        assert "\\ud83d emoji" in text
        assert json.loads(text) == record  # the same text comes back
        assert "😀" in text  # a proper pair stays as it is

    def test_a_nan_is_the_providers_error(self):
        with pytest.raises(HelpCrunchAPIError, match="id 3 cannot be written as JSON"):
            json_line({"id": 3, "score": float("nan")})
