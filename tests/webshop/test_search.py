"""Search parity: the original's indexed text (option names included) and Lucene's analysis."""

from __future__ import annotations

from empo_gym.webshop.catalogue import GeneratedCatalogue
from empo_gym.webshop.search import (
    BM25_B,
    BM25_K1,
    LUCENE_STOP_WORDS,
    SearchIndex,
    index_text,
    option_text,
    tokenize,
)


def test_lucene_english_analysis():
    # Lucene's 33 stop words go ("with", "and", "of"), other function words stay ("from", "you")
    assert len(LUCENE_STOP_WORDS) == 33
    assert tokenize("shoes with laces and a sole") == ["shoe", "lace", "sole"]
    assert tokenize("from you") == ["from", "you"]
    # Porter stemming (Lucene's PorterStemFilter), not a plural stripper
    assert tokenize("running batteries relaxing conditioner") == [
        "run",
        "batteri",
        "relax",
        "condition",
    ]
    # word tokens: numbers keep their decimal point, hyphens split, possessives drop
    assert tokenize("3.5 oz x-large men's 1,000") == ["3.5", "oz", "x", "larg", "men", "1,000"]
    # single letters are tokens too (Lucene keeps them; "a" is a stop word)
    assert tokenize("size a b") == ["size", "b"]


def test_index_text_names_options_like_the_original():
    product = {
        "Title": "Acme Tee",
        "Description": "Soft cotton.",
        "BulletPoints": ["Machine wash", "Imported"],
        "options": {"color": ["black", "navy"], "size": ["small", "large"]},
    }
    assert option_text(product["options"]) == "color: black, navy, and size: small, large"
    assert index_text(product) == (
        "acme tee soft cotton. machine wash color: black, navy, and size: small, large"
    )
    # an option name is searchable: "color" finds the product
    index = SearchIndex.build([tokenize(index_text(product)), tokenize("plain mug")])
    assert index.search("color").tolist() == [0]


def test_generated_token_ids_include_option_names():
    cat = GeneratedCatalogue.generate(30, seed=3)
    vocab: dict[str, int] = {}
    flat, lengths = cat.index_token_ids(vocab)
    inverse = {v: k for k, v in vocab.items()}
    first = [inverse[t] for t in flat[: lengths[0]].tolist()]
    names = list(cat.product(0)["options"])
    assert all(tokenize(name)[0] in first for name in names)
    assert first == tokenize(cat.index_text(0))


def test_bm25_parameters_are_pyserinis():
    assert (BM25_K1, BM25_B) == (0.9, 0.4)
    index = SearchIndex.build([tokenize("red apple"), tokenize("green apple")])
    assert (index._bm25.k1, index._bm25.b) == (0.9, 0.4)


def test_top_k_equals_a_full_sort():
    import numpy as np

    from empo_gym.webshop.search import top_k

    rng = np.random.default_rng(0)
    cases = [
        rng.random(100_000) * (rng.random(100_000) < 0.7),
        rng.integers(0, 3, 100_000).astype(float),  # heavy ties
        np.zeros(1000),
        np.r_[np.zeros(990), np.ones(10)],
        rng.random(30),
    ]
    for scores in cases:
        for k in (1, 10, 50):
            positive = np.flatnonzero(scores > 0)
            expected = positive[np.lexsort((positive, -scores[positive]))][:k]
            assert top_k(scores, k).tolist() == expected.tolist()


def test_document_lengths_rounded_like_lucene():
    import numpy as np

    from empo_gym.webshop.search import lucene_length

    # SmallFloat.intToByte4 / byte4ToInt: exact below 24, then 4 significant bits of the excess
    lengths = np.array([23, 24, 39, 40, 41, 47, 48, 100])
    assert lucene_length(lengths).tolist() == [23, 24, 39, 40, 40, 46, 48, 96]
    # so documents of 40 and 41 terms with the same term frequency score the same (Lucene)
    docs = ["apple" + " x" * 40, "apple" + " y" * 39, "pear " * 10]
    index = SearchIndex.build([tokenize(d) for d in docs])
    assert [len(tokenize(d)) for d in docs] == [41, 40, 10]
    scores = index.scores("apple")
    assert scores[0] == scores[1] > 0
    assert index.search("apple").tolist() == [0, 1]
