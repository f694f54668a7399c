"""
``make bench``: throughput at HelpCrunch's limit, against the local stand-in on loopback.

Every case runs against a fresh stand-in with HelpCrunch's sliding-window limit, and is judged by what the
stand-in saw: achieved rate as a fraction of the limit, 429s drawn, chats lost (still unread at the end).

1. this provider at a scaled limit (600/min) and at the real one (120/min);
2. peers on the same server and N: a plain ``requests`` loop in a task, and
   ``HttpOperator.partial(...).expand(data=...)`` (``dags/bench_http_operator.py``), each written as an
   Airflow user would;
3. 1 s of latency on every answer: one request at a time against ``max_in_flight``;
4. four processes sharing one key against one 120/min stand-in;
5. client CPU per request, the hook against a bare ``requests.Session``;
6. normalising 100,000 and 1,000,000 chat IDs from XCom shapes;
7. requests that change nothing: the cleanup example in steady state with and without ``unread_by``, and a
   retry of a 2,000-chat run stopped at about chat 1,500, with and without ``resume`` (Airflow 3.3);
8. every other chat write (status, assignee, department, snooze) at the real 120/min;
9. the export to object storage: requests against the fewest a client needs, and peak memory at two sizes;
10. the export under steady agent writes: chats and messages lost against what the stand-in held
    (``benchmarks/export_under_writes.py``);
11. the watcher: an idle watcher's requests per hour, and the delay from a change to its DAG run's start
    with real Airflow 3 processes (``benchmarks/watcher.py``).

``CASES`` lists them: the full run takes every one, ``--only`` the ones it names. A full run writes
``benchmarks/results/results.md``, ``results.json`` and ``throughput.png``; ``--only`` writes
``<names>.md`` (and ``<names>.png`` for throughput cases); both print the tables.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import tracemalloc
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_helpcrunch.client.rate_limit import rate_per_minute
from airflow_provider_helpcrunch.testing import HelpCrunchStandIn
from airflow_provider_helpcrunch.testing.airflow_home import load_dagbag, use_airflow_home
from benchmarks import export_under_writes, watcher
from scripts.output_capture import output_to

if TYPE_CHECKING:
    import contextlib
    from collections.abc import Callable

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
AIRFLOW_HOME = RESULTS / "airflow"
DAGS = REPO / "benchmarks" / "dags"
LOG = RESULTS / "bench.log"


@dataclass
class Row:
    case: str
    client: str
    chats: int
    limit: int
    wall_s: float
    rate: float  # successful requests per minute / limit, over the run
    throttled: int  # 429s drawn
    lost: int  # chats still unread at the end
    note: str = ""
    timeline: list[tuple[float, int]] = field(default_factory=list, repr=False)  # (seconds, status)


_BEGAN = [0.0]  # when main() began


def step(message: str) -> None:
    print(f"==> [{time.perf_counter() - _BEGAN[0]:5.0f} s] {message}", flush=True)


def quiet() -> contextlib.AbstractContextManager[None]:
    """Task and hook logs go to benchmarks/results/bench.log, not to the table."""
    return output_to(LOG, "a")


def fresh_standin(chats: int, limit: int, latency: float = 0.0) -> tuple[HelpCrunchStandIn, list[int]]:
    standin = HelpCrunchStandIn(chats=0, requests_per_minute=limit, latency=latency).start()
    ids = [standin.add_chat(id=5200 + n, readByAgent=False)["id"] for n in range(chats)]
    os.environ["AIRFLOW_CONN_HELPCRUNCH_DEFAULT"] = standin.connection_json()
    return standin, ids


def dag_in_home(name: str) -> Path:
    """A DAG of ``benchmarks/dags`` copied into the benchmark's dags folder, where ``dag.test()`` runs it."""
    target = AIRFLOW_HOME / "dags" / name
    shutil.copyfile(DAGS / name, target)
    return target


