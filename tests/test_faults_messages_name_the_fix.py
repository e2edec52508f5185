"""Every message about bad input names the file, row or setting and the fix.

Each fault is injected as a user meets it: a truncated ``corpus.jsonl.gz``, ids a spreadsheet
wrote as floats, UTF-16 and Windows-1252 files, ..."""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path

import pytest

from evalkit.data.tabular import load_tabular
from evalkit.errors import DataError

from .cli import run_evalkit
from .delay_proxy import DelayProxy
from .fault_server import FaultServer
from .mlflow_servers import start_mlflow_server
from .test_faults_end_in_one_line import one_line_error, rewrite_qrels
from .testdata import unpack
from .tls_certs import self_signed, server_context

SMALL_DEMO = ("dataset.n_items=50", "dataset.n_queries=8")

# ------------------------------------------------------------------ 4: a slow tracking server


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """A real ``mlflow server`` on 127.0.0.1 holding one finished evaluation: (server, its run
    id); stopped after the module."""
    from mlflow import MlflowClient

    work = tmp_path_factory.mktemp("mlflow-server")
    server = start_mlflow_server(work, backend_uri=f"sqlite:///{work}/server.db")
    try:
        client = MlflowClient(tracking_uri=server.uri)
        exp = client.create_experiment("evalkit")
        run = client.create_run(exp, run_name="adi: use_m3 vs e5_small")
        client.set_tag(run.info.run_id, "evalkit.dataset", "adi")
        client.set_terminated(run.info.run_id)
        yield server, run.info.run_id
    finally:
        server.stop()


def test_slow_tracking_server_is_reported_slow_not_down(tmp_path, mlflow_server):
    server, run_id = mlflow_server
    port = int(server.uri.rsplit(":", 1)[1])
    with DelayProxy(port, delay_s=1.5) as proxy:
        res = run_evalkit(
            "models=[use_m3]",
            *SMALL_DEMO,
            "tracking=server",
            f"tracking.uri={proxy.uri}",
            "tracking.timeout_s=1",
            work=tmp_path,
        )
        line = one_line_error(res)
        assert f"tracking.uri='{proxy.uri}' is up but slow: it answered in 1." in line
        assert "over tracking.timeout_s=1; raise tracking.timeout_s" in line
        assert "unreachable" not in line and "start it" not in line
        assert proxy.requests == 1  # the pre-flight only: nothing else ran
        # Raised above the server's pace, the same slow server serves the listing.
        listed = run_evalkit(
            "task=runs",
            "tracking=server",
            f"tracking.uri={proxy.uri}",
            "tracking.timeout_s=4",
            work=tmp_path,
            out_name="runs",
        )
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert run_id in listed.stdout


def test_hung_tracking_server_fails_after_twice_the_limit(tmp_path, mlflow_server):
    port = int(mlflow_server[0].uri.rsplit(":", 1)[1])
    with DelayProxy(port, delay_s=60) as proxy:
        res = run_evalkit(
            "task=runs",
            "tracking=server",
            f"tracking.uri={proxy.uri}",
            "tracking.timeout_s=0.5",
            work=tmp_path,
        )
    line = one_line_error(res)
    assert "accepted the connection but did not answer within 1 s" in line
    assert "raise tracking.timeout_s" in line


def test_tracking_timeout_must_be_positive(tmp_path):
    res = run_evalkit("task=runs", "tracking=server", "tracking.timeout_s=0", work=tmp_path)
    assert "tracking.timeout_s=0 is invalid (expected seconds > 0)" in one_line_error(res)


# ------------------------------------------------------------------ 5: a truncated gzip file


def whole_lines_in(cut: bytes) -> int:
    """Complete lines a gzip prefix decompresses to (counted independently of evalkit)."""
    text = zlib.decompressobj(wbits=31).decompress(cut)
    return text.count(b"\n")


