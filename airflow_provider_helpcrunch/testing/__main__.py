"""Run the HelpCrunch stand-in from the command line: ``python -m airflow_provider_helpcrunch.testing``."""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import threading
import time

from airflow_provider_helpcrunch.testing.server import DEFAULT_API_KEY, HelpCrunchStandIn, RequestRecord
from airflow_provider_helpcrunch.testing.traffic import request_line, summarize


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_helpcrunch.testing",
        description="Serve a local HelpCrunch REST API v1 stand-in on loopback until stopped.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--chats", type=int, default=50, help="seeded chats to start with")
    parser.add_argument("--seed", type=int, default=0, help="seed of the chats")
    parser.add_argument(
        "--now", type=int, default=None, help="UNIX time the chats lead up to (default: the current time)"
    )
    parser.add_argument("--api-key", default=DEFAULT_API_KEY, help="the bearer token to accept")
    parser.add_argument(
        "--requests-per-minute", type=int, default=120, help="rate limit per minute; 0 turns it off"
    )
    parser.add_argument("--retry-after", action="store_true", help="send Retry-After with every 429")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds to wait before every answer")
    parser.add_argument(
        "--quiet", action="store_true", help="no line per request (the summary is still printed at exit)"
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    printing = threading.Lock()

    def say(*lines: str) -> None:
        with printing:
            print(*lines, sep="\n", flush=True)

    def on_request(record: RequestRecord) -> None:
        if not args.quiet:
            say(request_line(record, started))

    standin = HelpCrunchStandIn(
        chats=args.chats,
        seed=args.seed,
        now=int(time.time()) if args.now is None else args.now,
        api_key=args.api_key,
        requests_per_minute=args.requests_per_minute or None,
        retry_after=args.retry_after,
        latency=args.latency,
        host=args.host,
        port=args.port,
        on_request=on_request,
    ).start()
    limit = args.requests_per_minute or None

    def summary() -> None:
        say("Traffic so far:", *("  " + line for line in summarize(standin.requests, limit=limit).lines()))

    stop, woken = threading.Event(), threading.Event()

    def on_stop(*_: object) -> None:
        stop.set()
        woken.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_stop)
    signal.signal(signal.SIGUSR1, lambda *_: woken.set())
    say(
        f"HelpCrunch stand-in serving {args.chats} chats at {standin.base_url}",
        f"export AIRFLOW_CONN_HELPCRUNCH_DEFAULT={shlex.quote(standin.connection_json())}",
    )
    print(
        f"A line per request follows; kill -USR1 {os.getpid()} prints the summary, Ctrl+C stops.",
        file=sys.stderr,
        flush=True,
    )
    try:
        while not stop.is_set():
            woken.wait()
            woken.clear()
            if not stop.is_set():
                summary()
    finally:
        standin.stop()
        summary()
    return 0


if __name__ == "__main__":
    sys.exit(main())
