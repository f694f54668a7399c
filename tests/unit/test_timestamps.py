from __future__ import annotations

from datetime import UTC, datetime

import pytest

from airflow_provider_helpcrunch.timestamps import parse_timestamp, timestamp_seconds

MOMENT = datetime(2020, 10, 28, 11, 49, 6, tzinfo=UTC)


@pytest.mark.parametrize("value", [1603885746, "1603885746", "1603885746.000", " 1603885746 ", 1603885746.0])
def test_the_three_helpcrunch_forms(value):
    assert parse_timestamp(value) == MOMENT
    assert timestamp_seconds(value) == 1603885746.0


@pytest.mark.parametrize("value", [None, "", "  "])
def test_never_set(value):
    assert parse_timestamp(value) is None


@pytest.mark.parametrize("value", ["yesterday", True, [1], "nan", "inf", float("nan")])
def test_anything_else_names_the_value(value):
    with pytest.raises(ValueError, match="not a HelpCrunch timestamp"):
        parse_timestamp(value)


def test_readable_seconds_is_none_for_what_is_no_timestamp():
    from airflow_provider_helpcrunch.timestamps import readable_seconds

    assert readable_seconds("1603864800.000") == 1603864800.0
    assert readable_seconds("soon") is None
    assert readable_seconds(True) is None
    assert readable_seconds(None) is None
