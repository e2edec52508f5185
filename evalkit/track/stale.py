"""Runs left RUNNING by a process that no longer exists are marked KILLED.

Every run carries ``evalkit.host``, ``evalkit.pid`` and ``evalkit.pid_start`` (the start time, so
a recycled pid is not mistaken for the original); the next evalkit start in the experiment on the
same host ends such runs KILLED (tag ``evalkit.end_reason`` says why).

>>> tags = process_tags()
>>> sorted(tags), is_alive(tags)
(['evalkit.host', 'evalkit.pid', 'evalkit.pid_start'], True)
>>> is_alive({"evalkit.pid": "999999999"})
False
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

HOST_TAG, PID_TAG, PID_START_TAG = "evalkit.host", "evalkit.pid", "evalkit.pid_start"
END_REASON_TAG = "evalkit.end_reason"


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (``/proc/<pid>/stat`` field 22), or ""."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return ""
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else ""


def process_tags() -> dict[str, str]:
    """The tags that identify this process."""
    pid = os.getpid()
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(pid), PID_START_TAG: _start_time(pid)}


def is_alive(tags: dict[str, str]) -> bool:
    """Whether the process named by the tags still runs (on this host)."""
    try:
        pid = int(tags.get(PID_TAG, ""))
    except ValueError:
        return True  # not ours to judge
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    recorded = tags.get(PID_START_TAG, "")
    now = _start_time(pid)
    return not (recorded and now and recorded != now)


def mark_stale_runs(client: Any, experiment_id: str) -> list[str]:
    """End RUNNING runs of dead evalkit processes on this host as KILLED; their ids."""
    host = socket.gethostname().replace("'", "")
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = '{host}'",
        max_results=1000,
    )
    killed = []
    for run in runs:
        tags = run.data.tags
        if PID_TAG not in tags or is_alive(tags):
            continue
        reason = (
            f"process {tags[PID_TAG]} on {host} ended without closing the run "
            f"(found by process {os.getpid()})"
        )
        client.set_tag(run.info.run_id, END_REASON_TAG, reason)
        client.set_terminated(run.info.run_id, "KILLED")
        killed.append(run.info.run_id)
    if killed:
        log.warning(
            "marked %d run(s) KILLED that a dead evalkit process left RUNNING: %s",
            len(killed),
            ", ".join(killed),
        )
    return killed
