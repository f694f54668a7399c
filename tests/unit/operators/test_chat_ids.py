from __future__ import annotations

from collections.abc import Sequence

import pytest

from airflow_provider_helpcrunch.exceptions import HelpCrunchError
from airflow_provider_helpcrunch.operators.chat_ids import InvalidChatIdsError, normalize_chat_ids


class LazySequence(Sequence):
    """Stands for the lazy sequence Airflow gives for the results of a mapped task."""

    def __init__(self, items):
        self._items = items

    def __getitem__(self, index):
        return self._items[index]

    def __len__(self):
        return len(self._items)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ([1, 2, 3], [1, 2, 3]),
        ((3, 2, 1), [3, 2, 1]),
        (5208, [5208]),
        ("5208", [5208]),
        (["1", " 2 ", 3], [1, 2, 3]),
        ([1.0, 2], [1, 2]),
        ("[1, 2, 3]", [1, 2, 3]),
        ('["1", "2"]', [1, 2]),
        ("1,2,3", [1, 2, 3]),
        ("1, 2; 3\n4", [1, 2, 3, 4]),
        ("1 2 3", [1, 2, 3]),
        ("[{'id': 7, 'status': 'closed'}, {'id': 8}]", [7, 8]),
        ('[{"id": 7}, {"id": "8"}]', [7, 8]),
        ({"id": 9, "status": "closed"}, [9]),
        ([{"id": 9}, 10, "11", [12, [13, {"id": 14}]]], [9, 10, 11, 12, 13, 14]),
        (LazySequence([[1, 2], [3], []]), [1, 2, 3]),
        (iter([4, 5]), [4, 5]),
        ([3, 1, 3, 2, 1, "3", {"id": 2}], [3, 1, 2]),
        (["[1, 2]", "3"], [1, 2, 3]),
    ],
)
def test_accepted_shapes(value, expected):
    assert normalize_chat_ids(value).ids == expected


@pytest.mark.parametrize("value", [None, [], (), "", "   ", "None", "null", "[]", LazySequence([])])
def test_empty_values_give_nothing(value):
    collected = normalize_chat_ids(value)
    assert collected.ids == []
    assert collected.invalid == []


def test_null_items_are_counted_not_silently_dropped():
    collected = normalize_chat_ids(LazySequence([[1, 2], None, [3]]))
    assert collected.ids == [1, 2, 3]
    assert collected.nulls == 1


def test_duplicates_are_counted():
    collected = normalize_chat_ids([1, 1, 2, "2"])
    assert collected.ids == [1, 2]
    assert collected.received == 4


@pytest.mark.parametrize(
    ("value", "position", "reason"),
    [
        (["abc"], "[0]='abc'", "not a number"),
        ([1, True], "[1]=True", "bool"),
        ([1.5], "[0]=1.5", "not a whole number"),
        ([{"name": "x"}], "[0]={'name': 'x'}", "dict without 'id'"),
        ([{"id": None}], "[0]['id']=None", "not a chat ID"),
        ([0], "[0]=0", "not positive"),
        ([1, [2, -4]], "[1][1]=-4", "not positive"),
        ([""], "[0]=''", "empty string"),
        ([b"12"], "[0]=b'12'", "unsupported type bytes"),
        ("1,x,3", "[1]='x'", "not a number"),
        ("hello", "value='hello'", "not a number"),
        (False, "value=False", "bool"),
    ],
)
def test_invalid_items_are_named_with_their_position(value, position, reason):
    with pytest.raises(InvalidChatIdsError) as caught:
        normalize_chat_ids(value)
    message = str(caught.value)
    assert position in message
    assert reason in message
    assert "nothing was sent" in message


def test_every_invalid_item_is_reported_at_once():
    with pytest.raises(InvalidChatIdsError) as caught:
        normalize_chat_ids([1, "a", 2, True, 3.5])
    assert [(p, r) for p, _, r in caught.value.invalid] == [
        ("[1]", "not a number"),
        ("[3]", "bool"),
        ("[4]", "not a whole number"),
    ]
    assert "valid ones seen: 2" in str(caught.value)


def test_long_lists_of_invalid_items_are_cut_in_the_message():
    with pytest.raises(InvalidChatIdsError) as caught:
        normalize_chat_ids(["x"] * 100)
    assert len(caught.value.invalid) == 100
    assert "and 80 more" in str(caught.value)


def test_several_sources_are_told_apart():
    with pytest.raises(InvalidChatIdsError, match=r"source 1: \[0\]='bad'"):
        normalize_chat_ids([1], ["bad"])
    assert normalize_chat_ids([1, 2], "2,3", None).ids == [1, 2, 3]


def test_invalid_is_a_value_error_and_a_provider_error():
    assert issubclass(InvalidChatIdsError, ValueError)
    assert issubclass(InvalidChatIdsError, HelpCrunchError)


@pytest.mark.parametrize(
    ("value", "named"),
    [
        (["0"], "[0]='0' (not positive)"),
        ([{"id": 0}], "[0]['id']=0"),
        ([{"id": True}], "[0]['id']=True (bool)"),
    ],
)
def test_fast_paths_report_the_original_value(value, named):
    with pytest.raises(InvalidChatIdsError) as caught:
        normalize_chat_ids(value)
    assert named in str(caught.value)


