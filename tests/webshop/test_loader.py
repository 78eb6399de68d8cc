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
