from __future__ import annotations

from datetime import UTC, datetime

import pendulum
import pytest

from airflow_provider_helpcrunch.client.filters import normalize_filters
from airflow_provider_helpcrunch.exceptions import HelpCrunchConfigError


class TestFilters:
    def test_dicts_and_tuples_and_prefix(self):
        assert normalize_filters(
            [{"field": "chats.status", "operator": "=", "value": "closed"}, ("closedAt", "<", 1700000000)]
        ) == [
            {"field": "chats.status", "operator": "=", "value": "closed"},
            {"field": "chats.closedAt", "operator": "<", "value": 1700000000},
        ]

    def test_one_filter_alone(self):
        assert normalize_filters(("status", "=", "closed")) == [
            {"field": "chats.status", "operator": "=", "value": "closed"}
        ]

    @pytest.mark.parametrize(
        "value",
        [
            1700000000,
            "1700000000",
            " 1700000000 ",
            1700000000.0,
            datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC),
            datetime(2023, 11, 14, 22, 13, 20),  # naive: taken as UTC, as Airflow does
            pendulum.datetime(2023, 11, 15, 0, 13, 20, tz="Europe/Kyiv"),
        ],
    )
    def test_timestamp_values(self, value):
        assert normalize_filters([("closedAt", "<", value)])[0]["value"] == 1700000000

    def test_int_fields_take_rendered_numbers(self):
        assert normalize_filters([("assignee", "=", "14")])[0]["value"] == 14

    @pytest.mark.parametrize(
        ("filters", "message"),
        [
            ([("status", "==", "closed")], "unknown operator '=='"),
            ([("status", "closed")], "filter \\[0\\] must be"),
            ([{"field": "status", "operator": "="}], "exactly field, operator and value"),
            ([{"field": "status", "operator": "=", "value": "x", "extra": 1}], "exactly field"),
            ([("closedAt", "<", "yesterday")], "closedAt.*'yesterday'"),
            ([("closedAt", "<", True)], "True"),
            ([("assignee", "=", "Olena")], "integer ID.*'Olena'"),
            ([("status", "=", 3)], "must be a string"),
            ([("", "=", "x")], "non-empty string"),
            ([("status", "=", None)], "has no value"),
            ("status = closed", "must be a list"),
        ],
    )
    def test_bad_filters_are_named(self, filters, message):
        with pytest.raises(HelpCrunchConfigError, match=message):
            normalize_filters(filters)