@pytest.mark.parametrize(
    ("value", "position"),
    [
        ("²", "value"),
        ("①", "value"),
        ("5²", "value"),
        ("١٢٣", "value"),
        ("\uff11\uff12\uff13", "value"),
        ({"id": "²"}, "['id']"),
        ([1, "١٢٣"], "[1]"),
        ("1, ², 3", "[1]"),
        (["1", "\uff15"], "[1]"),
    ],
)
def test_digit_look_alikes_are_invalid_with_their_position(value, position):
    with pytest.raises(InvalidChatIdsError) as caught:
        normalize_chat_ids(value)
    positions = [where or "value" for where, _, _ in caught.value.invalid]
    assert position in positions


@pytest.mark.parametrize("value", [2**63, 2**64, "9223372036854775808", float(2**64), {"id": 2**63}])
def test_ids_over_int64_are_invalid(value):
    with pytest.raises(InvalidChatIdsError, match=r"over 2\*\*63 - 1"):
        normalize_chat_ids([1, value])


def test_the_largest_int64_is_accepted():
    assert normalize_chat_ids([2**63 - 1, str(2**63 - 1)]).ids == [2**63 - 1]


def nested(depth: int, leaf=7):
    value = [leaf]
    for _ in range(depth - 1):
        value = [value]
    return value


def test_nesting_up_to_the_limit_is_accepted():
    from airflow_provider_helpcrunch.operators.chat_ids import MAX_NESTING

    assert normalize_chat_ids(nested(MAX_NESTING)).ids == [7]
    assert normalize_chat_ids(nested_json(MAX_NESTING)).ids == [7]


def nested_json(depth: int) -> str:
    return "[" * depth + "7" + "]" * depth


@pytest.mark.parametrize("make", [nested, nested_json], ids=["list", "json"])
@pytest.mark.parametrize("depth", [101, 5_000])
def test_deeper_nesting_is_a_typed_error_that_says_the_limit(make, depth):
    with pytest.raises(InvalidChatIdsError, match="nested deeper than 100 levels"):
        normalize_chat_ids([1, make(depth)])


def test_a_deep_invalid_value_is_named_briefly():
    deep_dict = {"x": nested(5_000)}
    with pytest.raises(InvalidChatIdsError, match="dict without 'id'") as caught:
        normalize_chat_ids([deep_dict])
    assert len(str(caught.value)) < 1000


class TestUnchanged:
    @staticmethod
    def read_by_agent(chat):
        return chat.get("readByAgent") is True

    def test_dicts_already_in_the_state_are_unchanged(self):
        value = [{"id": 1, "readByAgent": True}, {"id": 2, "readByAgent": False}, {"id": 3}]
        collected = normalize_chat_ids(value, is_unchanged=self.read_by_agent)
        assert collected.ids == [1, 2, 3]
        assert collected.unchanged == {1}

    def test_plain_ids_are_never_unchanged(self):
        value = [5, "6", {"id": 7, "readByAgent": True}, 7]
        assert normalize_chat_ids(value, is_unchanged=self.read_by_agent).unchanged == set()

    def test_a_later_plain_occurrence_or_a_disagreeing_dict_sends_it(self):
        shown = {"id": 8, "readByAgent": True}
        assert normalize_chat_ids([shown, 8], is_unchanged=self.read_by_agent).unchanged == set()
        assert (
            normalize_chat_ids(
                [shown, {"id": 8, "readByAgent": False}], is_unchanged=self.read_by_agent
            ).unchanged
            == set()
        )
        assert normalize_chat_ids([shown, dict(shown)], is_unchanged=self.read_by_agent).unchanged == {8}

    def test_only_a_real_bool_counts(self):
        value = [
            {"id": 1, "readByAgent": "true"},
            {"id": 2, "readByAgent": 1},
            {"id": "3", "readByAgent": True},
        ]
        assert normalize_chat_ids(value, is_unchanged=self.read_by_agent).unchanged == {3}

    def test_json_text_of_chat_dicts(self):
        text = '[{"id": 4, "readByAgent": true}, {"id": 5, "readByAgent": false}]'
        assert normalize_chat_ids(text, is_unchanged=self.read_by_agent).unchanged == {4}

    def test_without_a_state_nothing_is_tracked(self):
        assert normalize_chat_ids([{"id": 1, "readByAgent": True}]).unchanged == set()


class TestAnUpstreamWritesOutput:
    def test_the_chats_it_left_as_asked(self):
        marked = {
            "marked": [3, 1],
            "missing": [9],
            "skipped": [2],
            "by": "agent",
            "read": True,
            "requested": 4,
        }
        assert normalize_chat_ids(marked).ids == [3, 1, 2]
        updated = {"updated": [5], "missing": [], "skipped": [6], "status": "closed", "requested": 2}
        assert normalize_chat_ids([updated, 7]).ids == [5, 6, 7]

    def test_a_mapped_writes_outputs(self):
        outputs = [
            {"updated": [1], "skipped": [], "requested": 1},
            {"updated": [2], "skipped": [3], "requested": 2},
        ]
        assert normalize_chat_ids(outputs).ids == [1, 2, 3]

    @pytest.mark.parametrize(
        "value",
        [
            {"updated": [1], "skipped": []},  # no "requested": not a write's output
            {"updated": [1], "marked": [2], "skipped": [], "requested": 2},  # which list?
            {"updated": "1", "skipped": [], "requested": 1},
        ],
    )
    def test_other_dicts_without_an_id_are_still_refused(self, value):
        with pytest.raises(InvalidChatIdsError, match="dict without 'id'"):
            normalize_chat_ids([value])

    def test_bad_ids_inside_it_are_named_with_their_place(self):
        with pytest.raises(InvalidChatIdsError, match=r"\['updated'\]\[0\]\[1\]='x'"):
            normalize_chat_ids({"updated": [1, "x"], "skipped": [], "requested": 2})
