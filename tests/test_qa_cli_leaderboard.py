"""QA: the CLI commands of issues 2 and 3 exactly as spelled, and every leaderboard key.

Fast (WebShop and a toy env only); the JVM variants live in tests/test_cli.py (slow).
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from empo_gym.cli import app

runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def webshop_board(tmp_path_factory) -> tuple:
    """Oracle, rule and random on WebShop, 200 episodes each, as issue 3 spells it."""
    out = tmp_path_factory.mktemp("board")
    for agent in ("oracle", "rule", "random"):
        res = _run(
            "run", "--agent", agent, "--env", "webshop", "--episodes", "200", "--out", str(out)
        )
        assert res.exit_code == 0, res.output
    res = _run("run", "--agent", "random", "--env", "guess", "--episodes", "4", "--out", str(out))
    assert res.exit_code == 0, res.output
    entries = {}
    for path in out.glob("*.json"):
        e = json.loads(path.read_text())
        entries[(e["env"], e["agent"])] = e
    return out, entries


def test_webshop_oracle_200_episodes_is_perfect_on_the_test_split(webshop_board) -> None:
    _, entries = webshop_board
    oracle = entries[("webshop", "oracle")]
    assert oracle["split"] == "test"
    assert oracle["metrics"]["episodes"] == 200
    assert oracle["metrics"]["success_rate"] == 1.0
    assert all(ep["success"] and ep["score"] == 100.0 for ep in oracle["episodes"])
    # 200 distinct goals of the test split (seeds 0..199 enumerate them)
    assert len({ep["extra"]["goal_index"] for ep in oracle["episodes"]}) == 200
    assert oracle["provenance"]["noun_method"].startswith("spacy:en_core_web_sm-")
    assert oracle["provenance"]["reward_rule"] == "webshop:original"
    assert oracle["provenance"]["catalogue"].startswith("generated (1000 products")


def test_webshop_rule_and_random_rows_are_real_and_lower(webshop_board) -> None:
    _, entries = webshop_board
    oracle = entries[("webshop", "oracle")]["metrics"]
    for agent in ("rule", "random"):
        m = entries[("webshop", agent)]["metrics"]
        assert m["episodes"] == 200
        assert m["mean_score"] < oracle["mean_score"]
        assert m["success_rate"] < oracle["success_rate"]
        assert 0.0 <= m["mean_score"] <= 100.0


def test_every_required_leaderboard_key_is_present(webshop_board) -> None:
    _, entries = webshop_board
    for e in entries.values():
        for key in (
            "schema_version",
            "agent",
            "env",
            "task",
            "split",
            "model",
            "metrics",
            "config",
            "provenance",
        ):
            assert key in e, key
        assert e["model"] is None  # scripted agents
        for key in ("success_rate", "mean_score", "score_std", "ci95", "episodes"):
            assert isinstance(e["metrics"][key], (int, float)), key
        prov = e["provenance"]
        for pkg in ("empo-gym", "scienceworld", "gymnasium", "torch", "transformers"):
            assert prov["versions"][pkg], pkg
        for key in ("python", "platform", "seeds", "success_rule", "date", "wall_time_s"):
            assert prov[key] not in (None, "", []), key
        assert "git_commit" in prov
        assert prov["seeds"] == list(range(e["metrics"]["episodes"]))
        assert prov["wall_time_s"] > 0


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (
            (),
            {
                ("webshop", "oracle"),
                ("webshop", "rule"),
                ("webshop", "random"),
                ("guess", "random"),
            },
        ),
        (("--env", "webshop"), {("webshop", "oracle"), ("webshop", "rule"), ("webshop", "random")}),
        (("--agent", "random"), {("webshop", "random"), ("guess", "random")}),
        (("--env", "webshop", "--agent", "rule"), {("webshop", "rule")}),
        (("--task", "nosuchtask"), set()),
    ],
)
def test_leaderboard_filters_json(webshop_board, filters, expected) -> None:
    out, _ = webshop_board
    res = _run("leaderboard", str(out), *filters, "--format", "json", "--hide-reported")
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert {(r["env"], r["agent"]) for r in rows} == expected


def test_leaderboard_markdown_and_table(webshop_board) -> None:
    out, _ = webshop_board
    md = _run(
        "leaderboard", str(out), "--env", "webshop", "--format", "markdown", "--hide-reported"
    ).output
    lines = md.strip().splitlines()
    assert lines[0].startswith("| env |") and len(lines) == 2 + 3
    assert lines[2].split("|")[4].strip() == "oracle"  # best score first
    table = _run("leaderboard", str(out)).output
    for agent in ("oracle", "rule", "random"):
        assert agent in table


def test_task_filter_keeps_matching_rows(tmp_path) -> None:
    res = _run(
        "run", "--agent", "random", "--env", "guess", "--episodes", "2", "--out", str(tmp_path)
    )
    assert res.exit_code == 0, res.output
    entry = json.loads(next(tmp_path.glob("*.json")).read_text())
    task = entry["task"]
    res = _run("leaderboard", str(tmp_path), "--task", str(task), "--format", "json")
    rows = json.loads(res.output)
    assert len(rows) == (1 if task is not None else 0)


@pytest.mark.parametrize(
    ("args", "bad", "choices"),
    [
        (
            ["run", "--agent", "oracle", "--env", "webshop", "--split", "dev2"],
            "'dev2'",
            "train, eval, test",
        ),
        (["run", "--agent", "oracle", "--env", "webshop", "--task", "boil"], "'boil'", "--task"),
        (["run", "--agent", "rule", "--env", "scienceworld"], "'rule'", "webshop"),
        (["leaderboard", "--format", "xml"], "'xml'", "table, markdown, json"),
        (["bench", "webshop", "--sizes", "0"], "'0'", "positive"),
    ],
)
def test_bad_values_get_one_line_errors(args, bad, choices) -> None:
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    assert text.startswith("error:") and bad in text and choices in text
    assert "Traceback" not in res.output


def test_bench_webshop_key_names_for_1k() -> None:
    res = runner.invoke(app, ["bench", "webshop", "--sizes", "1000"])
    assert res.exit_code == 0, res.output
    metrics = json.loads(res.stdout.strip().splitlines()[-1])
    for key in (
        "build_s_1k",
        "load_s_1k",
        "search_p50_ms_1k",
        "search_p99_ms_1k",
        "steps_per_s_1k",
        "mem_mb_1_env",
        "mem_mb_64_envs",
    ):
        assert metrics[key] > 0, key
