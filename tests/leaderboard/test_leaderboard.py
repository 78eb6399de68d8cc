"""Leaderboard entries: schema validation with file+field errors, atomic writes, merging."""

from __future__ import annotations

import json
import os

import pytest

from empo_gym import leaderboard as lb
from empo_gym.agents.scripted.random_agent import RandomAgent
from empo_gym.harness import evaluate


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


def test_bad_files_are_skipped_with_their_reason_and_the_rest_loads(entry, tmp_path) -> None:
    lb.write_entry(entry, tmp_path)
    (tmp_path / "latin1.json").write_bytes(b'{"agent": "caf\xe9"}')
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    nan = json.dumps(entry).replace('"mean_score": ', '"mean_score": NaN, "x": ', 1)
    (tmp_path / "nan.json").write_text(nan)
    skipped: list[str] = []
    entries = lb.load_entries([tmp_path], on_skip=lambda exc: skipped.append(str(exc)))
    assert [e["agent"] for e in entries] == ["random"]
    reasons = dict(s.split(": ", 1) for s in skipped)
    assert set(map(os.path.basename, reasons)) == {
        "latin1.json",
        "deep.json",
        "nan.json",
    }
    assert all("\n" not in s for s in skipped)
    by_name = {os.path.basename(k): v for k, v in reasons.items()}
    assert "not UTF-8" in by_name["latin1.json"] and "NaN" in by_name["nan.json"]
    assert "nested too deeply" in by_name["deep.json"]
    with pytest.raises(lb.LeaderboardError, match="not UTF-8"):  # without on_skip: raises
        lb.load_entries([tmp_path / "latin1.json"])


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_metrics_are_rejected_at_write_time(entry, tmp_path, bad) -> None:
    entry["metrics"]["mean_score"] = bad
    with pytest.raises(lb.LeaderboardError, match="'metrics.mean_score'"):
        lb.write_entry(entry, tmp_path)
    assert not list(tmp_path.iterdir())
    entry["metrics"]["mean_score"] = 1.0
    entry["episodes"][0]["score"] = bad
    with pytest.raises(lb.LeaderboardError, match="'episodes.0.score'"):
        lb.write_entry(entry, tmp_path)


def test_names_are_escaped_per_format(entry, tmp_path) -> None:
    """``|`` and line breaks keep a markdown row one row; rich markup is shown, not applied;
    JSON keeps the name exactly."""
    from rich.console import Console

    name = "a|b\n[bold]x[/bold]"
    entry["agent"] = name
    lb.write_entry(entry, tmp_path)
    entries = lb.load_entries([tmp_path])
    md = lb.render_markdown(entries).splitlines()
    assert len(md) == 3
    assert md[2].count(" | ") == len(lb.board._COLUMNS) - 1  # no extra column
    assert "a\\|b [bold]x[/bold]" in md[2]
    console = Console(width=300, record=True)
    console.print(lb.render_table(entries))
    text = console.export_text()
    assert "a|b [bold]x[/bold]" in text  # the markup shows literally
    assert json.loads(lb.render_json(entries))[0]["agent"] == name


def test_many_writes_in_one_second_never_overwrite(entry, tmp_path, monkeypatch) -> None:
    """1,000 rows with one timestamp: 1,000 files; a name clash draws a new name instead of
    replacing (forced here by repeating the random part)."""
    for _ in range(1000):
        lb.write_entry(entry, tmp_path)
    assert len(list(tmp_path.glob("*.json"))) == 1000
    draws = iter([b"\0" * 6, b"\0" * 6, b"\1" * 6])
    monkeypatch.setattr(lb.entry.os, "urandom", lambda n: next(draws))
    first = lb.write_entry(entry, tmp_path / "clash")
    second = lb.write_entry(entry, tmp_path / "clash")
    assert first != second and len(list((tmp_path / "clash").iterdir())) == 2
