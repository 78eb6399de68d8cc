"""Original-format data files: loading, an env over them, and clear errors."""

from __future__ import annotations

import json
import shutil

import pytest

from empo_gym.agents.scripted.webshop import WebShopOracleAgent
from empo_gym.webshop.env import WebShopEnv
from empo_gym.webshop.loader import WebShopDataError, load_original

from .conftest import DATA_DIR


def test_load_fixture_like_the_original():
    cat, goals = load_original(DATA_DIR, num_products=1000)
    assert len(cat) == 4  # the duplicate ASIN is skipped
    shirt = cat.product(cat.index_of("b000test02"))
    assert shirt["options"] == {"color": ["black | white", "navy"], "size": ["large", "x-large"]}
    assert shirt["pricing"] == [9.5, 14.0] and shirt["Price"] == "$9.5 to $14.0"
    assert 9.5 <= cat.price(1) <= 14.0
    speaker = cat.product(3)
    assert speaker["Price"] == "$100.0" and speaker["Attributes"] == ["waterproof"]
    assert cat.product(2)["BulletPoints"] == ["Cruelty free formula"]
    # synthetic goals: every option combination (4 + 4 + 2 + 1)
    assert len(goals) == 11
    texts = [goals.goal(i)["instruction_text"] for i in range(len(goals))]
    assert (
        "i need gluten free snack bars with flavor name: chocolate, and size: 12 count"
        ", and price lower than" in " ".join(texts)
    )
    # deterministic: same seed, same prices and caps
    _, goals2 = load_original(DATA_DIR, num_products=1000)
    assert [goals2.goal(i) for i in range(11)] == [goals.goal(i) for i in range(11)]


def test_human_goals_skip_empty_attributes():
    _, goals = load_original(DATA_DIR, goal_source="human")
    assert len(goals) == 2
    assert {goals.goal(i)["goal_options"][0] for i in range(2)} == {"chocolate", "ruby red"}


@pytest.mark.parametrize("source", ["synthetic", "human"])
def test_env_and_oracle_on_original_files(source):
    env = WebShopEnv(data_dir=str(DATA_DIR), split="test", oracle_info=True, goal_source=source)
    agent = WebShopOracleAgent()
    n = env.goals.split_size("test")
    for seed in range(n):
        obs, info = env.reset(seed=seed)
        agent.reset(0, obs, info)
        while True:
            obs, _, term, trunc, info = env.step(agent.act(0, obs, info))
            if term or trunc:
                break
        assert info["success"], info.get("reward_breakdown")
        assert info["reward_breakdown"]["noun_method"] == env.shop.noun_method


def test_missing_directory():
    with pytest.raises(WebShopDataError, match="'/nonexistent/webshop' does not exist"):
        WebShopEnv(data_dir="/nonexistent/webshop")


def copy_data(tmp_path):
    d = tmp_path / "data"
    shutil.copytree(DATA_DIR, d)
    return d


def test_missing_file(tmp_path):
    d = copy_data(tmp_path)
    (d / "items_ins_v2_1000.json").unlink()
    with pytest.raises(WebShopDataError, match=r"items_ins_v2.json: missing"):
        load_original(d)


def test_corrupt_json(tmp_path):
    d = copy_data(tmp_path)
    path = d / "items_shuffle_1000.json"
    path.write_text(path.read_text()[:300])
    with pytest.raises(WebShopDataError, match=r"items_shuffle_1000.json: not valid JSON"):
        load_original(d)


def test_wrong_shapes(tmp_path):
    d = copy_data(tmp_path)
    (d / "items_shuffle_1000.json").write_text(json.dumps({"not": "a list"}))
    with pytest.raises(WebShopDataError, match="expected a JSON list of products, got dict"):
        load_original(d)
    products = json.loads((DATA_DIR / "items_shuffle_1000.json").read_text())
    del products[1]["pricing"]
    (d / "items_shuffle_1000.json").write_text(json.dumps(products))
    with pytest.raises(WebShopDataError, match=r"product #1 \(asin 'B000TEST02'\) lacks .*pricing"):
        load_original(d)
    products[1]["pricing"] = "$abc"
    (d / "items_shuffle_1000.json").write_text(json.dumps(products))
    with pytest.raises(WebShopDataError, match="unparsable pricing"):
        load_original(d)


def test_human_file_required_for_human_goals(tmp_path):
    d = copy_data(tmp_path)
    (d / "items_human_ins.json").unlink()
    with pytest.raises(WebShopDataError, match="items_human_ins.json: missing"):
        load_original(d, goal_source="human")


