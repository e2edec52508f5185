"""Process set-up of the command (evalkit/runtime.py): numba's cache directory and the
garbage-collector freeze.

- numba's cache is per user by default (``$XDG_CACHE_HOME/evalkit/numba``, else
  ``~/.cache/evalkit/numba``), whatever the working folder; ``numba_cache_dir`` sets another one
  (false: numba's own default); ``NUMBA_CACHE_DIR`` in the environment wins; the shipped config
  leaves the default on;

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
from omegaconf import OmegaConf

from evalkit.runtime import freeze_before_exit, import_long_lived, numba_cache_env

from .cli import REPO


def test_numba_cache_is_per_user_by_default_in_any_folder(tmp_path, monkeypatch):
    cfg = OmegaConf.load(REPO / "conf" / "config.yaml")
    assert cfg.numba_cache_dir is None  # the shipped default: per user
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    for folder in ("one", "two"):  # the working folder does not matter
        (tmp_path / folder).mkdir()
        monkeypatch.chdir(tmp_path / folder)
        env: dict[str, str] = {}
        numba_cache_env(cfg, env)
        assert env == {"NUMBA_CACHE_DIR": str(home / ".cache" / "evalkit" / "numba")}
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    numba_cache_env(cfg, env)
    assert env["NUMBA_CACHE_DIR"] == str(tmp_path / "xdg" / "evalkit" / "numba")
    env = {"XDG_CACHE_HOME": "not/absolute"}  # ignored, as the XDG rule says
    numba_cache_env(cfg, env)
    assert env["NUMBA_CACHE_DIR"] == str(home / ".cache" / "evalkit" / "numba")


def test_numba_cache_dir_setting_and_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env: dict[str, str] = {"XDG_CACHE_HOME": "/elsewhere"}
    numba_cache_env(OmegaConf.create({"numba_cache_dir": ".cache/numba"}), env)
    assert env["NUMBA_CACHE_DIR"] == str(tmp_path / ".cache" / "numba")  # the setting wins
    env = {"NUMBA_CACHE_DIR": "/already/set"}  # the environment wins over everything
    numba_cache_env(OmegaConf.create({"numba_cache_dir": ".cache/numba"}), env)
    numba_cache_env(OmegaConf.create({"numba_cache_dir": None}), env)
    assert env == {"NUMBA_CACHE_DIR": "/already/set"}
    env = {}
    numba_cache_env(OmegaConf.create({"numba_cache_dir": False}), env)
    assert env == {}  # numba's own default


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
