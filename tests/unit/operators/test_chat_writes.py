"""
The engine every per-chat write runs on, tested once for all of them: order, skips, stops, missing chats,
resuming, progress. The writes here are fakes that go through a real pacer on the virtual clock.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import ClassVar

import pytest

from airflow_provider_helpcrunch.client.changes import status_change
from airflow_provider_helpcrunch.client.rate_limit import SlidingWindowRateLimiter
from airflow_provider_helpcrunch.client.sending import RequestStats
from airflow_provider_helpcrunch.exceptions import (
    HelpCrunchAPIError,
    HelpCrunchAuthError,
    HelpCrunchCancelledError,
    HelpCrunchNotFoundError,
)
from airflow_provider_helpcrunch.operators.chat_ids import InvalidChatIdsError
from airflow_provider_helpcrunch.operators.chat_writes import ChatWrite, ChatWriteEngine, Words
from airflow_provider_helpcrunch.operators.helpcrunch import (
    MarkChatReadOperator,
)
from airflow_provider_helpcrunch.operators.task_state import PROGRESS_KEY
from tests.helpers import (
    BASE,
    FakeClock,
    FakeStore,
    FakeTI,
    chat,
    echo_chat,
    errors,
    marked_ids,
    max_in_any_window,
    run,
)

LOG = logging.getLogger("test.chat_writes")
AGENT_URL = f"{BASE}/chats/readByAgent"


class RecordingPacer(SlidingWindowRateLimiter):
    """The real pacer, noting each start as it decides it (under its lock): the ticket served, and when."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.started: list[tuple[int, float]] = []

    def _start(self, now: float) -> None:
        self.started.append((self._serving, now))
        super()._start(now)


class FakeHelpCrunch:
    """Writes "closed" to chats through a real pacer on the virtual clock; scripted failures per chat."""

    def __init__(self, clock: FakeClock, *, per_minute: int = 120, real_pause: float = 0.0) -> None:
        self.clock = clock

        def sleep(seconds: float) -> None:
            clock.sleep(seconds)
            if real_pause:  # a wait at the pacer takes some real time too, as a request on the wire does
                time.sleep(real_pause)

        self.pacer = RecordingPacer(per_minute, clock=clock, sleep=sleep)
        self.rate_limiter = self.pacer
        self.stats = RequestStats()
        self.place = threading.local()
        self.chat_of_ticket: dict[int, int] = {}
        self.fail: dict[int, BaseException] = {}
        self.lock = threading.Lock()

    @property
    def sent(self) -> list[int]:
        """The chats, in the order the pacer let their requests start."""
        return [self.chat_of_ticket[ticket] for ticket, _ in self.pacer.started]

    @property
    def starts(self) -> list[float]:
        return [moment for _, moment in self.pacer.started]

    def forget(self) -> None:
        self.pacer.started.clear()

    @contextlib.contextmanager
    def placed(self, *, ticket=None, cancel=None):
        self.place.ticket, self.place.cancel = ticket, cancel
        yield

    def apply(self, chat_id: int, change) -> None:
        ticket, cancel = self.place.ticket, self.place.cancel
        with self.lock:
            self.chat_of_ticket[ticket] = chat_id
        if not self.pacer.acquire(ticket=ticket, cancel=cancel):
            raise HelpCrunchCancelledError("not sent: cancelled", chat_id=chat_id)
        try:
            if chat_id in self.fail:
                raise self.fail[chat_id]
        finally:
            self.pacer.release()


def closing(api: FakeHelpCrunch) -> ChatWrite:
    words = Words("update", "Setting", "set", "to status 'closed'", "in status 'closed'", "closed")
    return ChatWrite("status", {"status": "closed"}, (status_change("closed"),), words)


@pytest.fixture
def api(clock) -> FakeHelpCrunch:
    return FakeHelpCrunch(clock)


def engine(api: FakeHelpCrunch, **kwargs) -> ChatWriteEngine:
    kwargs.setdefault("max_in_flight", 1)
    return ChatWriteEngine(
        closing(api),
        client=lambda: api,
        pace=lambda: "at up to 120 requests/min",
        where=lambda: "https://api.helpcrunch.com/v1",
        log=LOG,
        clock=api.clock,
        **kwargs,
    )


