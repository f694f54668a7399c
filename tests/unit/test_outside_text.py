from __future__ import annotations

import json
from urllib.parse import quote_plus

import pytest

from airflow_provider_helpcrunch.outside_text import Scrubber, quote, short_repr


class TestQuote:
    def test_short_text_on_one_line(self):
        assert quote("a\n  b\tc") == "a b c"

    def test_long_text_is_cut_and_counted(self):
        text = "x" * 10_000
        quoted = quote(text, 100)
        assert quoted == "x" * 100 + "... (10,000 characters in all)"


class TestScrubber:
    @pytest.mark.parametrize(
        "form",
        [
            lambda key: key,
            lambda key: json.dumps(key)[1:-1],
            lambda key: repr(key)[1:-1],
            quote_plus,
        ],
    )
    def test_every_form_is_taken_out(self, form):
        key = 'k3y/with\\odd"chars+='
        scrub = Scrubber(key)
        assert scrub(f"before {form(key)} after") == "before *** after"

    def test_scrubbing_comes_before_the_cut(self):
        key = "secret-key-1234567890"
        text = "y" * 95 + key
        assert "secret" not in Scrubber(key).quote(text, 100)

    def test_no_secret_leaves_text_alone(self):
        assert Scrubber("")("text") == "text"


def test_short_repr_bounds_deep_and_long_values():
    deep: list = []
    for _ in range(10_000):
        deep = [deep]
    assert len(short_repr(deep)) < 100
    assert len(short_repr("z" * 1_000_000)) < 100
