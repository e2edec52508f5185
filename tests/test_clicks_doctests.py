"""The click modules' docstring examples run (they document formulas and worked examples)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["log", "ingest", "judgments", "correlation", "plot", "simulate", "stage"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"evalkit.clicks.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
