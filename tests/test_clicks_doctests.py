"""The click modules' docstring examples run (they document formulas and worked examples)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "evalkit.data.click_log",
    "evalkit.clicks.ingest",
    "evalkit.clicks.judgments",
    "evalkit.clicks.correlation",
    "evalkit.data.click_simulation",
    "evalkit.clicks.stage",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
