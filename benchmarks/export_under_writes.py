"""
Case 10 of ``make bench``: a long export while agents keep working. ``chats`` chats changed in a past day,
one message each written that day; every ``every``-th request the stand-in answers, an agent closes a chat
of the window (its ``updatedAt`` moves to now, out of the window) and another chat gets a new message.
Judged against what the stand-in held: the chats that were in the window from the start to the end of the
export and are not in its file, and the window's messages that are not in theirs.

``python -m benchmarks.export_under_writes`` prints the table; ``make bench`` includes it.
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from airflow_provider_helpcrunch.testing import HelpCrunchStandIn
from airflow_provider_helpcrunch.testing.airflow_home import use_airflow_home
from airflow_provider_helpcrunch.timestamps import timestamp_seconds

START, END = 1_764_000_000, 1_764_086_400


def _inbox(chats: int, every: int, message_moves_updated_at: bool) -> tuple[HelpCrunchStandIn, dict]:
    acted = {"closed": 0, "messages": 0}
    count = itertools.count(1)
    lock = threading.Lock()
    standin: HelpCrunchStandIn

    def agent(record: Any) -> None:
        with lock:
            if next(count) % every:
                return
            n = acted["closed"]
            acted["closed"] += 1
            acted["messages"] += 1
        ids = sorted(standin.chats)
        in_window = [i for i in ids if START <= (timestamp_seconds(standin.chat(i)["updatedAt"]) or 0) < END]
        if in_window:
            standin.update_chat(
                in_window[(n * 7919) % len(in_window)], status="closed", updatedAt=int(time.time())
            )
        standin.add_message(ids[(n * 104729) % len(ids)], createdAt=int(time.time()))

    standin = HelpCrunchStandIn(
        chats=0,
        requests_per_minute=None,
        on_request=agent,
        message_moves_updated_at=message_moves_updated_at,
    )
    for n in range(chats):
        chat_id = 100_000 + n
        standin.add_chat(id=chat_id, createdAt=START - 86_400 + n * 37 % 80_000)
        standin.add_message(chat_id, createdAt=START + n * 131 % 86_000)
        standin.update_chat(chat_id, updatedAt=START + n * 131 % 86_000)
    return standin.start(), acted


def _held(standin: HelpCrunchStandIn) -> tuple[set[int], set[int]]:
    chats = standin.chats
    in_window = {i for i, c in chats.items() if START <= (timestamp_seconds(c["updatedAt"]) or 0) < END}
    messages = {
        m["id"]
        for i in chats
        for m in standin.messages(i)
        if START <= (timestamp_seconds(m["createdAt"]) or 0) < END
    }
    return in_window, messages


def _ids(path: str) -> list[int]:
    data = Path(path.removeprefix("file://")).read_bytes()
    return [json.loads(line)["id"] for line in gzip.decompress(data).splitlines()]


def run(chats: int = 600, every: int = 25, *, message_moves_updated_at: bool = True) -> dict[str, Any]:
    """One export under steady writes; what it lost against what the stand-in held."""
    from airflow_provider_helpcrunch.transfers.helpcrunch_to_object_storage import (
        HelpCrunchToObjectStorageOperator,
    )

    standin, acted = _inbox(chats, every, message_moves_updated_at)
    os.environ["AIRFLOW_CONN_HELPCRUNCH_DEFAULT"] = standin.connection_json()
    chats_at_start, _ = _held(standin)
    folder = tempfile.mkdtemp(prefix="helpcrunch-bench-writes-")
    try:
        result = HelpCrunchToObjectStorageOperator(
            task_id="export",
            path=f"file://{folder}",
            window_start=START,
            window_end=END,
            requests_per_minute=6000,
            compression="gzip",
        ).execute({})
        chats_at_end, messages_at_end = _held(standin)
        exported_chats = set(_ids(result["streams"]["chats"]["path"]))
        exported_messages = set(_ids(result["streams"]["messages"]["path"]))
    finally:
        standin.stop()
        shutil.rmtree(folder, ignore_errors=True)
    stayed = chats_at_start & chats_at_end
    return {
        "chats": len(stayed),
        "chats_lost": len(stayed - exported_chats),
        "messages": len(messages_at_end),
        "messages_lost": len(messages_at_end - exported_messages),
        "agent_writes": acted["closed"] + acted["messages"],
        "requests": len(standin.requests),
        "updated_at_moved_by_messages": message_moves_updated_at,
    }


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| new message moves updatedAt | agent writes | requests | chats in the window throughout "
        "| chats lost | window's messages | messages lost |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {'yes' if r['updated_at_moved_by_messages'] else 'no'} | {r['agent_writes']} | {r['requests']} "
        f"| {r['chats']} | {r['chats_lost']} | {r['messages']} | {r['messages_lost']} |"
        for r in rows
    ]
    return "\n".join(lines) + "\n"


def rows(chats: int = 600, every: int = 25) -> list[dict[str, Any]]:
    return [run(chats, every, message_moves_updated_at=moves) for moves in (True, False)]


def main() -> int:
    use_airflow_home(Path(tempfile.mkdtemp(prefix="helpcrunch-bench-home-")))
    print(table(rows()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