def test_truncated_corpus_gz_names_the_file_and_the_row_reached(tmp_path, shared_data):
    folder = tmp_path / "adi"
    folder.mkdir()
    for rel in ("corpus.jsonl.gz", "queries.jsonl.gz", "qrels/test.tsv.gz"):
        (folder / rel).parent.mkdir(exist_ok=True)
        (folder / rel).write_bytes((shared_data / "adi" / rel).read_bytes())
    corpus = folder / "corpus.jsonl.gz"
    whole = corpus.read_bytes()
    cut = whole[: len(whole) * 2 // 3]  # a download stopped two thirds of the way
    corpus.write_bytes(cut)
    res = run_evalkit("dataset=beir", f"dataset.path={folder}", "tracking=none", work=tmp_path)
    line = one_line_error(res)
    rows = whole_lines_in(cut)
    assert 0 < rows < 82
    assert (
        f"{corpus}: the gzip stream ends early after row {rows} (a partial download? "
        "fetch the file again)"
    ) in line
    assert "EOFError" not in res.stderr and "full_key" not in res.stderr


def test_truncated_qrels_gz_counts_rows_after_the_header(tmp_path):
    rows = "".join(f"q{i % 2 + 1},{i % 3 + 1},1\n" for i in range(3000))
    whole = gzip.compress(("query_id,item_id,grade\n" + rows).encode())
    judgments = tmp_path / "judgments.csv.gz"
    judgments.write_bytes(whole[: len(whole) // 2])
    items, queries = tmp_path / "items.csv", tmp_path / "queries.jsonl"
    items.write_text("id,title\n1,red shoe\n2,blue hat\n3,tea cup\n")
    queries.write_text('{"id": "q1", "text": "shoe"}\n{"id": "q2", "text": "hat"}\n')
    with pytest.raises(DataError) as err:
        load_tabular(
            catalog={"path": items},
            queries={"path": queries},
            judgments={"path": judgments},
            cache_dir=str(tmp_path / "hf"),
        )
    n = whole_lines_in(whole[: len(whole) // 2]) - 1  # the header line is not a row
    assert str(err.value) == (
        f"{judgments}: the gzip stream ends early after row {n:,} (a partial download? "
        "fetch the file again)"
    )


# ------------------------------------------------------------------ 7: ids written as floats


@pytest.mark.parametrize(
    ("column", "field", "table"), [(1, "corpus-id", "catalog"), (0, "query-id", "queries")]
)
def test_float_formatted_ids_are_said_to_be_floats(tmp_path, shared_data, column, field, table):
    folder = unpack("adi", tmp_path / "adi")

    def as_float(r: list[str]) -> str:
        r[column] += ".0"  # what pandas writes for an id column read as float
        return "\t".join(r)

    rewrite_qrels(folder, as_float)
    res = run_evalkit("dataset=beir", f"dataset.path={folder}", "tracking=none", work=tmp_path)
    line = one_line_error(res)
    first = "17" if column == 1 else "1"
    assert f"test.tsv, row 1, field '{field}': 170 of 170 judged ids are unknown" in line
    assert (
        f"first '{first}.0', nearest {table} id '{first}': the ids are written as floats "
        f"('{first}.0' for '{first}'); write them as integers"
    ) in line


def test_a_catalog_with_float_ids_is_named_as_the_float_side(tmp_path):
    items = tmp_path / "items.csv"
    items.write_text("id,title\n1.0,red shoe\n2.0,blue hat\n3.0,tea cup\n")
    queries = tmp_path / "queries.jsonl"
    queries.write_text('{"id": "q1", "text": "shoe"}\n{"id": "q2", "text": "hat"}\n')
    judgments = tmp_path / "judgments.csv"
    judgments.write_text("query_id,item_id,grade\nq1,1,2\nq2,2,1\n")
    with pytest.raises(DataError) as err:
        load_tabular(
            catalog={"path": items},
            queries={"path": queries},
            judgments={"path": judgments},
            cache_dir=str(tmp_path / "hf"),
        )
    assert "the catalog's ids are written as floats ('1.0' for '1')" in str(err.value)


# ------------------------------------------------------------------ 8: the encoding found


def encoded_corpus(tmp_path: Path, encoding: str) -> Path:
    """ADI with its corpus.jsonl saved in ``encoding`` (a title with Western European typography)."""
    folder = unpack("adi", tmp_path / "adi")
    corpus = folder / "corpus.jsonl"
    rows = [json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines()]
    rows[3]["title"] += " caf\u00e9 \u2013 \u201cna\u00efve\u201d r\u00e9sum\u00e9"
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    corpus.write_bytes(text.encode(encoding))
    return corpus


def test_utf16_corpus_is_named_utf16_by_its_byte_order_mark(tmp_path):
    corpus = encoded_corpus(tmp_path, "utf-16")  # Windows "Unicode": LE with a mark
    res = run_evalkit(
        "dataset=beir", f"dataset.path={corpus.parent}", "tracking=none", work=tmp_path
    )
    line = one_line_error(res)
    assert (
        f"{corpus}: the file is UTF-16 LE (byte-order mark FF FE), not UTF-8 (expected UTF-8 "
        "text: convert it, iconv -f UTF-16 -t UTF-8)"
    ) in line
    assert "latin1" not in line
    assert res.stderr.strip().splitlines() == [line]  # not datasets' "Failed to load JSON" too


def test_cp1252_corpus_is_named_windows_1252(tmp_path):
    corpus = encoded_corpus(tmp_path, "cp1252")
    res = run_evalkit(
        "dataset=beir", f"dataset.path={corpus.parent}", "tracking=none", work=tmp_path
    )
    line = one_line_error(res)
    assert f"{corpus}, row 4: line 4 is not valid UTF-8 (byte 0xe9" in line
    assert "the file looks like Windows-1252 (cp1252)" in line
    assert "iconv -f CP1252 -t UTF-8" in line and "latin1" not in line


def test_utf16_tsv_without_a_mark_is_named_at_its_header(tmp_path):
    items = tmp_path / "items.tsv"
    items.write_bytes("id\ttitle\n1\tred shoe\n".encode("utf-16-le"))
    queries = tmp_path / "queries.jsonl"
    queries.write_text('{"id": "q1", "text": "shoe"}\n')
    with pytest.raises(DataError) as err:
        load_tabular(catalog={"path": items}, queries={"path": queries}, cache_dir=str(tmp_path))
    assert "the file is UTF-16 LE without a byte-order mark, not UTF-8" in str(err.value)


# ------------------------------------------------------------------ 10: the garbled hint


def test_empty_title_in_a_catalog_without_text_has_a_readable_hint(tmp_path):
    items = tmp_path / "items.csv"
    items.write_text("id,title\n1,red shoe\n2,\n3,tea cup\n")
    queries = tmp_path / "queries.jsonl"
    queries.write_text('{"id": "q1", "text": "shoe"}\n')
    with pytest.raises(DataError) as err:
        load_tabular(catalog={"path": items}, queries={"path": queries}, cache_dir=str(tmp_path))
    assert str(err.value) == (
        f"{items}, row 2, field 'title': title is empty or whitespace-only; use "
        "dataset.on_invalid=skip to drop such rows (expected a non-empty title)"
    )


# ------------------------------------------------------------------ 10: exit code when tracking fails


@pytest.mark.slow
def test_tracking_dying_mid_run_keeps_exit_4_for_inconclusive(
    tmp_path, shared_data, shared_cache, mlflow_server
):
    """docs/how-to/mlflow.md: a store failing mid-run exits 1 only for PASS / WARN; ADI is
    INCONCLUSIVE (4).

    The server dies at a fixed point of the run's MLflow conversation, not at a time: the
    proxy refuses the first ``runs/update`` (the baseline's child run ending) and every request
    after it, so the evaluation has started logging (runs created, the baseline's files sent)
    and has not finished (the candidate and the comparison are still to come)."""

    server, _ = mlflow_server
    port = int(server.uri.rsplit(":", 1)[1])
    with DelayProxy(port, delay_s=0, cut_on="/runs/update") as proxy:
        res = run_evalkit(
            "dataset=beir",
            f"dataset.path={shared_data / 'adi'}",
            "models=[use_m3,e5_small]",
            "tracking=server",
            f"tracking.uri={proxy.uri}",
            "tracking.experiment=dies",
            f"cache.dir={shared_cache}",
            work=tmp_path,
        )
    assert proxy.cut.is_set(), proxy.seen  # the server died mid-run, not after it
    assert any("/runs/create" in line for line in proxy.seen), proxy.seen
    assert res.returncode == 4, res.stderr[-3000:]
    assert "INCONCLUSIVE" in res.stdout
    lines = res.stderr.splitlines()
    assert len([ln for ln in lines if "evalkit task=log" in ln]) == 1, res.stderr[-3000:]
    assert json.loads((res.out_dir / "verdict.json").read_text())["verdict"] == "INCONCLUSIVE"
    assert (res.out_dir / "mlflow_runs.json").is_file()  # what `task=log` logs later


# ------------------------------------------------------------------ 10: an internal CA


@pytest.fixture
def tls_server(tmp_path):
    """An https embeddings server on 127.0.0.1 with a self-signed certificate: (server, cert)."""
    cert, key = self_signed(tmp_path)
    with FaultServer(dim=16, tls=server_context(cert, key)) as srv:
        yield srv, cert


def served_over_tls(server: FaultServer, *extra: str) -> tuple[str, ...]:
    return (
        "models=[openai]",
        f"models.openai.base_url={server.base_url}",
        "models.openai.model=fault-model",
        "models.openai.max_retries=5",
        "models.openai.retry_initial_s=2",  # a retried certificate would take 2 + 4 + ... s
        "tracking=none",
        *SMALL_DEMO,
        *extra,
    )


def test_untrusted_certificate_is_final_and_says_how_to_trust_the_ca(tmp_path, tls_server):
    server, _ = tls_server
    res = run_evalkit(*served_over_tls(server), work=tmp_path)
    line = one_line_error(res)
    assert (
        f"TLS certificate of {server.base_url} is not trusted (self-signed certificate): trust "
        "the CA that signed it with models.openai.ca_bundle=/path/to/ca.pem"
    ) in line
    assert "SSL_CERT_FILE=/path/to/ca.pem" in line
    assert "retry" not in res.stderr  # final, not retried as a transient fault
    assert server.embedding_requests == []  # no request got past the handshake


def test_ca_bundle_trusts_the_internal_ca(tmp_path, tls_server):
    server, cert = tls_server
    res = run_evalkit(*served_over_tls(server, f"models.openai.ca_bundle={cert}"), work=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert len(server.embedding_requests) >= 2  # catalog and queries, over https


def test_ssl_cert_file_trusts_it_instead(tmp_path, tls_server, monkeypatch):
    server, cert = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # run_evalkit passes os.environ on
    res = run_evalkit(*served_over_tls(server), work=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert len(server.embedding_requests) >= 2


def test_endpoint_checks_say_the_same_and_trust_the_ca_bundle(tls_server):
    from evalkit.checks.run_checks import run_checks
    from evalkit.embed import OpenAIEmbedder
    from evalkit.errors import EndpointError

    server, cert = tls_server
    untrusted = OpenAIEmbedder("internal", base_url=server.base_url, model="fault-model")
    with pytest.raises(EndpointError, match=r"TLS certificate of .* is not trusted .*ca_bundle"):
        run_checks(untrusted, {"sections": ["contract"]})
    trusted = OpenAIEmbedder(
        "internal", base_url=server.base_url, model="fault-model", ca_bundle=str(cert)
    )
    checks = {c.name: c for c in run_checks(trusted, {"sections": ["contract"]})}
    assert checks["contract.embeddings"].status.name == "PASS"  # the openai client's request


def test_a_missing_ca_bundle_is_named(tmp_path):
    res = run_evalkit(
        "models=[openai]",
        "models.openai.base_url=https://127.0.0.1:9/v1",
        "models.openai.model=x",
        f"models.openai.ca_bundle={tmp_path}/nope.pem",
        *SMALL_DEMO,
        work=tmp_path,
    )
    line = one_line_error(res)
    assert f"models.openai.ca_bundle='{tmp_path}/nope.pem' is not a file" in line


# ------------------------------------------------------------------ 11: command line and listing


def test_runs_listing_shows_sweep_jobs_bracketed_overrides(tmp_path):
    from evalkit.track.mlflow_tracker import Tracker
    from evalkit.track.overrides import run_name

    swept = {"models", "models.e5_small.dimensions"}
    overrides = ["models=[use_m3,e5_small]", "models.e5_small.dimensions=128"]
    name = run_name("adi: use_m3 vs e5_small", overrides, swept)
    assert name.endswith("[models=[use_m3,e5_small], models.e5_small.dimensions=128]")
    tracker = Tracker(f"sqlite:///{tmp_path}/mlflow.db", "evalkit")
    parent = tracker.start_parent(name, tags={"evalkit.dataset": "adi"})
    tracker.finish(parent)
    res = run_evalkit("task=runs", work=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "[models=[use_m3,e5_" in res.stdout and "…" not in res.stdout


def test_an_unknown_new_key_gets_the_leading_plus_hint(tmp_path):
    res = run_evalkit("models=[e5_small]", "models.e5_cut.dimensions=128", work=tmp_path)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert (
        "models.e5_cut.dimensions=128: unknown key 'e5_cut' in models; valid keys: e5_small; "
        "to add a new key, add a leading +: +models.e5_cut.dimensions=128"
    ) in res.stderr


def test_a_typo_gets_the_near_key_not_the_plus_hint():
    from evalkit.usage import usage_error

    line = usage_error(["dataset=beir", "dataset.pth=x"])
    assert line is not None and "(did you mean path?)" in line and "leading +" not in line


def test_first_run_prints_only_evalkit_lines(tmp_path, monkeypatch):
    """A fresh matplotlib font cache and a fresh MLflow store: their INFO lines stay quiet."""
    env_dir = tmp_path / "mplconfig"
    env_dir.mkdir()
    monkeypatch.setenv("MPLCONFIGDIR", str(env_dir))  # run_evalkit passes os.environ on
    res = run_evalkit("models=[use_m3]", *SMALL_DEMO, work=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert any(env_dir.iterdir()), "matplotlib built its font cache in this run"
    assert (tmp_path / "mlflow.db").is_file()
    foreign = [ln for ln in res.stderr.splitlines() if ln.strip() and "][evalkit" not in ln]
    assert foreign == []
