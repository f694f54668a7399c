"""
The engine every per-chat write runs on, tested once for all of them: order, skips, stops, missing chats,
resuming, progress. The writes here are fakes that go through a real pacer on the virtual clock.
"""

from __future__ import annotations

import logging
import threading
import time

import pytest

from airflow_provider_helpcrunch.chat_ids import InvalidChatIdsError
from airflow_provider_helpcrunch.chat_writes import ChatWrite, ChatWriteEngine
from airflow_provider_helpcrunch.exceptions import (
    HelpCrunchAPIError,
    HelpCrunchAuthError,
    HelpCrunchCancelledError,
    HelpCrunchNotFoundError,
)
from airflow_provider_helpcrunch.progress import PROGRESS_KEY
from airflow_provider_helpcrunch.rate_limit import SlidingWindowRateLimiter
from tests.helpers import FakeClock, FakeStore, max_in_any_window

LOG = logging.getLogger("test.chat_writes")


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

    def write(self, chat_id: int, cancel: threading.Event, ticket: int) -> None:
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
    return ChatWrite(
        name="status",
        asked=("closed",),
        verb="update",
        doing="Setting",
        done="set",
        goal="to status 'closed'",
        state="in status 'closed'",
        short="closed",
        write=api.write,
        is_unchanged=lambda chat: chat.get("status") == "closed",
    )


@pytest.fixture
def api(clock) -> FakeHelpCrunch:
    return FakeHelpCrunch(clock)


def engine(api: FakeHelpCrunch, **kwargs) -> ChatWriteEngine:
    kwargs.setdefault("max_in_flight", 1)
    return ChatWriteEngine(
        closing(api),
        pacer=api.pacer,
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
            pacer=api.pacer,
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