def judge(
    case: str,
    client: str,
    standin: HelpCrunchStandIn,
    ids: list[int],
    limit: int,
    wall: float,
    note: str = "",
    written: Callable[[dict[str, Any]], bool] = lambda chat: chat["readByAgent"],
) -> Row:
    requests_seen = standin.requests
    ok = [r.time for r in requests_seen if r.status == 200]
    rate = rate_per_minute(len(ok), ok[-1] - ok[0]) / limit if ok else 0.0
    chats = standin.chats
    start = requests_seen[0].time if requests_seen else 0.0
    return Row(
        case=case,
        client=client,
        chats=len(ids),
        limit=limit,
        wall_s=round(wall, 1),
        rate=round(rate, 3),
        throttled=sum(1 for r in requests_seen if r.status == 429),
        lost=sum(1 for chat_id in ids if not written(chats[chat_id])),
        note=note,
        timeline=[(round(r.time - start, 3), r.status or 0) for r in requests_seen],
    )


# ---------------------------------------------------------------------- the clients


def run_provider(case: str, chats: int, limit: int, *, latency: float = 0.0, max_in_flight: int = 4) -> Row:
    from airflow_provider_helpcrunch.operators.helpcrunch import MarkChatReadOperator

    standin, ids = fresh_standin(chats, limit, latency)
    op = MarkChatReadOperator(
        task_id="mark", chat_ids=ids, requests_per_minute=limit, max_in_flight=max_in_flight
    )
    wall, note = timed_execute(op)
    standin.stop()
    return judge(case, f"this provider (max_in_flight={max_in_flight})", standin, ids, limit, wall, note)


def timed_execute(op: Any) -> tuple[float, str]:
    """Run an operator's ``execute()`` with its logs to bench.log: the seconds it took, and how it failed."""
    started = time.perf_counter()
    note = ""
    try:
        with quiet():
            op.execute({})
    except Exception as err:
        note = f"task failed: {type(err).__name__}"
    return time.perf_counter() - started, note


#: case 8: each write operator, what it asks, and how a written chat looks on the stand-in.
WRITES: dict[str, tuple[str, dict[str, Any], Callable[[dict[str, Any]], bool]]] = {
    "SetChatStatusOperator(status='closed')": (
        "SetChatStatusOperator",
        {"status": "closed"},
        lambda chat: chat["status"] == "closed",
    ),
    "AssignChatOperator(assignee=12)": (
        "AssignChatOperator",
        {"assignee": 12},
        lambda chat: (chat["assignee"] or {}).get("id") == 12,
    ),
    "AssignChatOperator(department=2)": (
        "AssignChatOperator",
        {"department": 2},
        lambda chat: (chat["department"] or {}).get("id") == 2,
    ),
    "SnoozeChatOperator(snoozed_until=...)": (
        "SnoozeChatOperator",
        {"snoozed_until": 1_900_000_000},
        lambda chat: chat["snoozedUntil"] == "1900000000.000",
    ),
}


def run_write(case: str, client: str, chats: int, limit: int) -> Row:
    """One write operator over ``chats`` fresh chats at ``limit``/min, judged by what the stand-in holds."""
    from airflow_provider_helpcrunch.operators import helpcrunch as operators

    name, asked, written = WRITES[client]
    standin = HelpCrunchStandIn(chats=0, requests_per_minute=limit).start()
    ids = [
        standin.add_chat(id=5200 + n, status="opened", assignee=None, department=None, snoozedUntil=None)[
            "id"
        ]
        for n in range(chats)
    ]
    os.environ["AIRFLOW_CONN_HELPCRUNCH_DEFAULT"] = standin.connection_json()
    op = getattr(operators, name)(task_id="write", chat_ids=ids, requests_per_minute=limit, **asked)
    wall, note = timed_execute(op)
    standin.stop()
    return judge(case, client, standin, ids, limit, wall, note, written=written)


def every_write(chats: int) -> list[Row]:
    rows = []
    for client in WRITES:
        step(f"8. {client} at the real 120/min, {chats} chats")
        rows.append(run_write("8 other writes", client, chats, 120))
    return rows


