"""A TCP proxy on 127.0.0.1 that holds every request ``delay_s`` seconds before passing it on:
a slow but healthy server, when put in front of a real one (e.g. ``mlflow server``).

    with DelayProxy(upstream_port=5000, delay_s=1.5) as proxy:
        proxy.uri  # "http://127.0.0.1:<port>"

Threads of this process only; ``stop()`` (or leaving the ``with``) closes every socket.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

#: A pause longer than this between two chunks from the client starts a new request.
_NEW_REQUEST_GAP_S = 0.1


class DelayProxy:
    def __init__(self, upstream_port: int, delay_s: float) -> None:
        self.upstream_port = upstream_port
        self.delay_s = delay_s
        self.requests = 0
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
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, delay: bool) -> None:
        last = 0.0
        try:
            while chunk := src.recv(65536):
                if delay and time.monotonic() - last > _NEW_REQUEST_GAP_S:
                    with self._lock:
                        self.requests += 1
                    time.sleep(self.delay_s)
                last = time.monotonic()
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
