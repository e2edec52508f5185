"""Start and stop a real ``mlflow server`` (and a PostgreSQL cluster for it) on 127.0.0.1 for tests.

Both run in their own process group and ``stop()`` ends that group.  The MLflow server is started
lean (``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false``, one worker: ~6 s, ~0.5 GB instead of ~24 s,
~3 GB; see stack-facts).

    server = start_mlflow_server(tmp_path, backend_uri=f"sqlite:///{tmp_path}/mlflow.db")
    # server.uri == "http://127.0.0.1:<port>"
    server.stop()

    pg = start_postgres()                  # pytest.skip(reason) when PostgreSQL is unavailable
    pg.uri("mlflow") == "postgresql+psycopg2://postgres@127.0.0.1:<port>/mlflow"
    pg.stop()
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.servers import free_port


@dataclass
class Process:
    """A process group we started; ``stop()`` terminates the group (then kills it)."""

    process: subprocess.Popen = field(repr=False)
    log_path: Path = field(repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, timeout_s: float = 15.0) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.process.wait(timeout_s)
        # Workers that outlived their parent (uvicorn / huey): the group is gone only now.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)

    def kill(self) -> None:
        """SIGKILL the whole group at once (a crash, not a shutdown)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(15)

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""


@dataclass
class MlflowServer(Process):
    uri: str = ""


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2.0) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def start_mlflow_server(
    work: Path,
    backend_uri: str,
    port: int | None = None,
    timeout_s: float = 120.0,
    extra_args: tuple[str, ...] = (),
) -> MlflowServer:
    """``mlflow server`` on 127.0.0.1 with ``backend_uri``, artifacts under ``work/artifacts``;
    ``extra_args`` are appended (e.g. ``("--allowed-hosts", "127.0.0.1:5000")``)."""
    port = port or free_port()
    log_path = work / f"mlflow-server-{port}.log"
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    cmd = [
        str(Path(sys.executable).with_name("mlflow")),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        backend_uri,
        "--artifacts-destination",
        str(work / "artifacts"),
        *extra_args,
    ]
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env
        )
    server = MlflowServer(proc, log_path, uri=f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        if _healthy(f"{server.uri}/health"):
            return server
        time.sleep(0.3)
    tail = server.log_tail()
    server.stop()
    raise RuntimeError(f"mlflow server did not become healthy on port {port}:\n{tail}")


# ---------------------------------------------------------------------------------- PostgreSQL


def _pg_bin(name: str) -> str | None:
    """``initdb`` / ``pg_ctl`` from PATH or Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for d in versions:
        if (d / name).exists():
            return str(d / name)
    return None


@dataclass
class Postgres:
    """A throw-away PostgreSQL cluster in a temp dir, listening only on 127.0.0.1."""

    data_dir: Path
    port: int
    pg_ctl: str
    user: str

    def uri(self, database: str) -> str:
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/{database}"

    def _as_user(self, cmd: list[str]) -> subprocess.CompletedProcess:
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60)

    def create_database(self, name: str) -> None:
        psql = _pg_bin("psql") or "psql"
        res = self._as_user(
            [psql, "-h", "127.0.0.1", "-p", str(self.port), "-d", "postgres", "-c",
             f"CREATE DATABASE {name}"]
        )  # fmt: skip
        if res.returncode:
            raise RuntimeError(f"CREATE DATABASE {name} failed: {res.stderr}")

    def stop(self) -> None:
        self._as_user([self.pg_ctl, "-D", str(self.data_dir), "-m", "immediate", "stop"])
        shutil.rmtree(self.data_dir.parent, ignore_errors=True)


def start_postgres() -> Postgres:
    """initdb + pg_ctl start in a fresh temp dir (as user ``postgres`` when root, which must be
    able to enter it: pytest's tmp_path is private to root); skip if impossible."""
    import pytest

    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL is not installed (CI: apt-get install -y postgresql)")
    pytest.importorskip("psycopg2", reason='psycopg2 missing: pip install -e ".[server]"')
    user = pwd.getpwuid(os.geteuid()).pw_name
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run PostgreSQL as")
        user = "postgres"
    work = Path(tempfile.mkdtemp(prefix="evalkit-pg-"))
    data = work / "pgdata"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(work, user="postgres")
        shutil.chown(data, user="postgres")
    port = free_port()
    pg = Postgres(data, port, pg_ctl, user)
    res = pg._as_user([initdb, "-D", str(data), "-U", user, "-A", "trust", "--no-sync"])
    if res.returncode:
        pytest.skip(f"initdb failed: {res.stderr.strip()[:300]}")
    opts = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={data}"
    res = pg._as_user(
        [pg_ctl, "-D", str(data), "-o", opts, "-l", str(data / "server.log"), "-w", "-t", "60",
         "start"]
    )  # fmt: skip
    if res.returncode:
        log = (data / "server.log").read_text(errors="replace")[-500:] if data.exists() else ""
        pytest.skip(f"PostgreSQL did not start: {res.stderr.strip()[:300]} {log}")
    return pg
