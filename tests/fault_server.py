"""A tiny OpenAI-compatible embeddings server that misbehaves on demand (tests only).

Stdlib ``http.server`` in a background thread on 127.0.0.1 (free port).  Every POST to
``/v1/embeddings`` (or ``/embeddings``) takes the next fault from a queue (``push``), or the
``default`` fault when the queue is empty, and answers accordingly.  Vectors are deterministic
unit vectors derived from the text (and ``input_type`` if sent): :meth:`FaultServer.vector_for`.

Faults (strings; ``kind[:arg]``):

    ok              correct answer
    shuffle         correct vectors, ``data`` in reverse order (indices still right)
    short / extra   one embedding fewer / more than inputs
    mixed_dim       the first embedding is one dimension shorter
    nan             the first embedding's first value is NaN
    dup_index       every item has index 0
    no_index        items have no ``index``
    bad_json        HTTP 200 with a body that is not JSON
    bad_base64      HTTP 200, first embedding is not valid base64 (base64 requests only)
    <status>[:s]    HTTP error, e.g. ``429``, ``500``, ``503:0.05`` (``retry-after: 0.05``)
    slow:<s>        sleep ``s`` seconds, then answer correctly
    cost:<s>        sleep ``s`` seconds per input text, then answer correctly (a server whose
                    compute grows with the batch; it keeps computing requests the client has
                    abandoned, as real servers do)
    constant        every embedding is the same unit vector (a broken model)
    echo_key[:status] HTTP ``status`` (500) whose error message echoes the request's
                    ``Authorization`` header and the bare key (servers that leak it)
    close           close the connection without answering
    no_usage        correct answer without ``usage`` (a server that reports no tokens)

Faults for the endpoint checks (every request they apply to; ``arg`` as noted):

    inf             the first embedding's first value is +inf
    zero            the first embedding is all zeros
    dim:<d>         every embedding has ``d`` dimensions (whatever was requested)
    scale:<s>       vectors multiplied by ``s`` (not normalised)
    noise:<sigma>   random Gaussian noise added (a non-deterministic endpoint)
    batch_noise     vectors shift with the batch size (alone != inside a batch)
    limit:<words>   HTTP 400 naming the limit when an input has more than ``words`` words
    crash:<words>   HTTP 500 when an input has more than ``words`` words
    truncate:<words> only the first ``words`` words of each input count (silent truncation)

Inputs that are not all strings get HTTP 400 (as the OpenAI API answers mixed-type lists).

With ``api_key`` set, a request without that key gets OpenAI's HTTP 401, which quotes the key
sent: ``Incorrect API key provided: <key>. You can find your API key at ...``.  With
``leak_key=True`` every other error message also ends with the key the request sent
(``... (request key <key>)``): a server that leaks it in any error, for redaction tests.

Every embedding request is recorded with its start and end times (``Recorded.started`` /
``finished``, ``time.monotonic()``), so tests can count the requests in flight at any moment
(:meth:`FaultServer.max_overlap`), also those a client abandoned after its timeout.

    with FaultServer(dim=8) as srv:
        srv.push("429:0.01", "nan")
        # srv.base_url -> "http://127.0.0.1:<port>/v1"; srv.requests records every request

With ``tls`` (a server-side ``ssl.SSLContext``, e.g. :func:`tests.tls_certs.server_context`) it
serves https: ``srv.base_url`` -> ``"https://127.0.0.1:<port>/v1"``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

KINDS = (
    "ok",
    "shuffle",
    "short",
    "extra",
    "mixed_dim",
    "nan",
    "dup_index",
    "no_index",
    "bad_json",
    "bad_base64",
    "slow",
    "close",
    "inf",
    "zero",
    "dim",
    "scale",
    "noise",
    "batch_noise",
    "limit",
    "crash",
    "truncate",
    "cost",
    "echo_key",
    "constant",
    "no_usage",
)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that time out or hang up mid-answer are expected here: stay quiet."""


@dataclass(frozen=True)
class Fault:
    kind: str = "ok"
    status: int | None = None
    arg: float | None = None  # retry-after seconds for statuses, sleep seconds for "slow"

    @classmethod
    def parse(cls, spec: str | Fault) -> Fault:
        if isinstance(spec, Fault):
            return spec
        kind, _, arg = str(spec).partition(":")
        value = float(arg) if arg else None
        if kind.isdigit():
            return cls("status", int(kind), value)
        if kind not in KINDS:
            raise ValueError(f"unknown fault {spec!r} (expected one of {KINDS} or an HTTP status)")
        return cls(kind, None, value)


