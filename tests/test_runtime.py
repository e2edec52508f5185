"""Process set-up of the command (evalkit/runtime.py): the garbage-collector freeze.

- ``import_long_lived`` imports with the cyclic collector paused (no collection walks the
  half-imported libraries), freezes what the import created (a later full collection does not
  walk it), restores the collector's previous state, also when the import fails, and freezes
  nothing when the module is imported already (a second sweep job in the same process);
- ``freeze_before_exit`` leaves no object for the interpreter's last collections.
"""

from __future__ import annotations

import gc
import sys
import textwrap

import pytest

from evalkit.runtime import freeze_before_exit, import_long_lived


@pytest.fixture
def fresh_module(tmp_path, monkeypatch):
    """A module not imported yet that records whether the collector ran during its import."""
    name = "evalkit_runtime_probe_mod"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            """
            import gc

            ENABLED_DURING_IMPORT = gc.isenabled()
            KEEP = [[i] for i in range(1000)]  # long-lived containers the collector tracks
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)
    gc.unfreeze()
    gc.enable()


def test_import_long_lived_pauses_the_collector_and_freezes_what_it_imported(fresh_module):
    gc.unfreeze()
    assert gc.isenabled()
    mod = import_long_lived(fresh_module)
    assert mod.ENABLED_DURING_IMPORT is False
    assert gc.isenabled()  # restored
    tracked = {id(o) for o in gc.get_objects()}  # generations 0-2: what a collection walks
    assert id(mod.KEEP) not in tracked and id(mod.KEEP[0]) not in tracked
    assert gc.get_freeze_count() >= len(mod.KEEP)
    # imported already: returned as it is, nothing (no leftovers of an earlier job) is frozen
    gc.unfreeze()
    assert import_long_lived(fresh_module) is mod
    assert gc.get_freeze_count() == 0


def test_import_long_lived_keeps_a_disabled_collector_disabled_and_restores_on_error(
    fresh_module, tmp_path
):
    gc.disable()
    import_long_lived(fresh_module)
    assert not gc.isenabled()
    gc.enable()
    (tmp_path / "evalkit_runtime_broken_mod.py").write_text("raise ValueError('broken')\n")
    with pytest.raises(ValueError, match="broken"):
        import_long_lived("evalkit_runtime_broken_mod")
    assert gc.isenabled()


def test_freeze_before_exit_leaves_nothing_for_the_last_collections():
    try:
        keep = [[i] for i in range(100)]
        freeze_before_exit()
        tracked = {id(o) for o in gc.get_objects()}
        assert id(keep) not in tracked and gc.get_freeze_count() > len(keep)
    finally:
        gc.unfreeze()
