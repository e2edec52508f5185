"""Chunk-size sweeps that mean something (issue 27): the chunks per item and the pooling are
stated, and a chunk size every document fits in is called a no-op."""

from __future__ import annotations

import numpy as np
import pytest

from evalkit.embed.chunking import Chunking, chunk_counts, split

from .cli import child_runs, run_evalkit


@pytest.mark.parametrize("size,overlap", [(3, 0), (3, 1), (5, 2), (50, 0)])
def test_chunk_counts_equal_the_pieces_split_makes(size: int, overlap: int) -> None:
    rng = np.random.default_rng(size + overlap)
    texts = [" ".join(f"w{j}" for j in range(int(n))) for n in rng.integers(0, 40, 60)]
    c = chunk_counts(texts, Chunking(size=size, overlap=overlap))
    _, owner = split(texts, Chunking(size=size, overlap=overlap))
    per = np.bincount(owner, minlength=len(texts))
    assert c.mean == pytest.approx(per.mean()) and c.max == per.max()
    assert c.longest_tokens == max(len(t.split()) for t in texts)
    assert c.no_op == (per.max() == 1)


@pytest.mark.slow
def test_a_chunk_size_longer_than_every_document_is_called_a_no_op(tmp_path, shared_data):
    common = ["dataset=beir", f"dataset.path={shared_data / 'adi'}", "models=[use_m3]"]
    res = run_evalkit(*common, "models.use_m3.chunking.size=512", work=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "models.use_m3.chunking.size=512 changes nothing here: the longest document has" in (
        res.stderr
    )
    res = run_evalkit(
        *common,
        "models.use_m3.chunking.size=8",
        "models.use_m3.chunking.overlap=2",
        work=tmp_path,
        out_name="small",
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "changes nothing here" not in res.stderr
    assert "chunks per item (mean / max, pooling)" in res.stdout and ", mean" in res.stdout
    child = child_runs(f"sqlite:///{tmp_path}/mlflow.db", "evalkit")["use_m3"]
    m = child.data.metrics
    assert m["chunks_per_item_max"] > 1 and m["chunks_per_item_mean"] > 1
    assert m["longest_item_tokens"] > 8