class TestOrderAndPace:
    def test_every_chat_once_in_input_order_under_the_limit(self, api):
        ids = [9, 3, 7, 1, 8, 2, 6, 4, 5, 10] * 30  # duplicates are written once
        tally = engine(api, max_in_flight=4).run([ids])
        assert api.sent == ids[:10]
        assert tally.done == ids[:10]
        assert max_in_any_window(api.starts, 60.0) <= 120

    def test_a_thousand_chats_take_the_limits_time_at_any_max_in_flight(self, clock):
        for in_flight in (1, 8):
            api = FakeHelpCrunch(FakeClock())
            engine(api, max_in_flight=in_flight).run([list(range(1, 1001))])
            assert api.sent == list(range(1, 1001))
            assert api.starts[-1] - api.starts[0] == pytest.approx(999 * 0.5, abs=0.01)
            assert max_in_any_window(api.starts, 60.0) <= 120

    def test_bad_input_sends_nothing(self, api):
        with pytest.raises(InvalidChatIdsError, match="'abc'"):
            engine(api).run([[1, "abc", 2]])
        assert api.sent == []

    def test_no_chats_sends_nothing(self, api, caplog):
        with caplog.at_level(logging.INFO):
            tally = engine(api).run([None, []])
        assert (tally.chat_ids, api.sent) == ([], [])
        assert "No chat IDs to update; nothing was sent" in caplog.text


class TestSkipUnchanged:
    def test_dicts_already_as_wanted_are_skipped_plain_ids_are_sent(self, api, caplog):
        chats = [
            {"id": 1, "status": "closed"},
            {"id": 2, "status": "opened"},
            3,
            {"id": 4, "status": "closed"},
        ]
        with caplog.at_level(logging.INFO):
            tally = engine(api).run([chats])
        assert api.sent == [2, 3]
        assert (tally.done, tally.skipped) == ([2, 3], [1, 4])
        assert "2 chat(s) are in status 'closed' already (as the input shows): skipped" in caplog.text
        assert "2 skipped (already closed)" in caplog.text

    def test_off_sends_everything(self, api):
        engine(api, skip_unchanged=False).run([[{"id": 1, "status": "closed"}]])
        assert api.sent == [1]


class TestStop:
    def test_nothing_is_sent_after_a_stopping_error_and_the_error_says_what_was_done(self, clock):
        # the chats behind the failing one wait at the pacer in real time too, as they do over HTTP
        api = FakeHelpCrunch(clock, real_pause=0.05)
        api.fail[5] = HelpCrunchAuthError("HelpCrunch answered 401", status_code=401, chat_id=5)
        with pytest.raises(HelpCrunchAuthError) as caught:
            engine(api, max_in_flight=4).run([list(range(1, 21))])
        assert api.sent == [1, 2, 3, 4, 5]  # input order; those after the stop never left the pacer
        message = str(caught.value)
        assert message.startswith("Stopped at chat 5 (5 of 20): 4 chat(s) were set before the stop")
        assert "16 not done [5, 6, 7" in message  # the chat that failed is not done either
        assert caught.value.status_code == 401  # the same error, restated

    def test_a_cancelled_write_is_not_done(self, api):
        api.fail[2] = HelpCrunchCancelledError("cancelled", chat_id=2)
        tally = engine(api).run([[1, 2, 3]])
        assert (tally.done, tally.not_done) == ([1, 3], [2])

    def test_an_interruption_says_how_far_the_run_got(self, api, caplog):
        api.fail[3] = KeyboardInterrupt()
        with caplog.at_level(logging.ERROR), pytest.raises(KeyboardInterrupt):
            engine(api).run([[1, 2, 3, 4]])
        assert (
            "Interrupted by KeyboardInterrupt: 2 chat(s) set, 0 not found, 2 not done [3, 4]" in caplog.text
        )


class TestMissing:
    def test_fail_lists_the_missing_chats_at_the_end(self, api):
        api.fail[2] = HelpCrunchNotFoundError("no such chat", status_code=404, chat_id=2)
        with pytest.raises(
            HelpCrunchNotFoundError, match=r"1 of 3 chat\(s\) were not found in HelpCrunch: \[2\]"
        ):
            engine(api).run([[1, 2, 3]])
        assert api.sent == [1, 2, 3]  # a missing chat does not stop the run

    def test_skip_warns_and_reports(self, api, caplog):
        api.fail[2] = HelpCrunchNotFoundError("no such chat", status_code=404, chat_id=2)
        with caplog.at_level(logging.WARNING):
            tally = engine(api, on_missing="skip").run([[1, 2, 3]])
        assert (tally.done, tally.missing) == ([1, 3], [2])
        assert "the other 2 were set to status 'closed'" in caplog.text