EXPORT_START, EXPORT_END = 1_764_000_000, 1_764_086_400


def run_export(chats: int, messages: int, limit: int) -> dict:
    """Case 9: ``chats`` chats changed in a day, ``messages`` messages each written that day, to file://."""
    import tempfile

    from airflow_provider_helpcrunch.transfers.helpcrunch_to_object_storage import (
        HelpCrunchToObjectStorageOperator,
    )

    standin = HelpCrunchStandIn(chats=0, requests_per_minute=limit).start()
    for n in range(chats):
        chat_id = 100_000 + n
        standin.add_chat(id=chat_id, createdAt=EXPORT_START - 86_400 + n)
        for m in range(messages):
            standin.add_message(chat_id, createdAt=EXPORT_START + n % 80_000 + m)
        standin.update_chat(chat_id, updatedAt=EXPORT_START + n % 80_000)
    os.environ["AIRFLOW_CONN_HELPCRUNCH_DEFAULT"] = standin.connection_json()
    folder = tempfile.mkdtemp(prefix="helpcrunch-bench-export-")
    op = HelpCrunchToObjectStorageOperator(
        task_id="export",
        path=f"file://{folder}",
        window_start=EXPORT_START,
        window_end=EXPORT_END,
        requests_per_minute=limit,
        compression="gzip",
        max_in_flight=8,
    )
    tracemalloc.start()
    wall, note = timed_execute(op)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    standin.stop()
    shutil.rmtree(folder, ignore_errors=True)
    seen = standin.requests
    ok = [r.time for r in seen if r.status == 200]
    # the fewest requests of an export that loses nothing while agents work: the window's chats paged on
    # their createdAt (each page from the last key read, so a page brings 99 new chats; a full last page
    # needs one more to see the end), the chats by lastMessageAt down to the window's start (all of them
    # here) and one re-read of that list's front, and a page of messages per chat
    fewest = chats // 99 + 1 + chats // 100 + 1 + 1 + chats * (messages // 100 + 1)
    return {
        "chats": chats,
        "messages": chats * messages,
        "limit": limit,
        "requests": len(seen),
        "fewest": fewest,
        "rate": rate_per_minute(len(ok), ok[-1] - ok[0]) / limit if len(ok) > 1 else 0.0,
        "throttled": sum(1 for r in seen if r.status == 429),
        "minutes_at_120": len(seen) / 120,
        "peak_mib": peak / 2**20,
        "wall_s": wall,
        "note": note,
    }


def export_table(rows: list[dict]) -> str:
    lines = [
        "| chats | messages | limit/min | requests | fewest possible | rate / limit | 429s "
        "| minutes at 120/min | peak MiB | note |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    lines += [
        f"| {r['chats']:,} | {r['messages']:,} | {r['limit']:,} | {r['requests']:,} | {r['fewest']:,} "
        f"| {r['rate']:.1%} | {r['throttled']} | {r['minutes_at_120']:.1f} | {r['peak_mib']:.1f} "
        f"| {r['note']} |"
        for r in rows
    ]
    return "\n".join(lines) + "\n"


def exports(sizes: list[int], messages: int, limit: int) -> list[dict]:
    rows = []
    for chats in sizes:
        step(f"9. export of {chats:,} chats with {messages} messages each, at a scaled {limit:,}/min")
        rows.append(run_export(chats, messages, limit))
    return rows


def requests_loop_task(chat_ids: list[int]) -> None:
    """What a DAG author writes first, in a ``@task``: a loop of PUTs with the connection's key."""
    import requests
    from airflow.providers.common.compat.sdk import BaseHook

    conn = BaseHook.get_connection("helpcrunch_default")
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {conn.password}"
    for chat_id in chat_ids:
        response = session.put(
            f"{conn.host}/chats/readByAgent", json={"id": chat_id, "read": True}, timeout=30
        )
        response.raise_for_status()


