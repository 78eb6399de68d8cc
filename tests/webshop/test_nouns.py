"""Nouns: spaCy's en_core_web_sm by default, computed once into the shop cache, loud fallback."""

from __future__ import annotations

import warnings

import pytest

from empo_gym.webshop import nouns as N
from empo_gym.webshop.env import WebShopEnv
from empo_gym.webshop.shop import clear_memory_cache, get_shop


def test_spacy_is_the_default():
    assert N.noun_method().startswith("spacy:en_core_web_sm-")
    assert N.nouns_of(["Acme Snack Bar, 12 Count"]) == [["acme", "snack", "bar", "count"]]


def test_skipped_pipes_do_not_change_the_tags():
    import spacy

    full = spacy.load(N._installed_model())  # the original loads the whole pipeline
    cat = get_shop(num_products=200).catalogue
    names = [cat.product(i)["name"] for i in range(200)]
    expected = [[t.text.lower() for t in full(n) if t.pos_ in ("NOUN", "PROPN")] for n in names]
    assert N.nouns_of(names) == expected


def test_nouns_cached_per_product_and_used_by_episodes(monkeypatch, tmp_path):
    shop = get_shop(num_products=120, cache_dir=tmp_path)
    assert shop.key and (tmp_path / "webshop").is_dir()
    cat = shop.catalogue
    assert cat.product(7)["name_nouns"] == N.nouns_of([cat.product(7)["name"]])[0]
    assert cat.product(7)["noun_method"] == shop.noun_method
    # a fresh process-level load reads the nouns from the cache: spaCy is never called
    clear_memory_cache()
    monkeypatch.setattr(N, "_pipeline", lambda: pytest.fail("spaCy ran"))
    env = WebShopEnv(num_products=120, cache_dir=str(tmp_path), oracle_info=True)
    obs, info = env.reset(seed=0)
    env.step(f"search[{info['oracle']['search_query']}]")
    env.step(f"click[{info['oracle']['asin'].lower()}]")
    *_, info = env.step("click[buy now]")
    assert info["reward_breakdown"]["noun_method"].startswith("spacy:en_core_web_sm-")


def test_fallback_is_loud_once(monkeypatch, capsys):
    monkeypatch.setattr(N, "_pipeline", lambda: (None, "OSError: no model"))
    monkeypatch.setattr(N, "_warned", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert N.noun_method() == N.FALLBACK_NOUN_METHOD
        assert N.nouns_of(["Acme Organic Snack Bar"]) == [["acme", "snack", "bar"]]
        N.nouns_of(["Other Name"])
    err = capsys.readouterr().err
    assert err.count("WARNING") == 1 and "OSError: no model" in err
    assert "pip install" in err
    assert len([w for w in caught if issubclass(w.category, RuntimeWarning)]) == 1