@dataclass
class Recorded:
    """One request the server received."""

    path: str
    headers: dict[str, str]  # lower-cased names
    body: dict[str, Any] | None
    fault: Fault
    started: float = 0.0  # time.monotonic() when the request arrived
    finished: float | None = None  # ... and when its answer was sent (None: not yet)

    @property
    def inputs(self) -> list[str]:
        """The texts of an embeddings request (empty for anything else)."""
        value = (self.body or {}).get("input")
        return [value] if isinstance(value, str) else list(value or [])


@dataclass
class FaultServer:
    """See the module docstring.  ``honour_dimensions`` truncates to a sent ``dimensions``
    (without re-normalising, like infinity-emb); ``api_key`` (if set) is required as Bearer;
    ``query_dim`` (if set) is the dimension of requests with ``input_type`` ``query`` (a server
    that serves queries and documents with different models)."""

    dim: int = 16
    default: str = "ok"
    honour_dimensions: bool = True
    api_key: str | None = None
    model_name: str = "fault-model"
    query_dim: int | None = None
    leak_key: bool = False
    tls: ssl.SSLContext | None = None  # serve https with this server-side context
    requests: list[Recorded] = field(default_factory=list)
    in_flight: int = 0  # embedding requests being answered right now
    max_in_flight: int = 0  # the most ever answered at once

    def __post_init__(self) -> None:
        self._queue: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._httpd: _QuietServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ control

    def push(self, *faults: str | Fault) -> None:
        """Queue faults for the next requests (first pushed, first used)."""
        parsed = [Fault.parse(f) for f in faults]
        with self._lock:
            self._queue.extend(parsed)

    def _next_fault(self) -> Fault:
        with self._lock:
            return self._queue.popleft() if self._queue else Fault.parse(self.default)

    def max_overlap(self, requests: list[Recorded] | None = None) -> int:
        """The most of ``requests`` (default: every embedding request) in flight at once."""
        events = []
        for r in self.embedding_requests if requests is None else requests:
            events += [(r.started, 1), (r.finished if r.finished is not None else 1e18, -1)]
        peak = now = 0
        for _, step in sorted(events, key=lambda e: (e[0], e[1])):  # ends before starts on ties
            now += step
            peak = max(peak, now)
        return peak

    @property
    def embedding_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.rstrip("/").endswith("embeddings")]

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("server not started")
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def start(self) -> FaultServer:
        server = self
        handler = type("Handler", (_Handler,), {"server_state": server})
        self._httpd = _QuietServer(("127.0.0.1", 0), handler)
        if self.tls is not None:  # the handshake runs in the request's thread, on first read
            self._httpd.socket = self.tls.wrap_socket(
                self._httpd.socket, server_side=True, do_handshake_on_connect=False
            )
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ vectors

    @staticmethod
    def vector_for(text: str, dim: int, input_type: str | None = None) -> np.ndarray:
        """The deterministic unit vector this server returns for ``text``."""
        seed_text = f"{input_type}: {text}" if input_type else text
        seed = int.from_bytes(hashlib.blake2b(seed_text.encode(), digest_size=8).digest(), "little")
        v = np.random.default_rng(seed).standard_normal(dim)
        return (v / np.linalg.norm(v)).astype(np.float32)


