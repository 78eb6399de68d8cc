"""``empo-gym`` with the TextWorldExpress games: envs listing, run -> leaderboard row."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from empo_gym.cli import app

runner = CliRunner()


def test_envs_lists_the_games() -> None:
    res = runner.invoke(app, ["envs"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    for name in ("coin", "cookingworld", "twc", "empo_gym/TWX-Coin-v0"):
        assert name in res.output


@pytest.mark.slow
def test_random_agent_on_coin_writes_a_leaderboard_row(tmp_path) -> None:
    args = ["run", "--agent", "random", "--env", "coin", "--episodes", "20", "--out", str(tmp_path)]
    res = runner.invoke(app, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    (path,) = tmp_path.glob("coin-random-*.json")
    entry = json.loads(path.read_text())
    assert entry["agent"] == "random" and entry["env"] == "coin"
    assert entry["metrics"]["episodes"] == 20
    res = runner.invoke(app, ["leaderboard", str(tmp_path), "--format", "markdown"])
    assert "| coin |" in res.output


@pytest.mark.slow
def test_oracle_agent_on_twc_succeeds(tmp_path) -> None:
    args = ["run", "--agent", "oracle", "--env", "twc", "--episodes", "5", "--out", str(tmp_path)]
    res = runner.invoke(app, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    (path,) = tmp_path.glob("twc-oracle-*.json")
    assert json.loads(path.read_text())["metrics"]["success_rate"] == 1.0