def run_requests_loop(case: str, chats: int, limit: int) -> Row:
    standin, ids = fresh_standin(chats, limit)
    started = time.perf_counter()
    note = "completed"
    try:
        requests_loop_task(ids)
    except Exception as err:
        note = f"task failed at the first 429 ({type(err).__name__})"
    wall = time.perf_counter() - started
    standin.stop()
    return judge(case, "requests loop in a @task", standin, ids, limit, wall, note)


def run_http_operator(case: str, chats: int, limit: int) -> Row:
    standin, ids = fresh_standin(chats, limit)
    dag_file = dag_in_home("bench_http_operator.py")
    os.environ["HELPCRUNCH_BENCH_PARAMS"] = json.dumps({"chat_ids": ids})
    os.environ["AIRFLOW_CONN_HELPCRUNCH_HTTP"] = json.dumps(
        {"conn_type": "http", "host": "127.0.0.1", "port": standin.port, "schema": "http"}
    )
    started = time.perf_counter()
    with quiet():
        dag = load_dagbag(dag_file).get_dag("bench_http_operator")
        dag_run = dag.test()
        failed = sum(1 for ti in dag_run.get_task_instances() if ti.state != "success")
    wall = time.perf_counter() - started
    standin.stop()
    note = f"{failed} mapped task(s) failed" if failed else "every mapped task succeeded"
    return judge(case, "HttpOperator.partial().expand()", standin, ids, limit, wall, note)


def run_shared_key(case: str, chats: int, limit: int, workers: int = 4, *, redis: bool = False) -> Row:
    """``workers`` processes on one key; with ``redis``, the connection shares the window through Redis."""
    from airflow_provider_helpcrunch.testing.redis_server import RedisServer

    standin, ids = fresh_standin(chats, limit)
    server = RedisServer().start() if redis else None
    if server is not None:
        os.environ["AIRFLOW_CONN_REDIS_PACER"] = server.connection_json()
        os.environ["AIRFLOW_CONN_HELPCRUNCH_DEFAULT"] = standin.connection_json(redis_conn_id="redis_pacer")
    shares = [ids[n::workers] for n in range(workers)]
    started = time.perf_counter()
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "benchmarks.shared_key_worker", json.dumps(share)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for share in shares
    ]
    outputs = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in processes]
    wall = time.perf_counter() - started
    standin.stop()
    if server is not None:
        server.stop()
    errors = [o["error"] for o in outputs if "error" in o]
    sharing = "one window in Redis" if redis else "each pacing itself at the default 120/min"
    note = f"{workers} processes, {sharing}" + (f"; {len(errors)} failed: {errors[0]}" if errors else "")
    client = f"this provider x{workers} on one key" + (", redis_conn_id" if redis else "")
    return judge(case, client, standin, ids, limit, wall, note)


# ---------------------------------------------------------------------- client cost and scale


def client_cost(requests_count: int = 2000) -> dict[str, float]:
    """CPU seconds per request in this process; the stand-in runs in another process."""
    import requests

    from airflow_provider_helpcrunch.hooks.helpcrunch import HelpCrunchHook

    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_provider_helpcrunch.testing",
            "--chats",
            "50",
            "--requests-per-minute",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert server.stdout is not None  # a pipe, as asked
    try:
        server.stdout.readline()
        conn = json.loads(server.stdout.readline().split("=", 1)[1].strip().strip("'"))
        # the stand-in prints a line per request: read them all, or the full pipe would stall it
        threading.Thread(target=server.stdout.read, daemon=True).start()
        os.environ["AIRFLOW_CONN_HELPCRUNCH_DEFAULT"] = json.dumps(conn)
        ids = [5200 + n % 50 for n in range(requests_count)]

        bare = requests.Session()
        bare.headers["Authorization"] = f"Bearer {conn['password']}"
        url = f"{conn['host']}/chats/readByAgent"
        bare.put(url, json={"id": 5200, "read": True}, timeout=30)  # warm the connection
        cpu = time.process_time()
        for chat_id in ids:
            bare.put(url, json={"id": chat_id, "read": True}, timeout=30).raise_for_status()
        bare_cpu = (time.process_time() - cpu) / requests_count

        hook = HelpCrunchHook(requests_per_minute=10_000_000)
        with quiet():
            hook.mark_chat_read(5200)  # warm the connection
            cpu = time.process_time()
            for chat_id in ids:
                hook.mark_chat_read(chat_id)
            hook_cpu = (time.process_time() - cpu) / requests_count
    finally:
        server.terminate()
        server.wait(timeout=10)
    return {"bare_ms": bare_cpu * 1000, "hook_ms": hook_cpu * 1000, "ratio": hook_cpu / bare_cpu}