# --- the streamed path over files in the original's schema --------------------------------------
@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """2,000 products in the original's file format (about 2 MB), written by the bench helper."""
    from empo_gym.bench.webshop import write_original_files

    return write_original_files(tmp_path_factory.mktemp("orig") / "data", 2000, seed=2)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One cache folder for the module: each (files, size) is built once."""
    return tmp_path_factory.mktemp("orig_cache")


def test_streamed_build_equals_the_original_transform(written, cache):
    import itertools

    from empo_gym.webshop.loader import transform_product

    cat, goals = load_original(written, num_products=None, cache_dir=cache)
    raw = json.loads((written / "items_shuffle.json").read_text())
    attrs = json.loads((written / "items_ins_v2.json").read_text())
    assert len(cat) == len(raw) == 2000
    for i in (0, 1, 1234, 1999):
        expected = transform_product(written / "items_shuffle.json", i, raw[i])
        got = cat.product(i)
        assert {k: got[k] for k in expected} == expected
        assert got["Attributes"] == attrs[raw[i]["asin"]]["attributes"]
        assert cat.index_of(raw[i]["asin"].lower()) == i
    # the original's synthetic goals: every option combination of every product, in product
    # order, then random.seed(233); random.shuffle(goals)
    unshuffled = []
    for p in raw:
        opts = {
            k.lower(): [v["value"].strip().replace("/", " | ").lower() for v in vs]
            for k, vs in p["customization_options"].items()
        }
        names = sorted(opts)
        for combo in itertools.product(*(opts[n] for n in names)):
            unshuffled.append((p["asin"], dict(zip(names, combo, strict=True))))
    import random

    random.Random(233).shuffle(unshuffled)
    assert len(goals) == len(unshuffled)
    for i in (0, 1, 500, len(goals) - 1):
        g = goals.goal(i)
        assert (g["asin"], g["goal_options"]) == unshuffled[i]
        assert g["instruction_text"].startswith(attrs[g["asin"]]["instruction"] + " with ")


def test_stream_parsing_memory_is_bounded(written):
    import tracemalloc

    from empo_gym.webshop.loader import _stream

    path = written / "items_shuffle.json"

    def peak_of(fn):
        tracemalloc.start()
        fn()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak

    assert sum(1 for _ in _stream(path, "[", kv=False)) == 2000
    streamed = peak_of(lambda: sum(1 for _ in _stream(path, "[", kv=False)))
    whole = peak_of(lambda: json.loads(path.read_text()))
    # one product at a time vs the whole text plus every object at once
    assert streamed * 10 < whole, (streamed, whole)


def test_cache_keyed_by_size_and_mtime(written, cache, monkeypatch):
    import os

    from empo_gym.webshop import loader
    from empo_gym.webshop.shop import clear_memory_cache, get_shop

    files = loader.data_files(written)
    key = loader.fingerprint(files)
    assert loader.fingerprint(files) == key
    first = get_shop(None, 0, written, cache)
    # a new process (simulated) opens the cache without parsing or hashing the files' bytes
    clear_memory_cache()
    monkeypatch.setattr(loader, "build_cache", lambda *a, **k: pytest.fail("rebuilt"))
    again = get_shop(None, 0, written, cache)
    assert again.key == first.key and len(again.catalogue) == 2000
    st = files["products"].stat()
    os.utime(files["products"], ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert loader.fingerprint(files) != key


def test_num_products_none_means_all(written, cache):
    cat_all, _ = load_original(written, num_products=None, cache_dir=cache)
    cat_100, _ = load_original(written, num_products=100, cache_dir=cache)
    assert (len(cat_all), len(cat_100)) == (2000, 100)
    assert cat_100.product(99)["asin"] == cat_all.product(99)["asin"]
    with pytest.raises(ValueError, match="num_products must be an int"):
        WebShopEnv(num_products=None)  # the generated catalogue has no "all"


def test_human_goal_splits_and_too_few_goals(written, cache):
    from empo_gym.agents.scripted.webshop import WebShopOracleAgent
    from empo_gym.harness import evaluate

    kwargs = {
        "data_dir": str(written),
        "num_products": None,
        "goal_source": "human",
        "cache_dir": str(cache),
    }
    env = WebShopEnv(split="test", **kwargs)
    # 40 human goals (one product in 50): test = goals[0:500] takes them all, eval is empty
    assert env.split_size == len(env.goals) == 40
    with pytest.raises(ValueError, match="split 'eval' is empty: the catalogue has 40 human"):
        WebShopEnv(split="eval", **kwargs)
    with pytest.raises(ValueError, match="has 40 goals, but 41 episodes from seed 0"):
        evaluate(WebShopOracleAgent(), "webshop", episodes=41, env_kwargs=kwargs)
    with pytest.raises(ValueError, match="has 40 goals, but 10 episodes from seed 35"):
        evaluate(WebShopOracleAgent(), "webshop", episodes=10, seed=35, env_kwargs=kwargs)
    result = evaluate(WebShopOracleAgent(), "webshop", episodes=40, env_kwargs=kwargs)
    assert result.metrics["success_rate"] == 1.0
    assert result.settings["env_provenance"]["catalogue"].startswith("original data ")
