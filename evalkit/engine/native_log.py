"""Keep the log lines Ray's C++ core writes straight to file descriptor 2 off evalkit's stderr.

A Ray driver's core worker (C++) writes its ERROR lines to the process's stderr whatever the
Python logging set-up says (``[2026-12-02 11:39:42,478 E 12407 12407] core_worker.cc:2465:
...``); Ray keeps them in its own log files as well (``<ray temp dir>/session_*/logs/
python-core-driver-*.log``).  :class:`NativeLogFilter` puts a pipe in front of file descriptor
2 and forwards everything except Ray's C++ lines of level I, W and E (FATAL lines pass: they
explain a crash).  ``engine=ray`` runs it for the Ray session unless ``verbose=true``.

>>> is_native_ray_line(b"[2026-12-02 11:39:42,478 E 12407 12407] core_worker.cc:2465: Actor ...")
True
>>> is_native_ray_line(b"[2026-12-02 11:39:22,917][evalkit.pipeline][INFO] - evaluating e5")
False
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading

_NATIVE = re.compile(
    rb"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ([DIWEF]) \d+ \d+\] [\w./-]+\.cc:\d+:"
)


def is_native_ray_line(line: bytes) -> bool:
    """Whether ``line`` is a Ray C++ log line below FATAL (those are dropped)."""
    m = _NATIVE.match(line)
    return bool(m) and m.group(1) != b"F"


class NativeLogFilter:
    """Context manager: file descriptor 2 goes through a filter thread for the duration.

    Partial lines that cannot be Ray's (a progress bar's ``\\r`` updates) are forwarded at once;
    ``dropped`` counts the lines kept off stderr.
    """

    def __init__(self, fd: int = 2) -> None:
        self.fd = fd
        self.dropped = 0
        self._saved: int | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> NativeLogFilter:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(AttributeError, OSError, ValueError):
                stream.flush()
        saved = os.dup(self.fd)
        out = os.dup(self.fd)
        read_end, write_end = os.pipe()
        os.dup2(write_end, self.fd)
        os.close(write_end)
        self._saved = saved
        self._thread = threading.Thread(
            target=self._pump, args=(read_end, out), name="evalkit-native-log", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._saved is None:
            return
        with contextlib.suppress(AttributeError, OSError, ValueError):
            sys.stderr.flush()
        os.dup2(self._saved, self.fd)  # closes the pipe's last write end held here: EOF
        os.close(self._saved)
        self._saved = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _pump(self, read_end: int, out: int) -> None:
        pending = b""
        try:
            while True:
                chunk = os.read(read_end, 65536)
                if not chunk:
                    break
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self._emit(line + b"\n", out)
                if pending and not pending.startswith(b"["):  # cannot be Ray's: show it now
                    _write_all(out, pending)
                    pending = b""
            if pending:
                self._emit(pending, out)
        except OSError:
            pass
        finally:
            os.close(read_end)
            os.close(out)

    def _emit(self, line: bytes, out: int) -> None:
        if is_native_ray_line(line):
            self.dropped += 1
            return
        _write_all(out, line)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
