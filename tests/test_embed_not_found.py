"""A ``base_url`` without ``/v1`` (issue 16, section 5): the 404 names the URL and suggests ``/v1``.

The server is a real ``http.server`` on 127.0.0.1 that, like OpenAI, vLLM or TEI, serves
embeddings only under ``/v1`` and answers every other route 404 with FastAPI's body
(``{"detail": "Not Found"}``).  No mock of the openai client.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from evalkit.checks.run_checks import run_checks
from evalkit.embed import OpenAIEmbedder
from evalkit.errors import EndpointError

from .cli import run_evalkit

DIM = 4


class _V1Only(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    paths: list[str]

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def _send(self, code: int, payload: object) -> None:
        body = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.paths.append(f"GET {self.path}")
        if self.path == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": "m", "object": "model"}]})
        else:
            self._send(404, {"detail": "Not Found"})

    def do_POST(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(n) or b"{}")
        self.paths.append(f"POST {self.path}")
        if self.path != "/v1/embeddings":
            self._send(404, {"detail": "Not Found"})
            return
        data = [
            {"object": "embedding", "index": i, "embedding": [1.0, float(len(t)), 0.5, 0.25]}
            for i, t in enumerate(body["input"])
        ]
        self._send(200, {"object": "list", "data": data, "model": "m"})


@pytest.fixture
def v1_only() -> Iterator[tuple[str, list[str]]]:
    """(server root without /v1, paths requested)."""
    paths: list[str] = []
    handler = type("Handler", (_V1Only,), {"paths": paths})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", paths
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def _embedder(base_url: str, **kw) -> OpenAIEmbedder:
    return OpenAIEmbedder(
        "served", base_url=base_url, model="m", encoding_format="float", retry_initial_s=0.01, **kw
    )


def test_404_names_the_url_and_suggests_v1_which_works(v1_only):
    root, paths = v1_only
    with pytest.raises(EndpointError) as err:
        _embedder(root).embed(["red shoe", "blue hat"], "document")
    message = str(err.value)
    assert "\n" not in message
    assert f"HTTP 404 from POST {root}/embeddings: Not Found" in message
    assert f"the base URL does not end in /v1: set models.served.base_url={root}/v1" in message
    assert paths == ["POST /embeddings"]  # a 404 is not retried
    suggested = re.search(r"base_url=(\S+)", message).group(1)
    vectors = _embedder(suggested, normalize=False).embed(["red shoe", "blue hat"], "document")
    np.testing.assert_allclose(vectors[:, 1], [8.0, 8.0])


def test_404_with_v1_does_not_suggest_v1(v1_only):
    """A 404 on ``.../v1/embeddings`` (here: another mount point) points at the model name."""
    root, _ = v1_only
    url = f"{root}/api/v1"
    with pytest.raises(EndpointError) as err:
        _embedder(url).embed(["red shoe"], "query")
    message = str(err.value)
    assert f"HTTP 404 from POST {url}/embeddings: Not Found" in message
    assert "does not end in /v1" not in message
    assert f"GET {url}/models lists them" in message


def test_404_on_one_of_several_endpoints_names_that_endpoint(v1_only):
    root, _ = v1_only
    version = _embedder(f"{root}/v1", base_urls=[root])
    with pytest.raises(EndpointError) as err:
        version.embed(["red shoe"], "document")
    assert f"HTTP 404 from POST {root}/embeddings" in str(err.value)
    assert f"use {root}/v1 in models.served.base_urls" in str(err.value)


def test_checks_stop_with_the_same_hint_instead_of_failing_every_check(v1_only):
    """``task=check`` / ``run_checks=true``: one error naming the URL, not 24 "HTTP 404" FAILs."""
    root, paths = v1_only
    with pytest.raises(EndpointError) as err:
        run_checks(_embedder(root), {"sections": ["sanity", "contract"]})
    message = str(err.value)
    assert "\n" not in message
    assert f"HTTP 404 from POST {root}/embeddings: Not Found" in message
    assert f"set models.served.base_url={root}/v1" in message
    assert paths == ["GET /models", "POST /embeddings"]


def test_checks_with_v1_run_as_before(v1_only):
    root, paths = v1_only
    checks = run_checks(_embedder(f"{root}/v1"), {"sections": ["contract"]})
    by_name = {c.name: c for c in checks}
    assert by_name["contract.models"].status.value == "PASS"
    assert by_name["contract.path_without_v1"].status.value == "PASS"  # report only
    assert "POST /v1/embeddings" in paths


@pytest.mark.slow
def test_task_check_command_exits_1_with_one_line(v1_only, tmp_path):
    root, _ = v1_only
    res = run_evalkit(
        "task=check",
        "models=[openai]",
        f"models.openai.base_url={root}",
        "models.openai.model=m",
        "checks.sections=[sanity,contract]",
        work=tmp_path,
        timeout=300,
    )
    assert res.returncode == 1, res.stderr[-3000:]
    lines = [x for x in res.stderr.splitlines() if "HTTP 404 from POST" in x]
    assert len(lines) == 1, res.stderr[-3000:]
    assert f"{root}/embeddings" in lines[0] and f"base_url={root}/v1" in lines[0]