def scale() -> list[dict]:
    from airflow_provider_helpcrunch.operators.chat_ids import normalize_chat_ids

    rows = []
    for count in (100_000, 1_000_000):
        shapes = {
            "flat ints": lambda n=count: list(range(1, n + 1)),
            "mapped lists (1,000 per list)": lambda n=count: [
                list(range(s + 1, min(s + 1000, n) + 1)) for s in range(0, n, 1000)
            ],
            "chat dicts": lambda n=count: [{"id": i, "status": "closed"} for i in range(1, n + 1)],
            "numeric strings": lambda n=count: [str(i) for i in range(1, n + 1)],
            "one JSON string": lambda n=count: json.dumps(list(range(1, n + 1))),
            "mixed, with duplicates": lambda n=count: [[i, str(i), {"id": i}] for i in range(1, n // 3 + 1)],
        }
        for shape, make in shapes.items():
            value = make()
            started = time.perf_counter()
            found = len(normalize_chat_ids(value).ids)
            seconds = time.perf_counter() - started
            tracemalloc.start()
            normalize_chat_ids(value)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            rows.append(
                {"items": count, "shape": shape, "ids": found, "seconds": seconds, "peak_mib": peak / 2**20}
            )
            del value
    return rows


# ---------------------------------------------------------------------- requests that change nothing

DAY = 86400


def cleanup_steady_state(per_day: int, unread_by: str | None, limit: int) -> dict:
    """
    One daily run of the cleanup example in steady state: the 30-day lookback holds ``per_day`` chats closed
    on each day, and every day but the newest was marked read by the previous runs.
    """
    from airflow_provider_helpcrunch.operators.helpcrunch import (
        HelpCrunchSearchChatsOperator,
        MarkChatReadOperator,
    )

    now = int(time.time())
    cutoff = now - 7 * DAY
    start = cutoff - 30 * DAY
    standin = HelpCrunchStandIn(chats=0, requests_per_minute=limit).start()
    for day in range(30):
        for n in range(per_day):
            closed_at = start + day * DAY + n * (DAY // per_day)
            standin.add_chat(
                id=5200 + day * per_day + n, status="closed", closedAt=str(closed_at), readByAgent=day < 29
            )
    os.environ["AIRFLOW_CONN_HELPCRUNCH_DEFAULT"] = standin.connection_json()
    filters = [("status", "=", "closed"), ("closedAt", "<", cutoff), ("closedAt", ">=", start)]
    started = time.perf_counter()
    with quiet():
        found = HelpCrunchSearchChatsOperator(
            task_id="find", filters=filters, sort="closedAt", unread_by=unread_by, requests_per_minute=limit
        ).execute({})
        MarkChatReadOperator(task_id="mark", chat_ids=found, requests_per_minute=limit).execute({})
    wall = time.perf_counter() - started
    seen = standin.requests
    standin.stop()
    unread = [c for c in standin.chats.values() if not c["readByAgent"]]
    return {
        "case": f"7 cleanup, {per_day}/day, 30-day lookback",
        "variant": f"unread_by={unread_by!r}",
        "requests": len(seen),
        "puts": sum(1 for r in seen if r.method == "PUT"),
        "wall_s": round(wall, 1),
        "minutes_at_120": round(len(seen) / 120, 1),
        "left_unread": len(unread),
    }


def resume_after_stop(chats: int, stop_at: int, resume: bool, limit: int) -> dict:
    """A run whose try 1 stops at chat ``stop_at`` on a fault, then is retried, under ``dag.test()``."""
    from airflow_provider_helpcrunch.testing import Fault

    standin, ids = fresh_standin(chats, limit)
    standin.inject(Fault(status=500), chat_id=ids[stop_at - 1])
    dag_file = dag_in_home("bench_resume.py")
    os.environ["HELPCRUNCH_BENCH_PARAMS"] = json.dumps({"chat_ids": ids, "resume": resume, "limit": limit})
    with quiet():
        dag_run = load_dagbag(dag_file).get_dag("bench_resume").test()
    puts = [r for r in standin.requests if r.method == "PUT"]
    standin.stop()
    # one chat in flight at a time: try 1 ended with the fault, and every later request is try 2's
    fault_at = next(n for n, r in enumerate(puts) if r.status == 500)
    second = puts[fault_at + 1 :]
    return {
        "case": f"7 retry of a {chats}-chat run stopped at chat {stop_at}",
        "variant": f"resume={resume}",
        "requests": len(second),
        "puts": len(second),
        "wall_s": round(second[-1].time - second[0].time, 1),
        "minutes_at_120": round(len(second) / 120, 1),
        "left_unread": sum(1 for c in standin.chats.values() if not c["readByAgent"]),
        "state": dag_run.state,
    }


def waste_table(rows: list[dict]) -> str:
    lines = [
        "| case | variant | requests | PUTs | wall (s), scaled limit | minutes at 120/min | left unread |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['case']} | {r['variant']} | {r['requests']:,} | {r['puts']:,} | {r['wall_s']} "
        f"| {r['minutes_at_120']} | {r['left_unread']} |"
        for r in rows
    ]
    return "\n".join(lines) + "\n"


def wasted_requests(per_day: int, retry_chats: int, limit: int) -> list[dict]:
    rows = []
    for unread_by in (None, "agent"):
        step(f"7. cleanup steady state, {per_day} chats/day, unread_by={unread_by!r}")
        rows.append(cleanup_steady_state(per_day, unread_by, limit))
    for resume in (False, True):
        step(f"7. {retry_chats}-chat run stopped at {retry_chats * 3 // 4}, retried, resume={resume}")
        rows.append(resume_after_stop(retry_chats, retry_chats * 3 // 4, resume, limit))
    return rows


# ---------------------------------------------------------------------- report


def chart(rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in rows if r.case.startswith(("1", "3", "4"))]
    figure, axes = plt.subplots(len(shown), 1, figsize=(10, 2.4 * len(shown)), sharex=False)
    for axis, row in zip(axes, shown, strict=True):
        bins = 5.0
        end = max((t for t, _ in row.timeline), default=0.0)
        edges = [n * bins for n in range(int(end // bins) + 2)]
        ok = [sum(1 for t, s in row.timeline if s == 200 and a <= t < a + bins) / bins for a in edges]
        throttled = [sum(1 for t, s in row.timeline if s == 429 and a <= t < a + bins) / bins for a in edges]
        axis.step(edges, ok, where="post", label="answered 200 (req/s)")
        if any(throttled):
            axis.step(edges, throttled, where="post", color="tab:red", label="answered 429 (req/s)")
        axis.axhline(
            row.limit / 60, color="black", linestyle="--", linewidth=1, label=f"limit {row.limit}/min"
        )
        axis.set_title(f"{row.case}: {row.client}, {row.chats} chats", fontsize=9)
        axis.set_ylabel("req/s")
        axis.legend(fontsize=7, loc="lower right")
    axes[-1].set_xlabel("seconds since the first request (5 s bins)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def throughput_table(rows: list[Row]) -> str:
    lines = [
        "| case | client | chats | limit/min | wall (s) | rate / limit | 429s | chats lost | note |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    lines += [
        f"| {r.case} | {r.client} | {r.chats} | {r.limit} | {r.wall_s} | {r.rate:.1%} | {r.throttled} "
        f"| {r.lost} | {r.note} |"
        for r in sorted(rows, key=lambda row: int(row.case.split()[0]))
    ]
    return "\n".join(lines) + "\n"


def cost_table(cost: dict[str, float]) -> str:
    lines = [
        "| client CPU per PUT | ms |",
        "|---|---:|",
        f"| bare requests.Session | {cost['bare_ms']:.3f} |",
        f"| HelpCrunchHook.mark_chat_read | {cost['hook_ms']:.3f} |",
        f"| ratio | {cost['ratio']:.2f}x |",
    ]
    return "\n".join(lines) + "\n"


def scale_table(sizes: list[dict]) -> str:
    lines = ["| chat IDs in | shape | IDs out | seconds | peak MiB |", "|---:|---|---:|---:|---:|"]
    lines += [
        f"| {s['items']:,} | {s['shape']} | {s['ids']:,} | {s['seconds']:.2f} | {s['peak_mib']:.0f} |"
        for s in sizes
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- the cases


@dataclass
class Part:
    """What a case gives: throughput rows (one table and chart for all such cases), or a table of its own."""

    rows: list[Row] = field(default_factory=list)
    table: str = ""
    data: Any = None  # for results.json


@dataclass(frozen=True)
class Case:
    """One case of the benchmark: its ``--only`` name, its number in the tables, and how it runs."""

    name: str
    number: int
    title: str
    run: Callable[[argparse.Namespace], Part]


def _limit(args: argparse.Namespace) -> Part:
    step(
        f"1. this provider at 600/min, {args.scaled_chats} chats, then at the real 120/min, {args.real_chats}"
    )
    return Part(
        rows=[
            run_provider("1 scaled limit", args.scaled_chats, 600),
            run_provider("1 real limit", args.real_chats, 120),
        ]
    )


def _peers(args: argparse.Namespace) -> Part:
    step(f"2. peers at 600/min, {args.scaled_chats} chats: requests loop, then HttpOperator")
    return Part(
        rows=[
            run_requests_loop("2 peers", args.scaled_chats, 600),
            run_http_operator("2 peers", args.scaled_chats, 600),
        ]
    )


def _latency(args: argparse.Namespace) -> Part:
    step(f"3. 1 s latency at 120/min, {args.latency_chats} chats: one at a time, then max_in_flight=4")
    return Part(
        rows=[
            run_provider("3 latency 1 s", args.latency_chats, 120, latency=1.0, max_in_flight=in_flight)
            for in_flight in (1, 4)
        ]
    )


def _shared(args: argparse.Namespace) -> Part:
    step(f"4. four processes on one key at 120/min, {args.shared_chats} chats, alone then through Redis")
    return Part(
        rows=[run_shared_key("4 shared key", args.shared_chats, 120, redis=redis) for redis in (False, True)]
    )


def _cost(args: argparse.Namespace) -> Part:
    step("5. client CPU per request")
    cost = client_cost()
    return Part(table=cost_table(cost), data=cost)


def _scale(args: argparse.Namespace) -> Part:
    step("6. normalising 100,000 and 1,000,000 chat IDs")
    sizes = scale()
    return Part(table=scale_table(sizes), data=sizes)


def _waste(args: argparse.Namespace) -> Part:
    waste = wasted_requests(args.per_day, args.retry_chats, args.waste_limit)
    return Part(table=waste_table(waste), data=waste)


def _writes(args: argparse.Namespace) -> Part:
    return Part(rows=every_write(args.write_chats))


def _export(args: argparse.Namespace) -> Part:
    sizes = [int(size) for size in args.export_sizes.split(",")]
    exported = exports(sizes, args.export_messages, args.export_limit)
    return Part(table=export_table(exported), data=exported)


def _under_writes(args: argparse.Namespace) -> Part:
    step("10. a 600-chat export while agents close a chat and write a message every 25 requests")
    under_writes = export_under_writes.rows()
    return Part(table=export_under_writes.table(under_writes), data=under_writes)


def _watcher(args: argparse.Namespace) -> Part:
    step("11. an idle watcher for a simulated hour, then changes to DAG runs with real Airflow 3 processes")
    result = watcher.rows()
    return Part(table=watcher.table(result), data=result)


#: every case, in the order of the tables; ``--only`` names some of them.
CASES = [
    Case("limit", 1, "this provider at a scaled and at the real limit", _limit),
    Case("peers", 2, "a requests loop and HttpOperator on the same server", _peers),
    Case("latency", 3, "1 s of latency, one chat at a time against max_in_flight", _latency),
    Case("shared", 4, "four processes on one key, alone and through Redis", _shared),
    Case("cost", 5, "client CPU per request", _cost),
    Case("scale", 6, "normalising chat IDs from XCom", _scale),
    Case("waste", 7, "requests that change nothing", _waste),
    Case("writes", 8, "every other chat write at 120/min", _writes),
    Case("export", 9, "the export: requests and peak memory", _export),
    Case("under-writes", 10, "the export under agent writes", _under_writes),
    Case("watcher", 11, "the watcher's idle cost and its delay from a change to a DAG run", _watcher),
]


def report(parts: dict[str, Part], stem: str) -> str:
    """The tables of ``parts`` in ``RESULTS/<stem>.md`` (and ``.json``), throughput rows charted."""
    rows = [row for part in parts.values() for row in part.rows]
    tables = [throughput_table(rows)] if rows else []
    tables += [part.table for part in parts.values() if part.table]
    text = "\n".join(tables)
    (RESULTS / f"{stem}.md").write_text(text)
    data = {name: part.data for name, part in parts.items() if part.data is not None}
    data["rows"] = [asdict(r) | {"timeline": None} for r in rows]
    (RESULTS / f"{stem}.json").write_text(json.dumps(data, indent=1))
    if rows:
        chart(rows, RESULTS / ("throughput.png" if stem == "results" else f"{stem}.png"))
    return text


def main() -> int:
    names = [case.name for case in CASES]
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--scaled-chats", type=int, default=1000, help="N at the scaled 600/min limit")
    parser.add_argument("--real-chats", type=int, default=120, help="N at the real 120/min limit")
    parser.add_argument("--latency-chats", type=int, default=60, help="N with 1 s latency")
    parser.add_argument("--shared-chats", type=int, default=240, help="N shared by the four processes")
    parser.add_argument("--per-day", type=int, default=50, help="chats closed per day, for case 7")
    parser.add_argument("--retry-chats", type=int, default=2000, help="N of the retried run, for case 7")
    parser.add_argument("--waste-limit", type=int, default=6000, help="the scaled limit of case 7, per min")
    parser.add_argument("--write-chats", type=int, default=120, help="N of each write of case 8")
    parser.add_argument("--export-sizes", default="1000,20000", help="chats of each export of case 9")
    parser.add_argument("--export-messages", type=int, default=5, help="messages per chat in case 9")
    parser.add_argument("--export-limit", type=int, default=6_000, help="the scaled limit of case 9")
    parser.add_argument(
        "--only",
        type=lambda text: text.split(","),
        help=f"run only these cases, comma-separated: {', '.join(names)}",
    )
    args = parser.parse_args()
    unknown = sorted(set(args.only or []) - set(names))
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; the cases are {', '.join(names)}")
    chosen = [case for case in CASES if args.only is None or case.name in args.only]

    _BEGAN[0] = time.perf_counter()
    RESULTS.mkdir(parents=True, exist_ok=True)
    use_airflow_home(AIRFLOW_HOME)
    LOG.write_text("")
    step("migrating the benchmark's Airflow DB (for the DAGs run with dag.test())")
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, check=True)
    parts = {case.name: case.run(args) for case in chosen}
    step("report and chart")
    stem = "results" if args.only is None else "_".join(case.name for case in chosen)
    table = report(parts, stem)
    print()
    print(table)
    print(f"written: {RESULTS.relative_to(REPO)}/{stem}.md, {stem}.json")
    print(f"benchmark took {time.perf_counter() - _BEGAN[0]:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
