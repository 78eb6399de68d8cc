"""Reported rows (the EMPO² paper's figures) vs measured rows: schema, numbers, views, CLI."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from empo_gym import leaderboard as lb
from empo_gym.agents.scripted.random_agent import RandomAgent
from empo_gym.cli import app
from empo_gym.harness import evaluate

# The paper's results as its authors published them (arXiv:2602.23008): a transcription check
# of leaderboard/reported.json and of the OOD pairs' figures.
PAPER_SCIENCEWORLD_MEAN = {
    "naive": -61.3,
    "reflexion": 17.1,
    "retrospex": 33.8,
    "grpo": 33.2,
    "empo": 75.9,
}
PAPER_WEBSHOP = {"grpo": (79.3, 66.1), "gigpo": (84.4, 72.8), "empo": (88.3, 76.9)}
PAPER_OOD_BEST_OF_10 = {
    "bio1-bio2": {"grpo": -6.2, "empo": 32.3},
    "bio2-electricity": {"grpo": 22.5, "empo": 88.1},
    "electricity-chemistry": {"grpo": -21.4, "empo": 18.9},
}

runner = CliRunner()


@pytest.fixture
def measured() -> dict:
    result = evaluate(RandomAgent(seed=0), "guess", episodes=3, seed=0)
    return lb.entry_from_result(result, agent=RandomAgent(seed=0))


def test_reported_numbers_equal_the_papers() -> None:
    sw = {e["agent"]: e for e in lb.reported_entries(env="scienceworld")}
    assert {a: e["metrics"]["mean_score"] for a, e in sw.items()} == PAPER_SCIENCEWORLD_MEAN
    assert all(e["task"] is None and "success_rate" not in e["metrics"] for e in sw.values())
    ws = {e["agent"]: e["metrics"] for e in lb.reported_entries(env="webshop")}
    assert {a: (m["mean_score"], round(100 * m["success_rate"], 1)) for a, m in ws.items()} == (
        PAPER_WEBSHOP
    )
    ood: dict[str, dict[str, float]] = {}
    for e in lb.reported_entries(env="ood"):
        ood.setdefault(e["task"], {})[e["agent"]] = e["metrics"]["mean_score"]
        assert e["metrics"]["trials"] == 10
    assert ood == PAPER_OOD_BEST_OF_10


def test_every_reported_row_is_a_valid_reported_entry() -> None:
    entries = lb.reported_entries()
    assert len(entries) == 5 + 3 + 6
    for e in entries:
        assert lb.validate_entry(e) is e
        assert e["source"] == "reported" and lb.is_reported(e)
        assert "arXiv:2602.23008" in e["reference"]["citation"]
        assert e["reference"]["hardware"].startswith("8x A100")
        assert e["model"] == "Qwen/Qwen2.5-7B-Instruct"
        assert not {"provenance", "config", "episodes"} & set(e)
    entries[0]["metrics"]["mean_score"] = 0.0  # callers get copies
    assert lb.reported_entries()[0]["metrics"]["mean_score"] != 0.0


def test_measured_entries_say_so_and_old_files_default_to_measured(measured) -> None:
    assert measured["source"] == "measured" and lb.entry_source(measured) == "measured"
    del measured["source"]  # written before the field existed
    assert lb.validate_entry(measured) and lb.entry_source(measured) == "measured"
    assert lb.measured_runs([measured, *lb.reported_entries()]) == [measured]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda e: e.update(provenance={}), "provenance"),  # a reported row is never a run
        (lambda e: e.update(config={}), "config"),
        (lambda e: e.pop("reference"), "reference"),
        (lambda e: e["reference"].pop("hardware"), "reference.hardware"),
        (lambda e: e["metrics"].pop("mean_score"), "metrics.mean_score"),
        (lambda e: e.update(source="published"), "source"),
    ],
)
def test_bad_reported_rows_are_rejected_naming_the_field(mutate, field) -> None:
    entry = lb.reported_entries(env="webshop")[0]
    mutate(entry)
    with pytest.raises(lb.LeaderboardError, match=f"field '{field}'"):
        lb.validate_entry(entry, "r.json")


def test_a_measured_row_cannot_carry_a_reference_or_drop_its_provenance(measured) -> None:
    with_ref = {**measured, "reference": {"citation": "x", "url": "y", "hardware": "z"}}
    with pytest.raises(lb.LeaderboardError, match="field 'reference'"):
        lb.validate_entry(with_ref)
    no_prov = {k: v for k, v in measured.items() if k != "provenance"}
    with pytest.raises(lb.LeaderboardError, match="field 'provenance'"):
        lb.validate_entry(no_prov)


def test_rows_keep_measured_first_and_render_reported_gaps(measured) -> None:
    webshop = {**measured, "env": "webshop", "task": None}
    webshop["metrics"] = {**measured["metrics"], "mean_score": 1.0}
    rows = lb.rows([*lb.reported_entries(env="webshop"), webshop])
    assert [(r["agent"], r["source"]) for r in rows] == [
        ("random", "measured"),  # below every reported score, still first: kept apart
        ("empo", "reported"),
        ("gigpo", "reported"),
        ("grpo", "reported"),
    ]
    md = lb.render_markdown([*lb.reported_entries(env="scienceworld"), webshop]).splitlines()
    assert md[0].endswith("| source |")
    naive = next(line for line in md if "| naive |" in line)
    assert "| - | -61.3 | - | - | reported |" in naive
    assert json.loads(lb.render_json([webshop]))[0]["source"] == "measured"


def test_reported_file_in_a_results_dir_loads_and_never_counts_as_a_run(tmp_path) -> None:
    lb.write_atomic_json(tmp_path / "paper.json", lb.reported_entries(env="webshop")[0])
    loaded = lb.load_entries([tmp_path])
    assert len(loaded) == 1 and lb.is_reported(loaded[0]) and lb.measured_runs(loaded) == []


def test_cli_shows_reported_rows_next_to_measured_and_hides_them_on_request(
    measured, tmp_path
) -> None:
    webshop = {**measured, "env": "webshop", "task": None}
    lb.write_entry(webshop, tmp_path)
    res = runner.invoke(app, ["leaderboard", str(tmp_path), "--env", "webshop", "--format", "json"])
    assert res.exit_code == 0, res.output
    got = {(r["agent"], r["source"]) for r in json.loads(res.output)}
    assert got == {
        ("random", "measured"),
        ("grpo", "reported"),
        ("gigpo", "reported"),
        ("empo", "reported"),
    }
    res = runner.invoke(
        app,
        ["leaderboard", str(tmp_path), "--env", "webshop", "--format", "json", "--hide-reported"],
    )
    assert [(r["agent"], r["source"]) for r in json.loads(res.output)] == [("random", "measured")]
    table = runner.invoke(app, ["leaderboard", str(tmp_path), "--env", "webshop"]).output
    assert "reported" in table and "gigpo" in table and "2602.23008" in table


def test_cli_html_needs_out_and_out_needs_html(tmp_path) -> None:
    res = runner.invoke(app, ["leaderboard", str(tmp_path), "--format", "html"])
    assert res.exit_code == 2 and "add --out DIR" in res.output
    res = runner.invoke(app, ["leaderboard", str(tmp_path), "--out", str(tmp_path / "page")])
    assert res.exit_code == 2 and "--out is for --format html only" in res.output
    res = runner.invoke(
        app, ["leaderboard", str(tmp_path), "--format", "html", "--out", str(tmp_path / "page")]
    )
    assert res.exit_code == 0, res.output
    assert "0 measured runs, 14 reported rows" in res.output
    assert (tmp_path / "page" / "index.html").read_text().startswith("<!DOCTYPE html>")
