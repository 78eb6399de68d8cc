"""Leaderboard entries: schema validation with file+field errors, atomic writes, merging."""

from __future__ import annotations

import json
import os

import pytest

from empo_gym import leaderboard as lb
from empo_gym.agents.scripted.random_agent import RandomAgent
from empo_gym.harness import evaluate
from tests.toy_envs import GuessEnv  # noqa: F401


@pytest.fixture
def entry() -> dict:
    result = evaluate(RandomAgent(seed=0), "guess", episodes=4, seed=0)
    return lb.entry_from_result(result, agent=RandomAgent(seed=0))


def test_entry_has_required_keys(entry: dict) -> None:
    for key in ("schema_version", "agent", "env", "task", "split", "model", "metrics", "config"):
        assert key in entry
    assert entry["model"] is None and entry["agent"] == "random"
    prov = entry["provenance"]
    for key in ("versions", "python", "platform", "git_commit", "seeds", "success_rule", "date"):
        assert key in prov
    assert prov["seeds"] == [0, 1, 2, 3]
    assert prov["success_rule"] == "guess:said_the_secret"
    assert set(prov["versions"]) >= {"empo-gym", "scienceworld", "gymnasium", "torch"}


def test_write_and_load_round_trip(entry: dict, tmp_path) -> None:
    path = lb.write_entry(entry, tmp_path)
    assert path.parent == tmp_path and path.suffix == ".json"
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    loaded = lb.load_entry(path)
    assert loaded["metrics"] == entry["metrics"]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda e: e.pop("agent"), "agent"),
        (lambda e: e["metrics"].update(success_rate=1.5), "metrics.success_rate"),
        (lambda e: e["metrics"].pop("ci95"), "metrics.ci95"),
        (lambda e: e["provenance"].pop("seeds"), "provenance.seeds"),
        (lambda e: e.update(schema_version=99), "schema_version"),
    ],
)
def test_malformed_file_error_names_file_and_field(entry, tmp_path, mutate, field) -> None:
    mutate(entry)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(entry))
    with pytest.raises(lb.LeaderboardError) as err:
        lb.load_entries([tmp_path])
    assert str(bad) in str(err.value) and f"'{field}'" in str(err.value)


def test_not_json_and_missing_path(tmp_path) -> None:
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(lb.LeaderboardError, match=r"x\.json: not valid JSON"):
        lb.load_entries([tmp_path])
    with pytest.raises(lb.LeaderboardError, match="no such file"):
        lb.load_entries([tmp_path / "missing"])


def test_merge_filter_render(entry: dict, tmp_path) -> None:
    other = json.loads(json.dumps(entry))
    other["agent"], other["metrics"]["mean_score"] = "oracle", 100.0
    lb.write_entry(entry, tmp_path)
    lb.write_entry(other, tmp_path / "sub")
    entries = lb.load_entries([tmp_path])
    assert len(entries) == 2
    rows = lb.rows(entries)
    assert [r["agent"] for r in rows] == ["oracle", "random"]  # best score first
    assert len(lb.filter_entries(entries, agent="oracle")) == 1
    md = lb.render_markdown(entries)
    assert md.count("\n") == 3 and "| guess |" in md
    assert json.loads(lb.render_json(entries))[0]["agent"] == "oracle"
