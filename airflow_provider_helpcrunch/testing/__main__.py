"""Run the HelpCrunch stand-in from the command line: ``python -m airflow_provider_helpcrunch.testing``."""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
import time

from airflow_provider_helpcrunch.testing.server import DEFAULT_API_KEY, HelpCrunchStandIn


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
    args = parser.parse_args(argv)

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
    ).start()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    print(f"HelpCrunch stand-in serving {args.chats} chats at {standin.base_url}", flush=True)
    print(f"export AIRFLOW_CONN_HELPCRUNCH_DEFAULT={shlex.quote(standin.connection_json())}", flush=True)
    print("Press Ctrl+C to stop.", file=sys.stderr, flush=True)
    try:
        stop.wait()
    finally:
        standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
