"""Bad input and bad configuration end in one clear line and exit code 1, never a traceback."""

from __future__ import annotations

import pytest

from .cli import run_evalkit

CASES = [
    (("dataset=beir", "dataset.path=/nonexistent/folder"), "BEIR folder not found"),
    (("dataset=beir",), "dataset.path is not set"),
    (("models=[openai]",), "models.openai.base_url is not set"),
    (("metrics=[ndcg@1000]",), "needs depth 1000 but k=100"),
    (("task=nonsense",), "task='nonsense' is unknown"),
]


@pytest.mark.parametrize(("overrides", "message"), CASES)
def test_bad_configuration_is_one_line_and_exit_1(tmp_path, overrides, message):
    res = run_evalkit(*overrides, work=tmp_path)
    assert res.returncode == 1, res.stderr[-2000:]
    err = res.stderr + res.stdout
    assert message in err
    assert "Traceback" not in err


def test_collection_without_titles_suggests_text_field(tmp_path, shared_data):
    # MED has no titles: embedding titles only (the beir group embeds title_text by default)
    # must fail with a hint at the body text, not embed empty strings
    res = run_evalkit(
        "dataset=beir",
        f"dataset.path={shared_data / 'med'}",
        "dataset.text_field=title",
        work=tmp_path,
    )
    assert res.returncode == 1
    assert "dataset.text_field=text" in res.stderr and "Traceback" not in res.stderr


def test_unreachable_endpoint_is_an_error_not_a_verdict(tmp_path):
    res = run_evalkit(
        "models=[openai]",
        "models.openai.base_url=http://127.0.0.1:9/v1",
        "models.openai.model=x",
        "models.openai.max_retries=0",
        "dataset.n_items=50",
        "dataset.n_queries=8",
        work=tmp_path,
    )
    assert res.returncode == 1
    assert "connection failed" in res.stderr and "Traceback" not in res.stderr
