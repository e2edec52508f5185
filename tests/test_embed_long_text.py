"""A text far over the model's input limit gets one warning per version (issue 16, section 5).

The warning names the row (catalog id / query id and its 1-based position), its length and the
chunking option that bounds the work (``models.<name>.chunking.size`` / ``.pooling=first``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from evalkit.data.schema import Catalog, EvalData, Queries
from evalkit.embed import E5Small, OpenAIEmbedder, UseM3
from evalkit.embed.chunking import (
    Chunking,
    far_over_chars,
    input_limit_tokens,
    long_text_warning,
)
from evalkit.run.version import warn_long_texts

from .cli import run_evalkit

WORDS = "the quick brown fox jumps over the lazy dog "  # 44 characters, 9 words


def test_limits_per_backend_and_threshold():
    assert input_limit_tokens(E5Small("e5")) == 512
    assert input_limit_tokens(UseM3("u")) == 512
    openai = OpenAIEmbedder("o", base_url="http://127.0.0.1:1/v1", model="m")
    assert input_limit_tokens(openai) == 8192
    assert far_over_chars(512) == 16_384 and far_over_chars(8192) == 262_144


def test_warning_names_rows_lengths_and_the_chunking_option():
    long_doc = WORDS * 500  # 22,000 characters
    docs = ["short", long_doc, WORDS * 400, "also short"]  # two over 16,384 characters
    queries = ["q", WORDS * 380]  # 16,720 characters
    message = long_text_warning(
        "e5_small",
        None,
        512,
        [("catalog", ["a", "b", "c", "d"], docs), ("query", ["q1", "q2"], queries)],
    )
    assert message == (
        "model version 'e5_small': 2 catalog texts and 1 query text are far over the model's "
        "input limit (~512 tokens; more than 16,384 characters): catalog id 'b' (row 2) has "
        "22,000 characters; query id 'q2' (row 2) has 16,720 characters; each is embedded "
        "whole, which can take minutes per text; to bound it: models.e5_small.chunking.size=256 "
        "models.e5_small.chunking.pooling=first (embeds only each text's first 256 words)"
    )


def test_no_warning_under_the_threshold_or_with_first_window_pooling():
    at_limit = "x" * 16_384
    tables = [("catalog", ["a"], [at_limit]), ("query", [], [])]
    assert long_text_warning("v", None, 512, tables) is None
    over = [("catalog", ["a"], [at_limit + "y"])]
    assert long_text_warning("v", None, 512, over) is not None
    assert long_text_warning("v", Chunking(256, 0, "first"), 512, over) is None


def test_mean_pooling_warning_counts_the_windows():
    text = WORDS * 500  # 4,500 words
    message = long_text_warning("v", Chunking(256, 32, "mean"), 512, [("catalog", ["a"], [text])])
    # windows start every 224 words; the last one ends at word 4,500: ceil(4244 / 224) + 1 = 20
    assert message.endswith(
        "models.v.chunking.size=256 with pooling=mean embeds every window (20 for the longest): "
        "models.v.chunking.pooling=first embeds only the first"
    )


def _data(titles: list[str], queries: list[str]) -> EvalData:
    catalog = Catalog(ids=[f"d{i}" for i in range(len(titles))], titles=titles)
    q = Queries(ids=[f"q{i}" for i in range(len(queries))], texts=queries)
    return EvalData(name="t", catalog=catalog, queries=q, judgments=None)


def test_warn_long_texts_logs_once_for_the_version(caplog):
    data = _data(["a", WORDS * 1000, WORDS * 800], ["short query"])
    with caplog.at_level(logging.WARNING, logger="evalkit"):
        message = warn_long_texts(UseM3("use_m3"), data)
    assert [r.getMessage() for r in caplog.records] == [message]
    assert (
        "2 catalog texts" in message and "catalog id 'd1' (row 2) has 44,000 characters" in message
    )
    served = OpenAIEmbedder("served", base_url="http://127.0.0.1:1/v1", model="m")
    assert warn_long_texts(served, data) is None  # 44,000 characters: under 8,192 tokens x 32


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.slow
def test_cli_warns_once_per_version(tmp_path):
    """The real command, two versions: one warning line each, naming the long catalog row."""
    titles = [f"red shoe model {i}" for i in range(11)] + [WORDS * 400]  # row 12: 17,600 chars
    catalog = _write_jsonl(
        tmp_path / "items.jsonl", [{"id": f"sku{i}", "title": t} for i, t in enumerate(titles)]
    )
    queries = _write_jsonl(
        tmp_path / "queries.jsonl", [{"id": f"q{i}", "text": f"red shoe {i}"} for i in range(4)]
    )
    judgments = _write_jsonl(
        tmp_path / "judgments.jsonl",
        [{"query_id": f"q{i}", "item_id": f"sku{i}", "grade": 1} for i in range(4)],
    )
    res = run_evalkit(
        "dataset=tabular",
        f"dataset.catalog.path={catalog}",
        f"dataset.queries.path={queries}",
        f"dataset.judgments.path={judgments}",
        "models=[use_m3]",
        "+models.use_m3_chunked={_target_:evalkit.embed.local_models.UseM3,name:use_m3_chunked,"
        "chunking:{size:256,overlap:0,pooling:mean}}",
        "tracking.experiment=long_text",
        work=tmp_path,
    )
    assert res.returncode in (0, 3), res.stderr[-3000:]
    lines = [x for x in res.stderr.splitlines() if "far over the model's input limit" in x]
    assert len(lines) == 2, res.stderr[-3000:]
    plain, chunked = lines
    for line in lines:
        assert "1 catalog text is far over" in line
        assert "catalog id 'sku11' (row 12) has 17,600 characters" in line
    assert "model version 'use_m3':" in plain and "models.use_m3.chunking.size=256" in plain
    assert "model version 'use_m3_chunked':" in chunked
    assert "pooling=mean embeds every window (15 for the longest)" in chunked
