"""Faults and bad input end in one clear line (exit 1, or 2 for usage
errors), never a traceback nor silently wrong numbers.  Endpoint faults run against the real
fault server on 127.0.0.1 (tests/fault_server.py), never a mock of the openai client."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import pytrec_eval
from ranx import Qrels, Run, evaluate

from evalkit.checks.target import Reply
from evalkit.embed import OpenAIEmbedder, embed_texts
from evalkit.embed.vector_checks import largest_identical_group, vector_problem
from evalkit.errors import DataError, EndpointError
from evalkit.metrics.ir import check_scorable
from evalkit.redact import MASK, RedactingFilter, redact

from .cli import child_runs, run_evalkit
from .fault_server import FaultServer
from .testdata import unpack

SMALL_DEMO = ("dataset.n_items=50", "dataset.n_queries=8")


def one_line_error(res, code: int = 1) -> str:
    """The run failed with ``code`` and one evalkit error line, no traceback."""
    err = res.stderr + res.stdout
    assert res.returncode == code, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    lines = [ln for ln in res.stderr.splitlines() if "evalkit:" in ln and "ERROR" in ln]
    assert len(lines) == 1, res.stderr[-3000:]
    return lines[0]


def served(server: FaultServer, *extra: str) -> tuple[str, ...]:
    return (
        "models=[openai]",
        f"models.openai.base_url={server.base_url}",
        "models.openai.model=fault-model",
        "models.openai.retry_initial_s=0.01",
        "models.openai.retry_max_s=0.02",
        "tracking=none",
        *SMALL_DEMO,
        *extra,
    )


def adi_copy(shared_data: Path, tmp_path: Path) -> Path:
    """A plain (uncompressed) copy of ADI that a test may edit."""
    return unpack("adi", tmp_path / "adi")


def rewrite_qrels(folder: Path, fn) -> None:
    path = folder / "qrels" / "test.tsv"
    head, *rows = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join([head, *(fn(r.split("\t")) for r in rows)]) + "\n", encoding="utf-8")


# ------------------------------------------------------------------ 15: configuration mistakes


def test_duplicate_model_versions_are_a_usage_error(tmp_path):
    res = run_evalkit("models=[use_m3,use_m3]", *SMALL_DEMO, work=tmp_path)
    line = one_line_error(res, code=2)
    assert "models= names use_m3 more than once" in line


def test_primary_metric_must_be_scored_also_with_one_model(tmp_path):
    res = run_evalkit("models=[use_m3]", "metrics=[recall@10]", *SMALL_DEMO, work=tmp_path)
    line = one_line_error(res)
    assert "primary_metric='ndcg@10' is not in metrics=['recall@10']" in line


def test_all_grades_zero_is_refused_with_the_count(tmp_path, shared_data):
    folder = adi_copy(shared_data, tmp_path)
    rewrite_qrels(folder, lambda r: "\t".join([r[0], r[1], "0"]))
    res = run_evalkit("dataset=beir", f"dataset.path={folder}", "models=[use_m3]", work=tmp_path)
    line = one_line_error(res)
    assert "nothing to score: all 170 judgments" in line and "grade 0" in line
    assert "nan" not in res.stdout.lower()
    with pytest.raises(DataError, match="all 1 judgments"):
        check_scorable({"q": {"d": 0}, "other": {"d": 3}}, ["q"])
    check_scorable({"q": {"d": 0, "e": 1}}, ["q"])  # one relevant judgment is enough


# ------------------------------------------------------------------ 16: dimensions


def test_query_and_catalog_dimensions_must_agree(tmp_path):
    with FaultServer(dim=12, query_dim=8) as server:
        res = run_evalkit(
            *served(
                server,
                "models.openai.query_input_type=query",
                "models.openai.batch_size=4",
                "models.openai.concurrency=1",
            ),
            work=tmp_path,
        )
        query_requests = [
            r for r in server.embedding_requests if (r.body or {}).get("input_type") == "query"
        ]
    line = one_line_error(res)
    assert "query vectors have 8 dimensions but the catalog vectors have 12" in line
    assert "assert d == self.d" not in res.stderr
    assert len(query_requests) == 1  # failed on the first query batch


def test_requested_dimensions_larger_than_the_model_fail_on_the_first_batch():
    with FaultServer(dim=16) as server:
        version = OpenAIEmbedder(
            "wide",
            base_url=server.base_url,
            model="fault-model",
            batch_size=4,
            concurrency=2,
            dimensions=1024,
        )
        texts = [f"text {i}" for i in range(40)]  # 10 batches
        with pytest.raises(EndpointError, match="have 16 dimensions, fewer than the requested"):
            embed_texts(version, texts, "document", None, progress=False)
        assert len(server.embedding_requests) <= version.concurrency


# ------------------------------------------------------------------ 17: vector sanity


def test_identical_vectors_fail_every_evaluation(tmp_path):
    with FaultServer(dim=8, default="constant") as server:
        res = run_evalkit(*served(server), work=tmp_path)
    line = one_line_error(res)
    assert "model version 'openai', catalog vectors: all 50 vectors are identical" in line


def test_zero_vectors_fail_with_version_role_and_count():
    with FaultServer(dim=8, default="zero") as server:  # the first vector of every request
        version = OpenAIEmbedder("z", base_url=server.base_url, model="m", batch_size=5)
        with pytest.raises(EndpointError) as err:
            embed_texts(version, [f"q{i}" for i in range(20)], "query", None, progress=False)
    assert "model version 'z', query vectors: 4 of 20 vectors are all zeros" in str(err.value)


def test_vector_checks_are_vectorised_and_exact():
    rng = np.random.default_rng(1)
    v = rng.standard_normal((200_000, 64)).astype(np.float32)
    assert vector_problem(v, 64) is None
    v[[3, 70_000, 199_999]] = v[5]
    assert largest_identical_group(v) == 4
    v[10:150_000] = v[0]
    assert vector_problem(v) == "149991 of 200000 vectors (different texts) are identical"
    v[7, 3] = np.inf
    assert vector_problem(v) == "1 of 200000 vectors contain NaN or infinite values"


# ------------------------------------------------------------------ 18: missing judged items


def test_ranx_counts_judged_items_missing_from_the_run_as_unretrieved():
    qrels = {"q1": {"a": 2, "b": 1, "gone": 3}, "q2": {"c": 1}}
    run = {"q1": {"b": 2.0, "a": 1.0, "x": 0.5}, "q2": {"c": 1.0}}
    ours = evaluate(Qrels(qrels), Run(run), ["ndcg@10", "recall@10"], return_mean=False)
    ref = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut_10", "recall_10"}).evaluate(run)
    for i, q in enumerate(sorted(qrels)):
        assert ours["ndcg@10"][i] == pytest.approx(ref[q]["ndcg_cut_10"], abs=1e-12)
        assert ours["recall@10"][i] == pytest.approx(ref[q]["recall_10"], abs=1e-12)
    assert ours["recall@10"][0] == pytest.approx(2 / 3)


def test_skipped_document_stays_judged_and_matches_pytrec_eval(tmp_path, shared_data):
    folder = adi_copy(shared_data, tmp_path)
    qrels: dict[str, dict[str, int]] = {}
    for row in (folder / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        q, d, g = row.split("\t")
        qrels.setdefault(q, {})[d] = int(g)
    counts: dict[str, int] = {}
    for j in qrels.values():
        for d in j:
            counts[d] = counts.get(d, 0) + 1
    gone = max(counts, key=lambda d: (counts[d], d))  # the most judged document loses its _id
    corpus = folder / "corpus.jsonl"
    docs = [json.loads(line) for line in corpus.read_text().splitlines()]
    for doc in docs:
        if doc["_id"] == gone:
            del doc["_id"]
    corpus.write_text("".join(json.dumps(d) + "\n" for d in docs))

    res = run_evalkit("dataset=beir", f"dataset.path={folder}", "models=[use_m3]", work=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "relevant items not in catalog" in res.stdout

    run: dict[str, dict[str, float]] = {}
    for line in (res.out_dir / "use_m3" / "runs" / "use_m3.trec").read_text().splitlines():
        q, _, d, _, score, _ = line.split()
        run.setdefault(q, {})[d] = float(score)
    assert all(gone not in r for r in run.values())
    judged = {q: j for q, j in qrels.items() if q in run and any(g >= 1 for g in j.values())}
    ref = pytrec_eval.RelevanceEvaluator(judged, {"ndcg_cut_10", "recall_100"}).evaluate(run)
    child = child_runs(f"sqlite:///{tmp_path}/mlflow.db", "evalkit")["use_m3"]
    metrics = child.data.metrics
    assert metrics["ndcg_at_10"] == pytest.approx(
        np.mean([r["ndcg_cut_10"] for r in ref.values()]), abs=1e-9
    )
    assert metrics["recall_at_100"] == pytest.approx(
        np.mean([r["recall_100"] for r in ref.values()]), abs=1e-9
    )
    assert metrics["judged_items_missing"] == 1
    assert metrics["relevant_judgments_missing"] == counts[gone]


# ------------------------------------------------------------------ 19: unknown judged ids


def test_trailing_spaces_in_qrels_name_the_count_and_the_nearest_id(tmp_path, shared_data):
    folder = adi_copy(shared_data, tmp_path)
    rewrite_qrels(folder, lambda r: "\t".join([r[0], r[1] + " ", r[2]]))
    res = run_evalkit("dataset=beir", f"dataset.path={folder}", "models=[use_m3]", work=tmp_path)
    line = one_line_error(res)
    assert "170 of 170 judged ids are unknown (not in the catalog)" in line
    assert "first '17 ', nearest catalog id '17': only whitespace differs" in line
    assert "test.tsv, row 1, field 'corpus-id'" in line


# ------------------------------------------------------------------ 20: unwritable stores


@pytest.mark.parametrize("store", ["cache.dir", "tracking.uri", "hydra.run.dir"])
def test_unwritable_store_folder_is_one_line(tmp_path, store):
    blocked = tmp_path / "ro"
    if os.geteuid() == 0:  # root writes into read-only folders: block with a file instead
        blocked.write_text("a file where a folder is expected")
    else:
        blocked.mkdir()
        blocked.chmod(0o555)
    target = {
        "cache.dir": f"cache.dir={blocked}/cache",
        "tracking.uri": f"tracking.uri=sqlite:///{blocked}/mlflow.db",
        "hydra.run.dir": f"hydra.run.dir={blocked}/out",
    }[store]
    tracking = () if store == "tracking.uri" else ("tracking=none",)
    res = run_evalkit("models=[use_m3]", *SMALL_DEMO, *tracking, target, work=tmp_path)
    err = res.stderr + res.stdout
    assert res.returncode == 1 and "Traceback" not in err, err[-3000:]
    assert f"{store}=" in err and str(blocked) in err and "expected a writable folder" in err


# ------------------------------------------------------------------ 21: secrets in logs


def test_redaction_filter_masks_keys_messages_and_tracebacks(monkeypatch):
    monkeypatch.setenv("MY_KEY", "sk-live-abcdef123456")
    record = logging.LogRecord(
        "evalkit",
        logging.WARNING,
        __file__,
        1,
        "server said %s",
        ("key sk-live-abcdef123456",),
        None,
    )
    try:
        raise RuntimeError("Authorization: Bearer sk-live-abcdef123456")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    RedactingFilter(["MY_KEY"]).filter(record)
    text = logging.Formatter().format(record)
    assert "sk-live-abcdef123456" not in text and MASK in text
    assert redact("Bearer abc.def-ghi") == f"Bearer {MASK}"
    # endpoint-check results (checks.json) quote server error messages: credentials masked too
    reply = Reply(401, {"error": {"message": "bad Authorization: Bearer sk-x1234567"}}, "")
    assert reply.message() == f"bad Authorization: {MASK}"


def test_api_key_echoed_by_the_server_never_reaches_stderr_or_the_log(tmp_path, monkeypatch):
    key = "sk-issue9-0123456789abcdef"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    with FaultServer(dim=8, default="echo_key") as server:
        res = run_evalkit(*served(server, "models.openai.max_retries=1"), work=tmp_path)
        sent = [r.headers.get("authorization") for r in server.embedding_requests]
    assert f"Bearer {key}" in sent  # the key did reach the server, which echoed it
    line = one_line_error(res)
    assert "HTTP 500: upstream rejected request" in line and MASK in line
    log_file = res.out_dir / "cli.log"
    assert log_file.is_file()
    for text in (res.stderr, res.stdout, log_file.read_text()):
        assert key not in text
    assert "retry 1/1" in log_file.read_text()


# ------------------------------------------------------------------ 22: no retry storm


def test_timeouts_shrink_batches_and_cap_retries_in_flight():
    texts = [f"text {i}" for i in range(48)]
    with FaultServer(dim=8, default="cost:0.1") as server:  # 0.1 s per text: 8 texts time out
        version = OpenAIEmbedder(
            "slow",
            base_url=server.base_url,
            model="fault-model",
            batch_size=8,
            concurrency=2,
            timeout_s=0.55,
            retry_initial_s=0.5,
            retry_max_s=1.0,
            retry_concurrency=1,
        )
        result = embed_texts(version, texts, "document", None, progress=False)
        requests = list(server.embedding_requests)
    seen: set[str] = set()
    retries = []
    for r in sorted(requests, key=lambda r: r.started):
        if seen & set(r.inputs):
            retries.append(r)
        seen |= set(r.inputs)
    sizes = [len(r.inputs) for r in sorted(requests, key=lambda r: r.started)]
    assert sizes[:2] == [8, 8] and result.n_retries >= 2  # both first batches timed out
    assert max(sizes[2:]) <= 4  # then every request (retry or new batch) is at most half
    assert len(retries) >= 4 and server.max_overlap(retries) <= 1  # the retry cap
    assert server.max_overlap() <= version.concurrency  # abandoned ones finished first
    expected = np.stack([FaultServer.vector_for(t, 8) for t in texts])
    np.testing.assert_allclose(result.vectors, expected, rtol=1e-6)