class TestResume:
    def test_the_record_is_written_every_few_seconds_and_at_the_stop_not_per_request(self, api):
        store = FakeStore()
        api.fail[40] = HelpCrunchAPIError("HelpCrunch answered 500", status_code=500, chat_id=40)
        with pytest.raises(HelpCrunchAPIError):
            engine(api).run([list(range(1, 61))], store=store)
        # 40 requests 0.5 s apart: about 20 s of the virtual clock, a record every 5 s, one more at the stop
        assert 3 <= store.writes <= 6
        assert store.values[PROGRESS_KEY.format("status")]["runs"] == "m39"

    def test_a_retry_sends_only_the_rest_and_reports_the_whole_input(self, api, caplog):
        store = FakeStore()
        api.fail[40] = HelpCrunchAPIError("HelpCrunch answered 500", status_code=500, chat_id=40)
        with pytest.raises(HelpCrunchAPIError):
            engine(api).run([list(range(1, 61))], store=store)
        api.fail.clear()
        api.forget()
        with caplog.at_level(logging.INFO):
            tally = engine(api).run([list(range(1, 61))], store=store, try_number=2)
        assert api.sent == list(range(40, 61))
        assert tally.done == list(range(1, 61))
        assert "Resuming: 39 of 60 chats were done by earlier tries" in caplog.text

    def test_another_kind_of_write_does_not_read_this_record(self, api):
        store = FakeStore()
        engine(api).run([[1, 2]], store=store)
        other = ChatWriteEngine(
            ChatWrite(**{**closing(api).__dict__, "name": "snooze"}),
            client=lambda: api,
            pace=lambda: "",
            where=lambda: "",
            log=LOG,
            clock=api.clock,
        )
        api.forget()
        other.run([[1, 2]], store=store)
        assert api.sent == [1, 2]

    def test_without_a_store_a_retry_says_it_cannot_resume(self, api, caplog):
        with caplog.at_level(logging.WARNING):
            engine(api).run([[1]], try_number=2)
        assert "needs Airflow 3.3 or later" in caplog.text


def test_progress_lines_on_the_virtual_clock(api, caplog):
    with caplog.at_level(logging.INFO):
        engine(api, progress_interval=10).run([list(range(1, 61))])
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Progress: ")]
    # 60 requests 0.5 s apart: about 30 s, a line every 10 s of it
    assert 2 <= len(lines) <= 4
    assert "chats/min" in lines[0]


class TestConcurrency:
    # requests-mock sends one request at a time (a global lock): overlap itself is shown over real HTTP,
    # in tests/integration/test_hook_http.py.
    def test_one_at_a_time_keeps_the_request_order(self, requests_mock):
        requests_mock.put(AGENT_URL, json=echo_chat)
        run(MarkChatReadOperator(task_id="mark", chat_ids=[3, 1, 2, 1], max_in_flight=1))
        assert marked_ids(requests_mock) == [3, 1, 2]

    def test_a_stop_starts_no_new_chat(self, requests_mock):
        requests_mock.put(AGENT_URL, status_code=401, json=errors("unauthorized"))
        with pytest.raises(HelpCrunchAuthError, match=r"0 chat\(s\) were marked before the stop"):
            run(MarkChatReadOperator(task_id="m", chat_ids=list(range(1, 50)), max_in_flight=4))
        assert requests_mock.call_count <= 4

    def test_missing_chats_are_counted_across_threads(self, requests_mock):
        def answer(request, context):
            chat_id = request.json()["id"]
            if chat_id % 10 == 0:
                context.status_code = 404
                return errors("not_found")
            return chat(chat_id)

        requests_mock.put(AGENT_URL, json=answer)
        result = run(MarkChatReadOperator(task_id="m", chat_ids=list(range(1, 41)), on_missing="skip"))
        assert result["missing"] == [10, 20, 30, 40]
        assert result["marked"] == [i for i in range(1, 41) if i % 10]

    @pytest.mark.parametrize("value", [0, 33, True, "4"])
    def test_bad_max_in_flight(self, value):
        with pytest.raises(ValueError, match="max_in_flight"):
            MarkChatReadOperator(task_id="m", chat_ids=[1], max_in_flight=value)


class TestInterruptions:
    def test_a_timeout_or_kill_still_says_how_far_the_run_got(self, requests_mock, logs):
        class TaskTimeout(BaseException):
            pass

        def answer(request, context):
            if request.json()["id"] == 3:
                raise TaskTimeout("execution_timeout")
            return chat(request.json()["id"])

        requests_mock.put(AGENT_URL, json=answer)
        with pytest.raises(TaskTimeout):
            run(MarkChatReadOperator(task_id="m", chat_ids=[1, 2, 3, 4], max_in_flight=1))
        assert "Interrupted by TaskTimeout: 2 chat(s) marked, 0 not found, 2 not done [3, 4]" in (logs())


