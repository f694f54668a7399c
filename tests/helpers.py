"""What tests of every layer share: the test key, the repository, HTTP helpers and a virtual clock."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from airflow_provider_helpcrunch.testing.traffic import max_in_any_window

__all__ = ["max_in_any_window"]  # re-exported: the tests' one count of requests per window

REPO = Path(__file__).resolve().parent.parent
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="helpcrunch-airflow-home-"))
API_KEY = "test-key-5f3c9a71e2"
BASE = "https://api.helpcrunch.com/v1"
SEARCH_URL = f"{BASE}/chats/search"


#: the tests' chats are created a second apart, in id order: chat N at CREATED + N
CREATED = 1_700_000_000


def chat(chat_id: int, **fields: Any) -> dict[str, Any]:
    """A Chat object as HelpCrunch returns it."""
    return {
        "id": chat_id,
        "status": "closed",
        "readByAgent": True,
        "readByCustomer": False,
        "createdAt": CREATED + chat_id,
        **fields,
    }


def errors(*codes: str) -> dict[str, Any]:
    """A HelpCrunch error body with these codes."""
    return {"errors": [{"code": code, "message": f"{code} message"} for code in codes]}


class FakeClock:
    """A virtual monotonic clock: ``sleep`` moves time forward at once and records the wait."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.backoffs: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        """The pacer's waits."""
        self.sleeps.append(seconds)
        self.now += seconds

    def backoff(self, seconds: float) -> None:
        """The hook's waits between attempts, kept apart from the pacer's."""
        self.backoffs.append(seconds)
        self.now += seconds


def hook_class(**timing: Any) -> Any:
    """``HelpCrunchHook`` on other timing (``Timing``'s fields): a virtual clock, or a window scaled down to a
    stand-in's. The hook takes no such arguments: a subclass gives them, as a user's would."""
    from airflow_provider_helpcrunch.client.sending import Timing
    from airflow_provider_helpcrunch.hooks.helpcrunch import HelpCrunchHook

    return type("TimedHelpCrunchHook", (HelpCrunchHook,), {"timing": Timing(**timing)})


def pages_of(ids: list[int], *, total_key: str = "meta") -> Any:
    """
    A requests-mock callback answering offset/limit pages over the chats ``ids``; a search's
    ``chats.createdAt`` filters and order are applied as HelpCrunch applies them.
    """

    def answer(request, context):
        found = ids
        if request.method == "POST":
            body = request.json()
            offset, limit = body["offset"], body["limit"]
            keys = [f for f in body["filter"] if f["field"] == "chats.createdAt"]
            found = [i for i in ids if all(_holds(CREATED + i, f["operator"], f["value"]) for f in keys)]
            if body.get("order") == "desc":
                found = found[::-1]
        else:
            offset, limit = int(request.qs["offset"][0]), int(request.qs["limit"][0])
        data = [chat(i) for i in found[offset : offset + min(limit, 100)]]
        if total_key == "meta":
            return {"data": data, "meta": {"total": len(found)}}
        return {"data": data, "total": len(found)}

    return answer


def _holds(value: int, operator: str, bound: int) -> bool:
    return {"=": value == bound, ">=": value >= bound, "<=": value <= bound, "<": value < bound}[operator]


class FakeStore:
    """Stands for Airflow 3.3's ``context["task_state_store"]``: JSON values only, counts its writes."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.writes = 0

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        import json

        assert value is not None
        json.dumps(value)  # JSON only, as Airflow requires
        self.values[key] = value
        self.writes += 1


def export_operator(folder: Path, start: int, end: int, **kwargs: Any) -> Any:
    """The export to ``file://folder`` of a window, paced fast for the stand-in, retries quick."""
    from airflow_provider_helpcrunch.transfers.helpcrunch_to_object_storage import (
        HelpCrunchToObjectStorageOperator,
    )

    kwargs.setdefault("requests_per_minute", 6000)
    kwargs.setdefault("hook_params", {"retry_backoff": 0.05})
    return HelpCrunchToObjectStorageOperator(
        task_id="export", path=f"file://{folder}", window_start=start, window_end=end, **kwargs
    )


class FakeTI:
    """A task instance's XCom, for ``execute()`` called directly."""

    def __init__(self, xcoms: dict[tuple[str, str], Any] | None = None, try_number: int = 1) -> None:
        self.xcoms = xcoms or {}
        self.try_number = try_number
        self.pulls: list[tuple[Any, str]] = []

    def xcom_pull(self, task_ids: Any = None, key: str = "return_value", **_: Any) -> Any:
        self.pulls.append((task_ids, key))
        if isinstance(task_ids, list):
            return [self.xcoms.get((t, key)) for t in task_ids]
        return self.xcoms.get((task_ids, key))


def run(op: Any, ti: FakeTI | None = None) -> dict[str, Any]:
    op.hook_params.setdefault("retry_backoff", 0.0)  # before the hook is made from them
    return op.execute({"ti": ti or FakeTI()})


def marked_ids(requests_mock) -> list[int]:
    return [r.json()["id"] for r in requests_mock.request_history]


def echo_chat(request, context):
    return chat(request.json()["id"])