class _Handler(BaseHTTPRequestHandler):
    server_state: FaultServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def _send(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _sent_key(self) -> str:
        return (self.headers.get("Authorization") or "").removeprefix("Bearer ")

    def _error(self, code: int, message: str, headers: dict[str, str] | None = None) -> None:
        if self.server_state.leak_key and code != 401:
            message = f"{message} (request key {self._sent_key()})"
        body = json.dumps({"error": {"message": message, "type": "fault", "code": code}})
        self._send(code, body.encode(), headers)

    def do_GET(self) -> None:
        state = self.server_state
        if self.path in ("/health", "/"):
            self._send(200, b'{"status": "ok"}')
        elif self.path == "/v1/models":
            body = {"object": "list", "data": [{"id": state.model_name, "object": "model"}]}
            self._send(200, json.dumps(body).encode())
        else:
            self._error(404, "unknown route")

    def do_POST(self) -> None:
        state = self.server_state
        with state._lock:
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            self._answer(state)
        finally:
            with state._lock:
                state.in_flight -= 1

    def _answer(self, state: FaultServer) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        fault = state._next_fault()
        with state._lock:
            headers = {k.lower(): v for k, v in self.headers.items()}
            record = Recorded(self.path, headers, body, fault, started=time.monotonic())
            state.requests.append(record)
        try:
            self._embeddings(state, body, fault)
        finally:
            record.finished = time.monotonic()

    def _embeddings(self, state: FaultServer, body: Any, fault: Fault) -> None:
        if self.path not in ("/v1/embeddings", "/embeddings"):
            self._error(404, "unknown route")
            return
        if (
            state.api_key is not None
            and self.headers.get("Authorization") != f"Bearer {state.api_key}"
        ):
            self._error(  # OpenAI's answer, which quotes the key it was sent
                401,
                f"Incorrect API key provided: {self._sent_key()}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
            )
            return
        if fault.kind == "status":
            headers = {"retry-after": f"{fault.arg:g}"} if fault.arg is not None else None
            self._error(int(fault.status or 500), f"injected HTTP {fault.status}", headers)
            return
        if fault.kind == "close":
            self.close_connection = True
            return
        if fault.kind == "echo_key":
            auth = self.headers.get("Authorization", "")
            key = auth.removeprefix("Bearer ")
            self._error(
                int(fault.arg or 500),
                f"upstream rejected request with Authorization: {auth} (api_key={key}, key {key})",
            )
            return
        if fault.kind == "cost" and isinstance(body, dict):
            inputs = body.get("input")
            n_inputs = 1 if isinstance(inputs, str) else len(inputs or [])
            time.sleep((fault.arg or 0.05) * n_inputs)
        if fault.kind == "slow":
            time.sleep(fault.arg or 1.0)
        if fault.kind == "bad_json":
            self._send(200, b"this is not json")
            return
        if not isinstance(body, dict) or not body.get("input"):
            self._error(400, "'input' must be a non-empty string or array of strings")
            return
        texts = [body["input"]] if isinstance(body["input"], str) else list(body["input"])
        if not all(isinstance(t, str) for t in texts):
            self._error(400, "'input' array must contain only strings")
            return
        words = max(len(t.split()) for t in texts)
        if fault.kind in ("limit", "crash") and words > int(fault.arg or 0):
            code = 400 if fault.kind == "limit" else 500
            self._error(
                code,
                f"input has {words} words, more than the maximum of {int(fault.arg or 0)} words",
            )
            return
        if fault.kind == "truncate":
            texts = [" ".join(t.split()[: int(fault.arg or 0)]) for t in texts]
        dim = int(fault.arg) if fault.kind == "dim" else state.dim
        if state.query_dim is not None and body.get("input_type") == "query":
            dim = state.query_dim
        requested = body.get("dimensions")
        matrix = np.stack([state.vector_for(t, dim, body.get("input_type")) for t in texts])
        if state.honour_dimensions and isinstance(requested, int) and 0 < requested < dim:
            matrix = matrix[:, :requested]
        if fault.kind == "constant":
            matrix = np.stack([state.vector_for("constant", matrix.shape[1])] * len(texts))
        if fault.kind == "scale":
            matrix = matrix * np.float32(fault.arg if fault.arg is not None else 2.0)
        elif fault.kind in ("noise", "batch_noise"):  # unit vectors that move: only that is wrong
            if fault.kind == "noise":
                shift = np.random.default_rng().standard_normal(matrix.shape) * (fault.arg or 0.01)
            else:
                shift = state.vector_for("batch", matrix.shape[1]) * (0.05 * (len(texts) - 1))
            moved = matrix + shift
            matrix = (moved / np.linalg.norm(moved, axis=1, keepdims=True)).astype(np.float32)
        rows = [m for m in matrix]
        if fault.kind in ("nan", "inf", "zero"):
            rows[0] = rows[0].copy()
            if fault.kind == "zero":
                rows[0][:] = 0.0
            else:
                rows[0][0] = np.nan if fault.kind == "nan" else np.inf
        if fault.kind == "mixed_dim":
            rows[0] = rows[0][:-1]
        b64 = body.get("encoding_format") == "base64"
        data: list[dict[str, Any]] = []
        for i, row in enumerate(rows):
            emb: Any = (
                base64.b64encode(row.astype("<f4").tobytes()).decode()
                if b64
                else [float(x) for x in row]
            )
            data.append({"object": "embedding", "index": i, "embedding": emb})
        if fault.kind == "bad_base64" and b64:
            data[0]["embedding"] = "***not base64***"
        if fault.kind == "shuffle":
            data.reverse()
        elif fault.kind == "short":
            data.pop()
        elif fault.kind == "extra":
            data.append(dict(data[-1], index=len(data)))
        elif fault.kind == "dup_index":
            for item in data:
                item["index"] = 0
        elif fault.kind == "no_index":
            for item in data:
                item.pop("index")
        payload = {
            "object": "list",
            "data": data,
            "model": state.model_name,
            "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)},
        }
        if fault.kind == "no_usage":
            del payload["usage"]
        self._send(200, json.dumps(payload).encode())