class TestResumeThroughTheOperator:
    IDS: ClassVar = list(range(1, 21))

    def first_try_stops_at_chat_8(self, requests_mock, store) -> None:
        def answer(request, context):
            if request.json()["id"] == 8:
                context.status_code = 503
                return {}
            return chat(request.json()["id"])

        requests_mock.put(AGENT_URL, json=answer)
        op = MarkChatReadOperator(task_id="m", chat_ids=self.IDS, max_in_flight=1, max_retries=0)
        with pytest.raises(HelpCrunchAPIError, match="Stopped at chat 8"):
            op.execute({"ti": FakeTI(), "task_state_store": store})
        requests_mock.reset_mock()
        requests_mock.put(AGENT_URL, json=echo_chat)

    def test_a_retry_sends_only_what_earlier_tries_did_not(self, requests_mock, logs):
        store = FakeStore()
        self.first_try_stops_at_chat_8(requests_mock, store)
        assert store.writes >= 1  # written at the stop, not per request
        op = MarkChatReadOperator(task_id="m", chat_ids=self.IDS, max_in_flight=1)
        result = op.execute({"ti": FakeTI(try_number=2), "task_state_store": store})
        assert marked_ids(requests_mock) == list(range(8, 21))
        assert result["marked"] == self.IDS  # the output covers the whole input
        assert "Resuming: 7 of 20 chats were done by earlier tries" in logs()

    def test_other_input_starts_over_with_a_warning(self, requests_mock, logs):
        store = FakeStore()
        self.first_try_stops_at_chat_8(requests_mock, store)
        op = MarkChatReadOperator(task_id="m", chat_ids=[*self.IDS, 21], max_in_flight=1)
        op.execute({"ti": FakeTI(try_number=2), "task_state_store": store})
        assert marked_ids(requests_mock) == [*self.IDS, 21]
        assert "differ from those an earlier try" in logs()

    def test_resume_false_starts_over(self, requests_mock):
        store = FakeStore()
        self.first_try_stops_at_chat_8(requests_mock, store)
        op = MarkChatReadOperator(task_id="m", chat_ids=self.IDS, max_in_flight=1, resume=False)
        op.execute({"ti": FakeTI(try_number=2), "task_state_store": store})
        assert marked_ids(requests_mock) == self.IDS

    def test_without_a_store_a_retry_says_so_and_sends_everything(self, requests_mock, caplog, capsys):
        caplog.set_level(logging.INFO)
        requests_mock.put(AGENT_URL, json=echo_chat)
        op = MarkChatReadOperator(task_id="m", chat_ids=self.IDS)
        op.execute({"ti": FakeTI(try_number=2)})
        assert sorted(marked_ids(requests_mock)) == self.IDS
        # said once, in whichever sink this Airflow logs to (stdlib logging on 2, structlog to stdout on 3)
        said = [sink.count("needs Airflow 3.3 or later") for sink in (caplog.text, capsys.readouterr().out)]
        assert max(said) == 1

    def test_missing_chats_of_earlier_tries_are_still_reported(self, requests_mock):
        store = FakeStore()
        requests_mock.put(
            AGENT_URL,
            [
                {"json": chat(1)},
                {"status_code": 404, "json": errors("not_found")},
                {"status_code": 503, "json": {}},
            ],
        )
        op = MarkChatReadOperator(task_id="m", chat_ids=[1, 2, 3], max_in_flight=1, max_retries=0)
        with pytest.raises(HelpCrunchAPIError):
            op.execute({"ti": FakeTI(), "task_state_store": store})
        requests_mock.reset_mock()
        requests_mock.put(AGENT_URL, json=echo_chat)
        op = MarkChatReadOperator(task_id="m", chat_ids=[1, 2, 3], on_missing="skip")
        result = op.execute({"ti": FakeTI(try_number=2), "task_state_store": store})
        assert marked_ids(requests_mock) == [3]
        assert (result["marked"], result["missing"]) == ([1, 3], [2])

    def test_chats_skipped_by_an_earlier_try_are_judged_again_not_counted_as_marked(self, requests_mock):
        # try 1: the dicts say chats 1-10 are read already (skipped); chat 30 stops the run
        store = FakeStore()
        ids = list(range(1, 41))

        def answer(request, context):
            if request.json()["id"] == 30:
                context.status_code = 503
                return {}
            return chat(request.json()["id"])

        requests_mock.put(AGENT_URL, json=answer)
        first = [chat(i, readByAgent=i <= 10) for i in ids]
        op = MarkChatReadOperator(task_id="m", chat_ids=first, max_in_flight=1, max_retries=0)
        with pytest.raises(HelpCrunchAPIError, match="Stopped at chat 30"):
            op.execute({"ti": FakeTI(), "task_state_store": store})
        assert marked_ids(requests_mock) == list(range(11, 31))
        requests_mock.reset_mock()
        requests_mock.put(AGENT_URL, json=echo_chat)

        # try 2: the same chats, but now the dicts say none of them is read
        second = [chat(i, readByAgent=False) for i in ids]
        op = MarkChatReadOperator(task_id="m", chat_ids=second, max_in_flight=1)
        result = op.execute({"ti": FakeTI(try_number=2), "task_state_store": store})
        assert marked_ids(requests_mock) == [*range(1, 11), *range(30, 41)]
        assert (result["marked"], result["skipped"]) == (ids, [])

    def test_a_chat_skipped_by_both_tries_stays_skipped(self, requests_mock):
        store = FakeStore()
        requests_mock.put(AGENT_URL, [{"json": chat(2)}, {"status_code": 503, "json": {}}])
        chats = [chat(1, readByAgent=True), chat(2, readByAgent=False), chat(3, readByAgent=False)]
        op = MarkChatReadOperator(task_id="m", chat_ids=chats, max_in_flight=1, max_retries=0)
        with pytest.raises(HelpCrunchAPIError, match="Stopped at chat 3"):
            op.execute({"ti": FakeTI(), "task_state_store": store})
        requests_mock.reset_mock()
        requests_mock.put(AGENT_URL, json=echo_chat)
        op = MarkChatReadOperator(task_id="m", chat_ids=chats, max_in_flight=1)
        result = op.execute({"ti": FakeTI(try_number=2), "task_state_store": store})
        assert marked_ids(requests_mock) == [3]
        assert (result["marked"], result["skipped"]) == ([2, 3], [1])

    def test_a_chat_marked_by_an_earlier_try_is_reported_marked_though_its_dict_now_shows_it_read(
        self, requests_mock
    ):
        store = FakeStore()
        requests_mock.put(AGENT_URL, [{"json": chat(1)}, {"status_code": 503, "json": {}}])
        op = MarkChatReadOperator(
            task_id="m", chat_ids=[chat(1, readByAgent=False), 2], max_in_flight=1, max_retries=0
        )
        with pytest.raises(HelpCrunchAPIError):
            op.execute({"ti": FakeTI(), "task_state_store": store})
        requests_mock.reset_mock()
        requests_mock.put(AGENT_URL, json=echo_chat)
        op = MarkChatReadOperator(task_id="m", chat_ids=[chat(1, readByAgent=True), 2], max_in_flight=1)
        result = op.execute({"ti": FakeTI(try_number=2), "task_state_store": store})
        assert marked_ids(requests_mock) == [2]
        assert (result["marked"], result["skipped"]) == ([1, 2], [])

    @pytest.mark.parametrize(
        "record",
        [
            {"format": 2, "fingerprint": "F", "runs": ["m3"]},
            {"format": 2, "fingerprint": "F", "runs": None},
            {"format": 2, "fingerprint": "F", "runs": "m3", "beyond": {}},
            {"format": 1, "fingerprint": "F", "done_below": 1, "missing": [], "beyond": []},
            {"format": 1, "fingerprint": "F", "done_below": 1, "missing": [], "beyond": None},
            {"format": 1, "fingerprint": "F", "done_below": 1, "missing": [], "beyond": "m"},
        ],
    )
    def test_a_damaged_record_starts_over_with_a_warning_and_marks_everything(
        self, requests_mock, logs, record
    ):
        store = FakeStore()
        op = MarkChatReadOperator(task_id="m", chat_ids=[1, 2, 3], max_in_flight=1)
        from airflow_provider_helpcrunch.operators.task_state import PROGRESS_KEY, fingerprint

        store.values[PROGRESS_KEY.format("mark")] = {
            **record,
            "fingerprint": fingerprint([1, 2, 3], "agent", True),
        }
        requests_mock.put(AGENT_URL, json=echo_chat)
        result = op.execute({"ti": FakeTI(try_number=2), "task_state_store": store})
        assert marked_ids(requests_mock) == [1, 2, 3]
        assert result["marked"] == [1, 2, 3]
        assert "unreadable" in logs()
