"""A TCP proxy on 127.0.0.1 that holds every HTTP request ``delay_s`` seconds before passing it
on: a slow but healthy server, when put in front of a real one (e.g. ``mlflow server``).

    with DelayProxy(upstream_port=5000, delay_s=1.5) as proxy:
        proxy.uri       # "http://127.0.0.1:<port>"
        proxy.requests  # HTTP requests received so far
        proxy.seen      # their request lines' "METHOD /path", in order

With ``cut_on="/runs/log-batch"`` the server "dies" at a chosen point of the client's
conversation, not at a time: the first request whose ``METHOD /path`` contains ``cut_on`` is
not passed on, every connection is reset and new ones are refused (:attr:`cut` is set).

Requests are told apart by their request line (``POST /api/... HTTP/1.1``) at the start of a
chunk from the client: an HTTP/1.1 client (no pipelining) sends the next request on a kept-alive
connection only after the previous answer, so a request always starts a chunk.

Threads of this process only; ``stop()`` (or leaving the ``with``) closes every socket.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time

_REQUEST_LINE = re.compile(rb"^([A-Z]+) (\S+) HTTP/1\.[01]\r\n")


class DelayProxy:
    def __init__(self, upstream_port: int, delay_s: float, cut_on: str | None = None) -> None:
        self.upstream_port = upstream_port
        self.delay_s = delay_s
        self.cut_on = cut_on
        self.requests = 0
        self.seen: list[str] = []
        self.cut = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.uri = f"http://127.0.0.1:{self.port}"
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def __enter__(self) -> DelayProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stopped.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            for s in self._sockets:
                # shutdown first: a close alone leaves a connection another thread is reading
                # from working (the kernel socket lives on), so a kept-alive client would go on
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    s.close()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._stopped.is_set():  # accepted just before the cut closed the listener
                with contextlib.suppress(OSError):
                    client.close()
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _request(self, chunk: bytes) -> str:
        """``"new"`` for a chunk that starts a request (counted), ``"cut"`` for the request to
        cut on (or any after it), ``""`` for the rest of a request."""
        match = _REQUEST_LINE.match(chunk)
        if match is None:
            return ""
        line = f"{match[1].decode()} {match[2].decode('latin-1')}"
        with self._lock:
            if self.cut.is_set():
                return "cut"
            self.requests += 1
            self.seen.append(line)
            if self.cut_on is not None and self.cut_on in line:
                self.cut.set()
                return "cut"
        return "new"

    def _pump(self, src: socket.socket, dst: socket.socket, from_client: bool) -> None:
        try:
            while chunk := src.recv(65536):
                kind = self._request(chunk) if from_client else ""
                if kind == "cut":
                    self.stop()  # the server dies: this request and every later one fail
                    return
                if kind == "new":
                    time.sleep(self.delay_s)
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
